package cmdline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

func TestClassifyExitCodes(t *testing.T) {
	// A missing socket directory: no agent runs.
	t.Setenv("TAPIS_AGENT_SOCK", filepath.Join(t.TempDir(), "run", "agent.sock"))
	cases := []struct {
		name string
		err  error
		want int
		hint string // substring of the hint; every case must have one
	}{
		{"unreachable", fmt.Errorf("dialing: %w", ipc.ErrAgentUnreachable), ExitUnreachable, "tapis-agent start"},
		{"connection cut", fmt.Errorf("reading: %w (%w)", ipc.ErrConnectionCut, ipc.ErrAgentUnreachable), ExitUnreachable, "the agent stopped or crashed while answering; the agent's log says why"},
		{"login required", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "m"}, ExitLogin, "tapis-token login"},
		{"login required with hint", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "m", Hint: "tapis-token login ds"}, ExitLogin, "tapis-token login ds"},
		{"upstream", &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "m"}, ExitUpstream, "try again"},
		{"unsatisfiable", &ipc.Error{Code: ipc.CodeUnsatisfiable, Message: "m"}, ExitError, "tapis-token status"},
		{"bad credentials", &ipc.Error{Code: ipc.CodeBadCredentials, Message: "m"}, ExitLogin, "tapis-token login"},
		{"bad client", &ipc.Error{Code: ipc.CodeBadClient, Message: "m", Hint: "fix client_id"}, ExitError, "fix client_id"},
		{"bad client without hint", &ipc.Error{Code: ipc.CodeBadClient, Message: "m"}, ExitError, "tapis-token status"},
		{"internal", &ipc.Error{Code: ipc.CodeInternal, Message: "m"}, ExitError, "agent.log"},
		{"forbidden", &ipc.Error{Code: ipc.CodeForbidden, Message: "m"}, ExitError, "the user who started the agent"},
		{"local bad answer", &ipc.Error{Message: "agent answered garbage"}, ExitError, "tapis-token status"},
		{"usage", Usage("bad"), ExitUsage, "tapis-token help"},
		{"failure without hint", &Failure{Code: ExitLogin, Msg: "m"}, ExitLogin, "tapis-token login"},
		{"other", errors.New("boom"), ExitError, "agent.log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(tc.err)
			if f.Code != tc.want {
				t.Errorf("classify(%v) = %d; want %d", tc.err, f.Code, tc.want)
			}
			if f.Hint == "" || !strings.Contains(f.Hint, tc.hint) {
				t.Errorf("classify(%v) hint = %q; want one containing %q", tc.err, f.Hint, tc.hint)
			}
		})
	}
	for _, code := range []int{ExitError, ExitUsage, ExitUnreachable, ExitLogin, ExitUpstream} {
		if fallbackHint(code) == "" {
			t.Errorf("fallbackHint(%d) is empty", code)
		}
	}
}

// TestUnsafeSocketDirHint: an agent cannot fix a socket directory that
// is open to others or not the user's, so the hint names the real fix.
func TestUnsafeSocketDirHint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAPIS_AGENT_SOCK", filepath.Join(dir, "agent.sock"))
	unreachable := fmt.Errorf("%w: %w", ipc.ErrAgentUnreachable, ipc.CheckDir(dir))
	if f := classify(unreachable); !strings.Contains(f.Hint, "tapis-agent start") {
		t.Errorf("safe directory: hint %q; want to start the agent", f.Hint)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unreachable = fmt.Errorf("%w: %w", ipc.ErrAgentUnreachable, ipc.CheckDir(dir))
	f := classify(unreachable)
	if f.Code != ExitUnreachable || !strings.Contains(f.Hint, "chmod 0700 "+dir+",") || strings.Contains(f.Hint, "tapis-agent start") {
		t.Errorf("directory open to others: exit %d, hint %q; want %d and chmod 0700 %s", f.Code, f.Hint, ExitUnreachable, dir)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if f := classify(unreachable); !strings.Contains(f.Hint, "remove "+dir+",") {
		t.Errorf("symlinked directory: hint %q; want to remove it", f.Hint)
	}
}

func TestParseArgs(t *testing.T) {
	var h, j bool
	var mv string
	pos, err := ParseArgs([]string{"ds", "--min-valid=2h", "-H", "--", "--json"},
		BoolFlag("-H", &h), BoolFlag("--json", &j), ValueFlag("--min-valid", &mv))
	if err != nil || !reflect.DeepEqual(pos, []string{"ds", "--json"}) || !h || j || mv != "2h" {
		t.Errorf("parseArgs = %q, %v (h=%v j=%v mv=%q)", pos, err, h, j, mv)
	}
	if _, err := ParseArgs([]string{"-H=1"}, BoolFlag("-H", &h)); err == nil {
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
		got, err := ParseMinValid(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMinValid(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestRunOrMain: Run answers the token command lines itself and leaves
// every other one to tokencli.Main, untouched.
func TestRunOrMain(t *testing.T) {
	// No agent: a command line Run takes ends in exit 3.
	t.Setenv("TAPIS_AGENT_SOCK", filepath.Join(t.TempDir(), "run", "agent.sock"))
	cases := []struct {
		args []string
		hot  bool
	}{
		{nil, true},
		{[]string{"dev"}, true},
		{[]string{"-H"}, true},
		{[]string{"--header", "dev"}, true},
		{[]string{"dev", "--min-valid", "2h"}, true},
		{[]string{"--min-valid=90m", "-H", "--", "dev"}, true},
		{[]string{"dev", "--curl-config"}, true},
		{[]string{"exec", "dev", "--", "env"}, false},
		{[]string{"-H", "--curl-config"}, false},
		{[]string{"--json"}, false},
		{[]string{"dev", "--env"}, false},
		{[]string{"login", "dev"}, false},
		{[]string{"status"}, false},
		{[]string{"help"}, false},
		{[]string{"--version"}, false},
		{[]string{"-h"}, false},
		{[]string{"a", "b"}, false},
		{[]string{"--bogus"}, false},
		{[]string{"-H", "--json"}, false},
		{[]string{"--min-valid", "soon"}, false},
		{[]string{"--min-valid"}, false},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code, ok := Run(tc.args, &out, &errb)
		if ok != tc.hot {
			t.Errorf("Run(%q) took it = %v; want %v", tc.args, ok, tc.hot)
			continue
		}
		if !ok {
			if code != 0 || out.Len() != 0 || errb.Len() != 0 {
				t.Errorf("Run(%q) left it to Main but returned %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
			}
			continue
		}
		if code != ExitUnreachable || out.Len() != 0 || !strings.Contains(errb.String(), "tapis-token: hint: ") {
			t.Errorf("Run(%q) without an agent = %d, stdout %q, stderr %q; want exit 3 with a hint", tc.args, code, out.String(), errb.String())
		}
	}
}

func TestWritePlain(t *testing.T) {
	cases := []struct {
		name, token string
		f           Format
		want        string
	}{
		{"plain", "a.b.c", FormatPlain, "a.b.c\n"},
		{"header", "a.b.c", FormatHeader, "X-Tapis-Token: a.b.c\n"},
		{"curl config", "a.b.c", FormatCurlConfig, "header = \"X-Tapis-Token: a.b.c\"\n"},
		{"curl config escapes", "a\"b\\c\td", FormatCurlConfig, "header = \"X-Tapis-Token: a\\\"b\\\\c\\td\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WritePlain(&b, tc.token, tc.f); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("WritePlain(%q, %d) = %q; want %q", tc.token, tc.f, b.String(), tc.want)
			}
		})
	}
}

// FuzzParseDuration: parseDuration is time.ParseDuration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"2h", "90m", "300s", "1.5h", "1h30m", ".5s", "5.s", "0", "-0", "+3m", "-1h", "1µs", "1μs", "2us", "3ns", "4ms",
		"9223372036854775807ns", "9223372036854775808ns", "-9223372036854775808ns", "2562047h47m16.854775807s", "2562048h",
		"1.00000000000000000000000001s", "0.100000000000000000000h", "", "+", ".", "1", "1x", "1h1", "h", "3000000h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseDuration(s)
		want, err := time.ParseDuration(s)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("parseDuration(%q) = %v, %v; time.ParseDuration gives %v, %v", s, got, ok, want, err)
		}
	})
}

func TestAgentLogPath(t *testing.T) {
	t.Setenv("HOME", "/home/jdoe")
	cases := []struct{ state, want string }{
		{"/var/state", "/var/state/tapis-agent/agent.log"},
		{"", "/home/jdoe/.local/state/tapis-agent/agent.log"},
		{"relative", "/home/jdoe/.local/state/tapis-agent/agent.log"}, // the XDG spec ignores relative paths
	}
	for _, tc := range cases {
		t.Setenv("XDG_STATE_HOME", tc.state)
		if got := AgentLogPath(); got != tc.want {
			t.Errorf("AgentLogPath with XDG_STATE_HOME=%q = %s; want %s", tc.state, got, tc.want)
		}
	}
}
