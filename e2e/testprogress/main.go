// Command testprogress turns the output of `go test -json` into progress
// lines while the tests run: one line per package as it ends, and one per
// test (and per subtest one level down) of the packages -tests names, as
// each ends. A failing test's whole output is printed when it fails, and
// a failing package's own output (build errors, a panic outside any test)
// when the package ends. It exits 1 if anything failed:
//
//	go test -json ./... | go run ./e2e/testprogress -tests '/e2e$'
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// event is one line of `go test -json` (go doc test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64 // seconds
	Output  string
}

func main() {
	tests := flag.String("tests", "", "print a line per test of the packages whose import path matches this `regexp`")
	flag.Parse()
	var re *regexp.Regexp
	if *tests != "" {
		var err error
		if re, err = regexp.Compile(*tests); err != nil {
			fmt.Fprintf(os.Stderr, "testprogress: -tests: %v\n", err)
			os.Exit(2)
		}
	}
	failed, err := run(os.Stdin, os.Stdout, re)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testprogress: %v\n", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// run reads events from r and writes progress to w. It reports whether a
// package or test failed.
func run(r io.Reader, w io.Writer, tests *regexp.Regexp) (failed bool, err error) {
	// output holds what each package and each top-level test (with its
	// subtests) printed, until it ends.
	type key struct{ pkg, test string }
	output := map[key]*strings.Builder{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			fmt.Fprintf(w, "%s\n", sc.Bytes()) // not an event: go test's own message
			continue
		}
		top, _, isSub := strings.Cut(ev.Test, "/")
		k := key{ev.Package, top}
		switch ev.Action {
		case "build-output":
			io.WriteString(w, ev.Output) // compiler errors
		case "build-fail":
			failed = true
		case "output":
			if strings.HasPrefix(ev.Output, "=== ") {
				continue // === RUN, PAUSE, CONT: framing
			}
			b := output[k]
			if b == nil {
				b = &strings.Builder{}
				output[k] = b
			}
			b.WriteString(ev.Output)
		case "pass", "skip", "fail":
			if ev.Action == "fail" {
				failed = true
			}
			switch {
			case ev.Test == "":
				if ev.Action == "fail" && output[k] != nil {
					io.WriteString(w, output[k].String())
				}
				fmt.Fprintf(w, "%-4s %s %.1fs\n", verdict[ev.Action], ev.Package, ev.Elapsed)
				delete(output, k)
			case !isSub:
				if ev.Action == "fail" && output[k] != nil {
					io.WriteString(w, output[k].String())
				}
				if ev.Action == "fail" || (tests != nil && tests.MatchString(ev.Package)) {
					fmt.Fprintf(w, "  %-4s %s %s %.1fs\n", verdict[ev.Action], short(ev.Package), ev.Test, ev.Elapsed)
				}
				delete(output, k)
			case strings.Count(ev.Test, "/") == 1 && tests != nil && tests.MatchString(ev.Package):
				fmt.Fprintf(w, "    %-4s %s %s %.1fs\n", verdict[ev.Action], short(ev.Package), ev.Test, ev.Elapsed)
			}
		}
	}
	return failed, sc.Err()
}

var verdict = map[string]string{"pass": "ok", "skip": "SKIP", "fail": "FAIL"}

// short is the last element of an import path.
func short(pkg string) string { return pkg[strings.LastIndex(pkg, "/")+1:] }
