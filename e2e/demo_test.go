package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoShows are the command lines the demo must show, in this order,
// each with a line of what it printed: the README's set-up, from start
// to stop.
var demoShows = []struct{ cmd, out string }{
	{`$ eval "$(tapis-agent start)"`, `tapis-agent: started agent pid \d+ on `},
	{`$ echo "$PASSWORD" | tapis-token login --password-stdin`, `tapis-token: logged in to demo as demo`},
	{`$ tapis-token | cut -c1-40`, `^eyJ[\w.-]{37}$`},
	{`$ curl -sS -H @<(tapis-token -H) "$base/v3/oauth2/userinfo"`, `"username":"demo"`},
	{`$ tapis-token --min-valid 14s | cut -c1-40`, `^eyJ`},
	{`$ tapis-token --min-valid 1h || echo "exit code $?"`, `hint: ask for less, e.g. tapis-token --min-valid \d+s demo`},
	{`$ tapis-token --json | sed`, `"expires_in": \d+`},
	{`$ tapis-token --env | cut -c1-60`, `^export TAPIS_TOKEN=eyJ`},
	{`$ tapis-token status`, `^demo \*  ready  demo  in \d+s `},
	{`$ tapis-token status`, `^demo \*  ready  demo  in \d+s +\d+s ago +in \d+s +[1-9]`}, // after the proactive refresh
	{`$ tapis-token logout`, `tapis-token: logged out of demo`},
	{`$ tapis-token || echo "exit code $? (4: login required)"`, `^exit code 4 `},
	{`$ echo "$TOKEN" | tapis-token import demo`, `imported a token for demo \(access_only\)`},
	{`$ tapis-token status`, `^demo \*  access_only `},
	{`$ eval "$(tapis-agent stop)"`, `tapis-agent: stopped agent pid \d+`},
	{`$ cat ~/.local/state/tapis-agent/agent.log`, `msg=refreshed tenant=demo`},
}

// TestDemo runs `make demo`'s script as a user would, into a pipe and on
// a terminal: every command it must show is shown before its output, in
// order; colour only on a terminal, never with NO_COLOR; under a minute;
// nothing left behind.
func TestDemo(t *testing.T) {
	t.Parallel()
	t.Run("pipe", func(t *testing.T) {
		t.Parallel()
		out := runDemo(t, nil, false)
		if strings.Contains(out, "\x1b") {
			t.Errorf("the demo wrote escape sequences into a pipe:\n%q", out)
		}
		checkDemo(t, out)
	})
	t.Run("terminal", func(t *testing.T) {
		t.Parallel()
		out := runDemo(t, nil, true)
		if !strings.Contains(out, "\x1b[1m$ eval \"$(tapis-agent start)\"") {
			t.Errorf("the demo on a terminal is not in colour:\n%s", out)
		}
		checkDemo(t, out)
	})
	t.Run("terminal NO_COLOR", func(t *testing.T) {
		t.Parallel()
		out := runDemo(t, []string{"NO_COLOR=1"}, true)
		if strings.Contains(out, "\x1b") {
			t.Errorf("the demo wrote escape sequences with NO_COLOR set:\n%q", out)
		}
	})
}

// runDemo runs contrib/demo.sh with the binaries under test, its output
// into a pipe or a terminal, and returns the output (with a terminal's
// CR LF as LF).
func runDemo(t *testing.T, env []string, tty bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../contrib/demo.sh")
	cmd.Env = append(os.Environ(), append([]string{"TAPIS_AGENT_BIN=" + binDir}, env...)...)
	var b strings.Builder
	var master *os.File
	if tty {
		m, s, err := openPTY()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		master = m
		defer master.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		defer s.Close()
	} else {
		cmd.Stdout, cmd.Stderr = &b, &b
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when the terminal's output is drained
	if master == nil {
		close(done)
	} else {
		cmd.Stdin.(*os.File).Close()
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			close(done)
		}()
	}
	err := cmd.Wait()
	took := time.Since(start)
	if master != nil {
		// Reading ends when the last holder of the terminal exits; a
		// straggler must not hang the test.
		master.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	<-done
	out := b.String()
	if master == nil && err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if err != nil {
		t.Fatalf("demo on a terminal: %v", err)
	}
	if took > time.Minute {
		t.Errorf("the demo took %v; want under a minute", took)
	}
	return out
}

// checkDemo checks the demo's output: the commands it must show, each
// followed by its output, and nothing left behind.
func checkDemo(t *testing.T, out string) {
	t.Helper()
	out = strings.ReplaceAll(out, "\r\n", "\n")
	plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
	rest := plain
	for _, s := range demoShows {
		i := strings.Index(rest, "\n"+s.cmd)
		if i < 0 {
			t.Fatalf("the demo does not show %q (in order):\n%s", s.cmd, plain)
		}
		rest = rest[i+1:]
		_, after, _ := strings.Cut(rest, "\n")
		// Its output: up to the next command line.
		block := after
		if j := strings.Index(after, "\n$ "); j >= 0 {
			block = after[:j]
		}
		if !regexp.MustCompile(`(?m)` + s.out).MatchString(block) {
			t.Errorf("after %q the demo shows\n%s\nwant a line matching %q", s.cmd, block, s.out)
		}
		rest = after
	}
	// Nothing left behind: its directory and its agent.
	if m := regexp.MustCompile(`(/tmp/tapis-demo\.\w+) is removed`).FindStringSubmatch(plain); m == nil {
		t.Errorf("the demo does not say which directory it removes:\n%s", plain)
	} else if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind (%v)", m[1], err)
	}
	if m := regexp.MustCompile(`refreshes: (\d+) before the wait, (\d+) now`).FindStringSubmatch(plain); m == nil {
		t.Errorf("the demo does not say how often the agent refreshed:\n%s", plain)
	} else if before, _ := strconv.Atoi(m[1]); func() bool { after, _ := strconv.Atoi(m[2]); return after <= before }() {
		t.Errorf("no proactive refresh in the demo: %s refreshes before the wait, %s after", m[1], m[2])
	}
	if m := regexp.MustCompile(`started agent pid (\d+)`).FindStringSubmatch(plain); m != nil {
		// Gone, or a zombie that no init reaped (as in some containers).
		if b, err := os.ReadFile("/proc/" + m[1] + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
			t.Errorf("the demo's agent, pid %s, still runs: %s", m[1], b)
		}
	}
}
