// Package e2e tests tapis-agent end to end: the real binaries, a real Unix
// socket, and the fake Tapis tenant of tapis/tapistest over loopback.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// binDir holds the binaries under test: $TAPIS_AGENT_BIN when set (make
// test builds them once into bin/ for every suite), else built once by
// TestMain.
var binDir string

func TestMain(m *testing.M) {
	if dir := os.Getenv("TAPIS_AGENT_BIN"); dir != "" {
		d, err := filepath.Abs(dir)
		if err == nil {
			d, err = filepath.EvalSymlinks(d)
		}
		for _, name := range []string{"tapis-agent", "tapis-token", "tapis-fake"} {
			if err != nil {
				break
			}
			var fi os.FileInfo
			if fi, err = os.Stat(filepath.Join(d, name)); err == nil && fi.Mode().Perm()&0o111 == 0 {
				err = fmt.Errorf("%s is not executable", fi.Name())
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "TAPIS_AGENT_BIN=%s: %v; run make build, or unset it to build the binaries here\n", dir, err)
			os.Exit(1)
		}
		binDir = d
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "tapis-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/tapis-agent", "../cmd/tapis-token", "../cmd/tapis-fake")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a fake tenant, an agent process, a socket.
type env struct {
	t      *testing.T
	fake   *tapistest.Server
	dir    string // short temp dir holding the socket and config
	sock   string
	config string
	home   string
	// wrap is a command line that runs the agent's, e.g. unshare's.
	wrap []string
	// extraEnv is added to the environment of every process the test
	// starts (SLURM_CONF, say).
	extraEnv []string

	mu     sync.Mutex
	log    string // the file the agents' stderr goes to
	agent  *exec.Cmd
	exited chan struct{}
}

// newEnv starts a fake tenant "dev" with user jdoe/secret and writes a
// config naming it. It does not start the agent.
func newEnv(t *testing.T, cfg tapistest.Config) *env {
	t.Helper()
	if cfg.TenantID == "" {
		cfg.TenantID = "dev"
	}
	if cfg.Users == nil {
		cfg.Users = map[string]string{"jdoe": "secret"}
	}
	fake := tapistest.New(t, cfg)
	// Unix socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "tae")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, fake: fake, dir: dir, sock: filepath.Join(dir, "s", "agent.sock"),
		config: filepath.Join(dir, "config.toml"), home: filepath.Join(dir, "home"), log: filepath.Join(dir, "agent.stderr")}
	if err := os.MkdirAll(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", fake.URL()))
	return e
}

func (e *env) writeConfig(s string) {
	e.t.Helper()
	tmp := e.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.config); err != nil {
		e.t.Fatal(err)
	}
}

// environ is the environment of every process the test starts.
func (e *env) environ() []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.home,
		"TAPIS_AGENT_SOCK=" + e.sock,
		"TAPIS_AGENT_CONFIG=" + e.config,
		"XDG_RUNTIME_DIR=" + filepath.Join(e.dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(e.home, ".local", "state"),
	}, e.extraEnv...)
}

// startAgent runs tapis-agent serve and waits until it answers.
func (e *env) startAgent(extra ...string) {
	e.t.Helper()
	e.startServe(append([]string{"serve", "--log-level", "debug"}, extra...)...)
}

// stopAgent sends SIGTERM and waits for a clean exit.
func (e *env) stopAgent() {
	if e.agent == nil {
		return
	}
	select {
	case <-e.exited:
		return
	default:
	}
	_ = e.agent.Process.Signal(os.Interrupt)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		_ = e.agent.Process.Kill()
		<-e.exited
		e.t.Errorf("agent did not stop within 10s of SIGINT")
	}
}

// agentLog returns what the agents of e have logged so far.
func (e *env) agentLog() string { return readLog(e.t, e.log) }

// logTo opens the file path for an agent's stderr. The agent writes it
// directly, so that a test reads all it has logged before an answer: a
// pipe's copying goroutine can lag behind. Close it once the agent runs.
func logTo(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readLog returns the content of the log file path; none yet is "".
func readLog(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// result is what one tapis-token run produced.
type result struct {
	stdout, stderr string
	code           int
}

// token runs tapis-token with args and stdin.
func (e *env) token(stdin string, args ...string) result {
	e.t.Helper()
	return runCmd(e.t, filepath.Join(binDir, "tapis-token"), e.environ(), stdin, args...)
}

// runCmd runs the program at path with env, stdin and args, within a
// minute, and returns what it printed and its exit code.
func runCmd(t *testing.T, path string, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", filepath.Base(path), args, err)
	}
	return result{out.String(), errb.String(), code}
}

// mustToken runs tapis-token and fails the test unless it exits 0.
func (e *env) mustToken(stdin string, args ...string) result {
	e.t.Helper()
	r := e.token(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("tapis-token %v: exit %d\nstderr: %s\nagent log:\n%s", args, r.code, r.stderr, e.agentLog())
	}
	return r
}

// login logs jdoe in to the tenant "dev".
func (e *env) login() {
	e.t.Helper()
	e.mustToken("secret\n", "login", "dev", "--password-stdin")
}

// client is an in-process client of the agent's socket.
func (e *env) client() *ipcclient.Client { return &ipcclient.Client{Path: e.sock} }

// status returns the status of tenant name.
func (e *env) status(name string) ipc.TenantStatus {
	e.t.Helper()
	st, err := e.client().Status(context.Background())
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	for _, t := range st.Tenants {
		if t.Tenant == name {
			return t
		}
	}
	e.t.Fatalf("status has no tenant %q: %+v", name, st.Tenants)
	return ipc.TenantStatus{}
}

// waitFor polls cond until it holds or the deadline passes. The agent is
// another process: there is no event to wait on but its answers.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s\nagent log:\n%s", d, what, e.agentLog())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitRemainingBelow waits until the access token of "dev" has less than d
// left, so that asking for d forces a refresh.
func (e *env) waitRemainingBelow(d time.Duration) {
	e.t.Helper()
	exp := e.status("dev").AccessExpiresAt
	if exp == nil {
		e.t.Fatalf("dev has no access token")
	}
	e.waitFor(fmt.Sprintf("less than %s left on the token", d), d+5*time.Second, func() bool {
		return time.Until(*exp) < d
	})
}

// reload calls POST /v1/reload on the agent at sock, which no Go client
// of the agent needs: the CLI reloads by signal, users by editing the file.
func reload(sock string) error {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := hc.Post("http://tapis-agent"+ipc.PathReload, "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", ipc.PathReload, resp.Status, body)
	}
	return nil
}
