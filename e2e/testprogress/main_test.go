package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	const in = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"    a_test.go:9: chatter of a passing test\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK","Elapsed":0.5}
{"Action":"run","Package":"m/a","Test":"TestBad"}
{"Action":"run","Package":"m/a","Test":"TestBad/case"}
{"Action":"output","Package":"m/a","Test":"TestBad/case","Output":"    a_test.go:12: got 4; want 5\n"}
{"Action":"fail","Package":"m/a","Test":"TestBad/case","Elapsed":0.1}
{"Action":"output","Package":"m/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.10s)\n"}
{"Action":"fail","Package":"m/a","Test":"TestBad","Elapsed":0.1}
{"Action":"output","Package":"m/a","Output":"FAIL\n"}
{"Action":"fail","Package":"m/a","Elapsed":1.2}
{"Action":"output","Package":"m/b","Output":"ok  \tm/b\t0.3s\n"}
{"Action":"pass","Package":"m/b","Elapsed":0.3}
no test files for m/c
`
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out, regexp.MustCompile(`^m/a$`))
	if err != nil || !failed {
		t.Errorf("run = %v, %v; want failed and no error", failed, err)
	}
	got := out.String()
	for _, want := range []string{
		"  ok   a TestOK 0.5s\n",
		"    FAIL a TestBad/case 0.1s\n",
		"    a_test.go:12: got 4; want 5\n--- FAIL: TestBad (0.10s)\n  FAIL a TestBad 0.1s\n",
		"FAIL\nFAIL m/a 1.2s\n",
		"ok   m/b 0.3s\n",
		"no test files for m/c\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "chatter") {
		t.Errorf("output holds a passing test's log:\n%s", got)
	}
}

func TestRunPass(t *testing.T) {
	in := `{"Action":"pass","Package":"m/b","Test":"TestX","Elapsed":0.1}
{"Action":"pass","Package":"m/b","Elapsed":0.3}
`
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out, nil)
	if failed || err != nil || out.String() != "ok   m/b 0.3s\n" {
		t.Errorf("run = %v, %v, %q; want no failure and the package line alone", failed, err, out.String())
	}
}
