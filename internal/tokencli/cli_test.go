package tokencli

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
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
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "tapis-token: ") || !strings.HasPrefix(lines[1], "usage: tapis-token ") ||
			!strings.HasPrefix(lines[len(lines)-1], "tapis-token: hint: ") || !strings.HasSuffix(lines[len(lines)-1], " --help") {
			t.Errorf("Main(%q) stderr = %q; want an error line, the usage and a hint to --help", args, errb.String())
		}
	}
}

// TestCommandTable: every command of the help table is one that
// cmdline.Run leaves to Main, that config refuses as a tenant name, that
// dispatch runs, and whose help has usage, summary and example.
func TestCommandTable(t *testing.T) {
	for _, c := range Commands {
		if !cmdline.IsCommand(c.Name) {
			t.Errorf("command %q is not in cmdline.IsCommand", c.Name)
		}
		if !slices.Contains(config.ReservedNames, c.Name) {
			t.Errorf("command %q is not in config.ReservedNames", c.Name)
		}
		if len(c.Usage) == 0 || !strings.HasPrefix(c.Usage[0], c.Name) || c.Summary == "" {
			t.Errorf("command %q has no usage line or summary", c.Name)
		}
		if c.Name != "version" && len(c.Example) == 0 {
			t.Errorf("command %q has no example", c.Name)
		}
		for _, args := range [][]string{{c.Name, "--help"}, {"help", c.Name}} {
			var out, errb bytes.Buffer
			if code := Main(t.Context(), args, strings.NewReader(""), &out, &errb); code != cmdline.ExitOK || errb.Len() != 0 {
				t.Errorf("Main(%q) = %d, stderr %q; want 0 and nothing", args, code, errb.String())
			}
			if !strings.HasPrefix(out.String(), "usage: tapis-token "+c.Name) {
				t.Errorf("Main(%q) printed %q; want its usage", args, out.String())
			}
		}
		checkFlags(t, c)
	}
	checkFlags(t, tokenCommand)
	// And every command the help lists.
	for line := range strings.Lines(usage()) {
		if name, ok := strings.CutPrefix(line, "  "); ok && cmdline.IsCommand(strings.Fields(name)[0]) {
			if cmdline.FindCommand(Commands, strings.Fields(name)[0]) == nil {
				t.Errorf("help lists %q, which has no entry in Commands", name)
			}
		}
	}
}

// checkFlags checks that every flag of c's help is one the command
// accepts: the parser passes it (and a value) and stops at the unknown
// flag after them, before the command does anything. The "-- true" is
// for exec, which wants a command.
func checkFlags(t *testing.T, c cmdline.Command) {
	t.Helper()
	for _, f := range c.FlagNames() {
		var out, errb bytes.Buffer
		args := []string{f, "x", "--no-such-flag", "--", "true"}
		if c.Name != "" {
			args = append([]string{c.Name}, args...)
		}
		code := Main(t.Context(), args, strings.NewReader(""), &out, &errb)
		if code != cmdline.ExitUsage || !strings.Contains(errb.String(), "unknown flag --no-such-flag") {
			t.Errorf("Main(%q) = %d, %s; want it to refuse only --no-such-flag", args, code, errb.String())
		}
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

// TestFieldsAgree: the README, --help and the output name the --json
// fields alike: the token's and the status's, field by field.
func TestFieldsAgree(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		typ  reflect.Type
		help string // the help text that lists them
		doc  string // the README line that lists them
	}{
		{"tapis-token --json", reflect.TypeFor[ipc.TokenResponse](), flagDoc(tokenCommand, "--json"), readmeLine(t, readme, "tapis-token --json ")},
		{"tapis-token status --json", reflect.TypeFor[ipc.StatusResponse](), flagDoc(*cmdline.FindCommand(Commands, "status"), "--json"), ""},
	}
	for _, tc := range cases {
		var fields []string
		for f := range tc.typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, name)
		}
		for _, text := range []string{tc.help, tc.doc} {
			if text == "" {
				continue
			}
			got := regexp.MustCompile(`[a-z]+(_[a-z]+)*`).FindAllString(text, -1)
			var named []string
			for _, w := range got {
				if slices.Contains(fields, w) {
					named = append(named, w)
				}
			}
			if !slices.Equal(named, fields) {
				t.Errorf("%s: %q names the fields %q; the output has %q, in that order", tc.name, text, named, fields)
			}
		}
	}
}

// flagDoc returns the help of flag name of c.
func flagDoc(c cmdline.Command, name string) string {
	for _, f := range c.Flags {
		if f.Names == name {
			return f.Doc
		}
	}
	return ""
}

// readmeLine returns the README's line that holds prefix.
func readmeLine(t *testing.T, readme []byte, prefix string) string {
	for line := range strings.Lines(string(readme)) {
		if strings.Contains(line, prefix) {
			return line
		}
	}
	t.Fatalf("README.md has no line with %q", prefix)
	return ""
}
