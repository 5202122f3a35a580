package tokencli

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
		{"unreachable", fmt.Errorf("dialing: %w", ipc.ErrAgentUnreachable), exitUnreachable, "tapis-agent start"},
		{"login required", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "m"}, exitLogin, "tapis-token login"},
		{"login required with hint", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "m", Hint: "tapis-token login ds"}, exitLogin, "tapis-token login ds"},
		{"upstream", &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "m"}, exitUpstream, "try again"},
		{"unsatisfiable", &ipc.Error{Code: ipc.CodeUnsatisfiable, Message: "m"}, exitError, "tapis-token status"},
		{"bad credentials", &ipc.Error{Code: ipc.CodeBadCredentials, Message: "m"}, exitLogin, "tapis-token login"},
		{"bad client", &ipc.Error{Code: ipc.CodeBadClient, Message: "m", Hint: "fix client_id"}, exitError, "fix client_id"},
		{"bad client without hint", &ipc.Error{Code: ipc.CodeBadClient, Message: "m"}, exitError, "tapis-token status"},
		{"internal", &ipc.Error{Code: ipc.CodeInternal, Message: "m"}, exitError, "agent.log"},
		{"forbidden", &ipc.Error{Code: ipc.CodeForbidden, Message: "m"}, exitError, "tapis-token status"},
		{"local bad answer", &ipc.Error{Message: "agent answered garbage"}, exitError, "tapis-token status"},
		{"usage", usageErr("bad"), exitUsage, "tapis-token help"},
		{"failure without hint", &failure{code: exitLogin, msg: "m"}, exitLogin, "tapis-token login"},
		{"other", errors.New("boom"), exitError, "agent.log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(tc.err)
			if f.code != tc.want {
				t.Errorf("classify(%v) = %d; want %d", tc.err, f.code, tc.want)
			}
			if f.hint == "" || !strings.Contains(f.hint, tc.hint) {
				t.Errorf("classify(%v) hint = %q; want one containing %q", tc.err, f.hint, tc.hint)
			}
		})
	}
	for _, code := range []int{exitError, exitUsage, exitUnreachable, exitLogin, exitUpstream} {
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
	if f := classify(unreachable); !strings.Contains(f.hint, "tapis-agent start") {
		t.Errorf("safe directory: hint %q; want to start the agent", f.hint)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unreachable = fmt.Errorf("%w: %w", ipc.ErrAgentUnreachable, ipc.CheckDir(dir))
	f := classify(unreachable)
	if f.code != exitUnreachable || !strings.Contains(f.hint, "chmod 0700 "+dir+",") || strings.Contains(f.hint, "tapis-agent start") {
		t.Errorf("directory open to others: exit %d, hint %q; want %d and chmod 0700 %s", f.code, f.hint, exitUnreachable, dir)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if f := classify(unreachable); !strings.Contains(f.hint, "remove "+dir+",") {
		t.Errorf("symlinked directory: hint %q; want to remove it", f.hint)
	}
}

func TestStatusTable(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	var b bytes.Buffer
	writeTable(&b, []ipc.TenantStatus{
		{Tenant: "designsafe", Default: true, State: ipc.StateReady, Username: "jdoe",
			AccessExpiresAt: at(3*time.Hour + 12*time.Minute), LastRefresh: at(-48 * time.Minute),
			NextRefresh: at(2 * time.Hour), RefreshCount: 12, RefreshExpiresAt: at(300 * 24 * time.Hour)},
		{Tenant: "tacc", State: ipc.StateLoginRequired},
	}, now)
	want := `TENANT        STATE           USER  TOKEN EXPIRES  LAST REFRESH  NEXT REFRESH  REFRESHES  REFRESH TOKEN EXPIRES
designsafe *  ready           jdoe  in 3h12m       48m ago       in 2h         12         in 300d
tacc          login_required  -     -              -             -             0          -
`
	if got := b.String(); got != want {
		t.Errorf("writeTable =\n%s\nwant\n%s", got, want)
	}
}

func TestHelpListsEveryExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"help"}, strings.NewReader(""), &out, &errb); code != exitOK {
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
		code := Main(args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || out.Len() != 0 {
			t.Errorf("Main(%q) = %d, stdout %q; want %d and nothing on stdout", args, code, out.String(), exitUsage)
		}
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "tapis-token: ") || !strings.HasPrefix(lines[1], "tapis-token: hint: ") {
			t.Errorf("Main(%q) stderr = %q; want an error line and a hint line", args, errb.String())
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

func TestShort(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{12*time.Second + 300*time.Millisecond, "12s"},
		{4*time.Minute + 10*time.Second, "4m10s"},
		{48 * time.Minute, "48m"},
		{2 * time.Hour, "2h"},
		{3*time.Hour + 12*time.Minute + 59*time.Second, "3h12m"},
		{3*time.Hour + 10*time.Minute, "3h10m"},
		{72 * time.Hour, "3d"},
	}
	for _, tc := range cases {
		if got := short(tc.d); got != tc.want {
			t.Errorf("short(%v) = %q; want %q", tc.d, got, tc.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote(`it's`); got != `'it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
	for in, want := range map[string]string{"/tmp/tapis-agent-1000": "/tmp/tapis-agent-1000", "/tmp/a b": "'/tmp/a b'", "": "''", "/x/$HOME": "'/x/$HOME'"} {
		if got := shellArg(in); got != want {
			t.Errorf("shellArg(%q) = %s; want %s", in, got, want)
		}
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

// TestHotOrMain: Hot answers the token command lines itself and leaves
// every other one to Main, untouched.
func TestHotOrMain(t *testing.T) {
	// No agent: a command line Hot takes ends in exit 3.
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
		code, ok := Hot(tc.args, &out, &errb)
		if ok != tc.hot {
			t.Errorf("Hot(%q) took it = %v; want %v", tc.args, ok, tc.hot)
			continue
		}
		if !ok {
			if code != 0 || out.Len() != 0 || errb.Len() != 0 {
				t.Errorf("Hot(%q) left it to Main but returned %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
			}
			continue
		}
		if code != exitUnreachable || out.Len() != 0 || !strings.Contains(errb.String(), "tapis-token: hint: ") {
			t.Errorf("Hot(%q) without an agent = %d, stdout %q, stderr %q; want exit 3 with a hint", tc.args, code, out.String(), errb.String())
		}
	}
}

// TestCommandsAreNotTenants: every command of the help text is one that
// Hot leaves to Main.
func TestCommandsAreNotTenants(t *testing.T) {
	_, cmds, ok := strings.Cut(usage, "\nCommands:\n")
	if !ok {
		t.Fatal("usage has no Commands section")
	}
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	n := 0
	for line := range strings.Lines(cmds) {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue
		}
		name := strings.Fields(line)[0]
		n++
		if !isCommand(name) {
			t.Errorf("command %q of the help text is not in isCommand", name)
		}
	}
	if n < 6 {
		t.Fatalf("found %d commands in the help text; parsing is broken:\n%s", n, cmds)
	}
}
