package config

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
)

func TestTooDeep(t *testing.T) {
	deep := strings.Repeat("[", MaxNesting+1)
	cases := []struct {
		name string
		data string
		want int
	}{
		{"flat", "[tenants.ds]\nusername = \"jdoe\"\n", 0},
		{"schema's deepest", "tenants.ds.password_command = [\"a\", \"b\"]\n", 0},
		{"floats", "x = [" + strings.Repeat("1.5, ", 100) + "]\n", 0},
		{"brackets in a basic string", "x = \"" + deep + "\"\n", 0},
		{"brackets in a literal string", "x = '" + deep + "'\n", 0},
		{"brackets in a comment", "# " + deep + "\n", 0},
		{"brackets in a multi-line string", "x = \"\"\"\n\\\"\"\"" + deep + "\n\"\"\"\ny = '''" + deep + "'''\n", 0},
		{"dots in a quoted key", "\"" + strings.Repeat("a.", 40) + "\" = 1\n", 0},
		{"arrays", "\n\nx = " + deep, 3},
		{"arrays across lines", "x = [\n[\n" + strings.Repeat("[", MaxNesting-1) + "\n", 3},
		{"inline tables", "x = " + strings.Repeat("{a=", MaxNesting+1), 1},
		{"dotted key", strings.Repeat("a.", MaxNesting+1) + "a = 1", 1},
		{"dotted key with blanks", strings.Repeat("a . ", MaxNesting+1) + "a = 1", 1},
		{"after a multi-line string", "x = '''\n\n'''\n" + deep, 4},
	}
	for _, tc := range cases {
		if got, _ := scanShape([]byte(tc.data)); got != tc.want {
			t.Errorf("%s: scanShape deep = %d; want %d", tc.name, got, tc.want)
		}
	}
}

func TestTooCrowded(t *testing.T) {
	cases := []struct {
		name string
		data string
		want int
	}{
		{"a thousand tenants", manyTenants(MaxTenants), 0},
		{"keys", "\n" + strings.Repeat("k = 1\n", MaxItems+1), MaxItems + 2},
		{"tables", strings.Repeat("[t]\n", MaxItems+1), MaxItems + 1},
		{"array items", "x = [" + strings.Repeat("1,", MaxItems) + "1]\n", 1},
		{"inline tables", "x = [" + strings.Repeat("{},", MaxItems) + "{}]\n", 1},
		{"commas in strings", "x = \"" + strings.Repeat(",", 2*MaxItems) + "\"\n", 0},
		{"commas in a comment", "# " + strings.Repeat(",", 2*MaxItems) + "\n", 0},
	}
	for _, tc := range cases {
		if _, got := scanShape([]byte(tc.data)); got != tc.want {
			t.Errorf("%s: scanShape crowded = %d; want %d", tc.name, got, tc.want)
		}
	}
}

// TestLoadRefusesWithoutBlocking: a named pipe at the config path is
// refused at once, not read for ever.
func TestLoadRefusesWithoutBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Load(path)
	if !errors.Is(err, safefile.ErrNotRegular) || !strings.Contains(err.Error(), path+": reading config: "+path+" is a named pipe, not a regular file; point the agent at a regular file") {
		t.Errorf("Load(fifo) = %v; want a refusal naming the pipe", err)
	}
	if d := time.Since(start); d > LoadTimeout/2 {
		t.Errorf("Load(fifo) took %s", d)
	}
}
