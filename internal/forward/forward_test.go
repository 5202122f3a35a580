package forward

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestParseDir(t *testing.T) {
	long := "/" + strings.Repeat("d", 100)
	cases := []struct {
		name, out, want, err string
	}{
		{"mktemp", "/tmp/tapis-agent-fwd.AbC123xyz0\n", "/tmp/tapis-agent-fwd.AbC123xyz0", ""},
		{"empty", "", "", "not one directory"},
		{"two lines", "/tmp/a\n/tmp/b\n", "", "not one directory"},
		{"relative", "tmp/a\n", "", "not an absolute path"},
		{"unclean", "/tmp/../a\n", "", "not an absolute path"},
		{"space", "/tmp/my dir/x\n", "", "set TMPDIR"},
		{"quote", "/tmp/a'b\n", "", "set TMPDIR"},
		{"too long", long + "\n", "", "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDir(tc.out)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("ParseDir(%q) = %q, %v; want %q, an error with %q", tc.out, got, err, tc.want, tc.err)
			}
		})
	}
}

// TestRemoteCommand runs the remote command line with a local sh, as sshd
// would hand it to the user's shell: the socket is in the command's
// environment, its words are run by sh, its status comes back, and the
// directory goes.
func TestRemoteCommand(t *testing.T) {
	dir := t.TempDir() + "/fwd"
	cases := []struct {
		name    string
		command []string
		out     string
		code    int
	}{
		{"words", []string{"echo", `"$TAPIS_AGENT_SOCK"`, "ok"}, dir + "/agent.sock ok\n", 0},
		{"status", []string{"exit 3"}, "", 3},
		{"quotes", []string{`printf '%s\n' "a b"`}, "a b\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := exec.Command("mkdir", "-m", "700", dir).CombinedOutput(); err != nil {
				t.Fatalf("mkdir: %v %s", err, out)
			}
			line := RemoteCommand(dir+"/agent.sock", dir, tc.command)
			cmd := exec.Command("sh", "-c", line)
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.out || code != tc.code {
				t.Errorf("%s: output %q, exit %d; want %q, %d", line, out, code, tc.out, tc.code)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s left %s: %v", line, dir, err)
			}
		})
	}
	// A socket the user named: nothing is removed.
	if got := RemoteCommand("/x/agent.sock", "", []string{"true"}); strings.Contains(got, "rm -rf") {
		t.Errorf("RemoteCommand without a directory = %q; want no removal", got)
	}
}

func TestArgs(t *testing.T) {
	got := strings.Join(Args("/run/user/1/tapis-agent/agent.sock", "/tmp/f/agent.sock", true), " ")
	want := "-o ExitOnForwardFailure=yes -R /tmp/f/agent.sock:/run/user/1/tapis-agent/agent.sock -t"
	if got != want {
		t.Errorf("Args = %q; want %q", got, want)
	}
}
