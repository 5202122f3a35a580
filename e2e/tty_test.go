package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// ttyRun is tapis-token running in a new session whose controlling
// terminal is a pseudo-terminal, as when a user types the command: its
// /dev/tty, stdin, stdout and stderr are that terminal.
type ttyRun struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	done   chan struct{} // closed when the output is drained and the process reaped
	code   int

	mu  sync.Mutex
	out bytes.Buffer // everything the program wrote to the terminal
}

// tokenTTY starts tapis-token with args on a new pseudo-terminal.
func (e *env) tokenTTY(args ...string) *ttyRun {
	e.t.Helper()
	master, tty, err := openPTY()
	if err != nil {
		e.t.Skipf("no pseudo-terminal: %v", err)
	}
	cmd := exec.Command(filepath.Join(binDir, "tapis-token"), args...)
	cmd.Env = e.environ()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	// Only the child holds the terminal now: when it exits, reading the
	// master ends (EIO on Linux).
	tty.Close()
	r := &ttyRun{t: e.t, master: master, cmd: cmd, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				break
			}
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		close(r.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = cmd.Process.Kill()
			<-r.done
		}
		master.Close()
	})
	return r
}

// output returns what the program wrote to its terminal so far.
func (r *ttyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// expect waits until the terminal shows want for the n-th time.
func (r *ttyRun) expect(want string, n int) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(r.output(), want) < n {
		select {
		case <-r.done:
			r.t.Fatalf("tapis-token ended (exit %d) before showing %q %d times:\n%s", r.code, want, n, r.output())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the terminal did not show %q %d times within 20s:\n%s", want, n, r.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// answer waits for the n-th prompt and types line and Enter.
func (r *ttyRun) answer(prompt string, n int, line string) {
	r.t.Helper()
	r.expect(prompt, n)
	if _, err := r.master.Write([]byte(line + "\n")); err != nil {
		r.t.Fatalf("typing after %q: %v", prompt, err)
	}
}

// wait waits for the program to end and returns its exit code and
// everything it wrote to the terminal.
func (r *ttyRun) wait() (int, string) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.t.Fatalf("tapis-token did not end within 30s:\n%s", r.output())
	}
	return r.code, r.output()
}

const passwordPrompt = "Password for jdoe@dev: "

// TestLoginAsksAgain: on a terminal, a wrong password is asked again, up
// to three tries in all.
func TestLoginAsksAgain(t *testing.T) {
	t.Parallel()
	t.Run("wrong wrong right", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tapistest.Config{})
		e.startAgent()
		r := e.tokenTTY("login", "dev")
		r.answer(passwordPrompt, 1, "wrong1")
		r.answer(passwordPrompt, 2, "wrong2")
		r.answer(passwordPrompt, 3, "secret")
		code, out := r.wait()
		if code != 0 || !strings.Contains(out, "try again (2 of 3)") || !strings.Contains(out, "try again (3 of 3)") ||
			!strings.Contains(out, "logged in to dev as jdoe") {
			t.Fatalf("wrong, wrong, right: exit %d; want 0, two retries and logged in:\n%s\nagent log:\n%s", code, out, e.agentLog())
		}
		if st := e.status("dev"); st.State != ipc.StateReady {
			t.Errorf("status after the third try = %s; want ready", st.State)
		}
		e.mustToken("", "dev")
	})

	t.Run("three wrong", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tapistest.Config{})
		e.startAgent()
		r := e.tokenTTY("login", "dev")
		for i := 1; i <= 3; i++ {
			r.answer(passwordPrompt, i, fmt.Sprintf("wrong%d", i))
		}
		code, out := r.wait()
		if code != 4 || strings.Count(out, passwordPrompt) != 3 ||
			!strings.Contains(out, "tapis-token: Tapis refused the username or password for dev 3 times; not logged in") ||
			!strings.Contains(out, "tapis-token: hint: ") || !strings.Contains(out, "tapis-token login dev") {
			t.Fatalf("three wrong passwords: exit %d; want 4 after exactly three prompts, the refusal and a hint:\n%s", code, out)
		}
		if n := e.fake.GrantCalls("password"); n != 3 {
			t.Errorf("password grants upstream = %d; want 3", n)
		}
		if st := e.status("dev"); st.State != ipc.StateLoginRequired {
			t.Errorf("status = %s; want login_required", st.State)
		}
		for i := 1; i <= 3; i++ {
			if log := e.agentLog(); strings.Contains(log, fmt.Sprintf("wrong%d", i)) {
				t.Errorf("a password is in the agent log:\n%s", log)
			}
		}
	})

	// A username typed at the prompt may be the wrong half: it is asked
	// again too, with the last one as the default.
	t.Run("wrong username", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tapistest.Config{})
		e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\n", e.fake.URL()))
		e.startAgent()
		r := e.tokenTTY("login", "dev")
		r.answer("Username for dev: ", 1, "jdo")
		r.answer("Password for jdo@dev: ", 1, "secret")
		r.answer("Username for dev [jdo]: ", 1, "jdoe")
		r.answer(passwordPrompt, 1, "wrong")
		r.answer("Username for dev [jdoe]: ", 1, "") // Enter keeps jdoe
		r.answer(passwordPrompt, 2, "secret")
		code, out := r.wait()
		if code != 0 || !strings.Contains(out, "logged in to dev as jdoe") {
			t.Fatalf("username fixed on the second try: exit %d:\n%s\nagent log:\n%s", code, out, e.agentLog())
		}
	})

	// A wrong OAuth client is not the user's password: asking for it
	// again would fail the same way, so it is not asked again.
	t.Run("wrong client", func(t *testing.T) {
		t.Parallel()
		e := wrongClientEnv(t)
		r := e.tokenTTY("login", "dev")
		r.answer(passwordPrompt, 1, "secret")
		code, out := r.wait()
		if code != 1 || strings.Count(out, passwordPrompt) != 1 || strings.Contains(out, "try again") ||
			!strings.Contains(out, "rejected the OAuth client") ||
			!strings.Contains(out, "tapis-token: hint: fix client_id and client_key_file under [tenants.dev]") {
			t.Fatalf("wrong client: exit %d; want 1 after one prompt, the client named, and a hint to fix the config:\n%s", code, out)
		}
		if strings.Contains(out, "not-the-key") {
			t.Errorf("the client key is on the terminal:\n%s", out)
		}
	})
}

// wrongClientEnv is an agent whose tenant dev names client c1 with the
// wrong key, "not-the-key".
func wrongClientEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, tapistest.Config{})
	e.withClient("")
	if err := os.WriteFile(filepath.Join(e.dir, "c1.key"), []byte("not-the-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	return e
}

// TestLoginInterruptRestoresEcho: Ctrl-C at the password prompt ends the
// login with the terminal's echo back on, not a shell that shows nothing
// typed.
func TestLoginInterruptRestoresEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	r := e.tokenTTY("login", "dev")
	r.expect(passwordPrompt, 1)
	// On Linux the master reads and sets the terminal's settings too. The
	// prompt is written just before echo goes off: wait for that.
	echo := func() bool {
		t.Helper()
		on, err := echoOn(r.master)
		if err != nil {
			t.Fatal(err)
		}
		return on
	}
	for deadline := time.Now().Add(20 * time.Second); echo(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("echo never went off at the password prompt")
		}
	}
	if _, err := r.master.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	if code, out := r.wait(); code != 130 {
		t.Errorf("tapis-token after Ctrl-C: exit %d; want 130:\n%s", code, out)
	}
	if !echo() {
		t.Errorf("echo is still off after Ctrl-C at the password prompt")
	}
	if st := e.status("dev"); st.State != ipc.StateLoginRequired {
		t.Errorf("status after an interrupted login = %s; want login_required", st.State)
	}
}
