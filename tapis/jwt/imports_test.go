package jwt

import (
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayLean guards the tapis-token helper's start-up: this
// package must not pull in cryptography or networking.
func TestImportsStayLean(t *testing.T) {
	allowed := map[string]bool{
		"encoding/base64": true, "encoding/json": true, "errors": true,
		"strings": true, "time": true, "strconv": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q; only %v are allowed", name, p, allowed)
			}
		}
	}
}
