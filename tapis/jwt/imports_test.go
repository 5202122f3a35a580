package jwt

import (
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayLean keeps this package a decoder: no cryptography to
// grow a verifier that would look trustworthy, no networking to fetch keys.
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
