package tokencli

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/ipc"
)

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
	if code := Main(t.Context(), []string{"help"}, strings.NewReader(""), &out, &errb); code != cmdline.ExitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range []int{cmdline.ExitOK, cmdline.ExitError, cmdline.ExitUsage, cmdline.ExitUnreachable, cmdline.ExitLogin, cmdline.ExitUpstream} {
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
		code := Main(t.Context(), args, strings.NewReader(""), &out, &errb)
		if code != cmdline.ExitUsage || out.Len() != 0 {
			t.Errorf("Main(%q) = %d, stdout %q; want %d and nothing on stdout", args, code, out.String(), cmdline.ExitUsage)
		}
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "tapis-token: ") || !strings.HasPrefix(lines[1], "tapis-token: hint: ") {
			t.Errorf("Main(%q) stderr = %q; want an error line and a hint line", args, errb.String())
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

// TestCommandsAreNotTenants: every command of the help text is one that
// cmdline.Run leaves to Main.
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
		if !cmdline.IsCommand(name) {
			t.Errorf("command %q of the help text is not in isCommand", name)
		}
	}
	if n < 6 {
		t.Fatalf("found %d commands in the help text; parsing is broken:\n%s", n, cmds)
	}
}

func TestWithEnv(t *testing.T) {
	got := withEnv([]string{"A=1", "TAPIS_TOKEN=old", "TAPIS_TOKEN_X=keep", "B=2"}, "TAPIS_TOKEN=new", "TAPIS_BASE_URL=u")
	want := []string{"A=1", "TAPIS_TOKEN_X=keep", "B=2", "TAPIS_TOKEN=new", "TAPIS_BASE_URL=u"}
	if !slices.Equal(got, want) {
		t.Errorf("withEnv = %q; want %q", got, want)
	}
}

func TestIsDefaultSocket(t *testing.T) {
	run := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", run)
	t.Chdir(run)
	cases := []struct {
		sock string
		want bool
	}{
		{"", true},
		{run + "/tapis-agent/agent.sock", true},
		{run + "//tapis-agent/./agent.sock", true},
		{"tapis-agent/agent.sock", true}, // relative to the current directory
		{run + "/tapis-agent/other.sock", false},
		{"/tmp/agent.sock", false},
	}
	for _, tc := range cases {
		if got := isDefaultSocket(tc.sock); got != tc.want {
			t.Errorf("isDefaultSocket(%q) = %v; want %v", tc.sock, got, tc.want)
		}
	}
}
