package main

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

func TestClassifyExitCodes(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"unreachable", fmt.Errorf("dialing: %w", ipc.ErrAgentUnreachable), exitUnreachable},
		{"login required", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "m"}, exitLogin},
		{"upstream", &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "m"}, exitUpstream},
		{"unsatisfiable", &ipc.Error{Code: ipc.CodeUnsatisfiable, Message: "m"}, exitError},
		{"bad credentials", &ipc.Error{Code: ipc.CodeBadCredentials, Message: "m"}, exitError},
		{"usage", usageErr("bad"), exitUsage},
		{"other", errors.New("boom"), exitError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err).code; got != tc.want {
				t.Errorf("classify(%v) = %d; want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestHelpListsEveryExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range []int{exitOK, exitError, exitUsage, exitUnreachable, exitLogin, exitUpstream} {
		if !strings.Contains(out.String(), fmt.Sprintf("\n  %d  ", c)) {
			t.Errorf("help does not list exit code %d", c)
		}
	}
}

func TestUsageErrorsPrintHint(t *testing.T) {
	cases := [][]string{
		{"--bogus"},
		{"--min-valid"},
		{"--min-valid", "soon"},
		{"-H", "--json"},
		{"a", "b"},
		{"status", "extra"},
		{"import"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || out.Len() != 0 {
			t.Errorf("run(%q) = %d, stdout %q; want %d and nothing on stdout", args, code, out.String(), exitUsage)
		}
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "tapis-token: ") || !strings.HasPrefix(lines[1], "tapis-token: hint: ") {
			t.Errorf("run(%q) stderr = %q; want an error line and a hint line", args, errb.String())
		}
	}
}

func TestParseArgs(t *testing.T) {
	var h, j bool
	var mv string
	pos, err := parseArgs([]string{"ds", "--min-valid=2h", "-H", "--", "--json"},
		map[string]*bool{"-H": &h, "--json": &j}, map[string]*string{"--min-valid": &mv})
	if err != nil || !reflect.DeepEqual(pos, []string{"ds", "--json"}) || !h || j || mv != "2h" {
		t.Errorf("parseArgs = %q, %v (h=%v j=%v mv=%q)", pos, err, h, j, mv)
	}
	if _, err := parseArgs([]string{"-H=1"}, map[string]*bool{"-H": &h}, nil); err == nil {
		t.Errorf("a value on a boolean flag was accepted")
	}
}

func TestParseMinValid(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2h", 2 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"300", 300 * time.Second, true},
		{"0", 0, true},
		{"-5m", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		got, err := parseMinValid(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMinValid(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote(`it's`); got != `'it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
}

func TestParseSockLine(t *testing.T) {
	cases := map[string]string{
		"TAPIS_AGENT_SOCK=/run/a.sock; export TAPIS_AGENT_SOCK;\n":       "/run/a.sock",
		"echo hi;\nTAPIS_AGENT_SOCK='/tmp/it'\\''s/a.sock'; export X;\n": "/tmp/it's/a.sock",
		"nothing here\n": "",
	}
	for in, want := range cases {
		if got := parseSockLine(in); got != want {
			t.Errorf("parseSockLine(%q) = %q; want %q", in, got, want)
		}
	}
}
