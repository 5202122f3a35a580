package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// agentCmd runs the tapis-agent binary with args in e's environment plus
// extra variables, and returns what it printed and its exit code.
func (e *env) agentCmd(extraEnv []string, args ...string) result {
	e.t.Helper()
	return runCmd(e.t, filepath.Join(binDir, "tapis-agent"), append(e.environ(), extraEnv...), "", args...)
}

// startDetached runs `tapis-agent start` with args, fails the test unless
// it exits 0, and makes sure the agent it leaves behind dies with the test.
func (e *env) startDetached(args ...string) result {
	e.t.Helper()
	r := e.agentCmd(nil, append([]string{"start"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("tapis-agent start %v: exit %d\nstderr: %s\nlog:\n%s", args, r.code, r.stderr, readFile(e.agentLogPath()))
	}
	if st, err := e.client().Status(context.Background()); err == nil {
		pid := st.PID
		e.t.Cleanup(func() { killAndWait(e.t, pid) })
	}
	return r
}

// agentLogPath is where `tapis-agent start` makes the agent log.
func (e *env) agentLogPath() string {
	return filepath.Join(e.home, ".local", "state", "tapis-agent", "agent.log")
}

// killAndWait sends SIGKILL to pid, if it still runs, and waits until it is
// gone. The agent of `start` is no child of the test: poll /proc.
func killAndWait(t *testing.T, pid int) {
	t.Helper()
	if !processAlive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Errorf("pid %d still alive 10s after SIGKILL", pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// agentsServing returns the pids of live tapis-agent serve processes of
// this test's binary whose command line names sock.
func agentsServing(t *testing.T, sock string) []int {
	t.Helper()
	exe := filepath.Join(binDir, "tapis-agent")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[0] != exe || args[1] != "serve" || !strings.Contains(string(b), sock) {
			continue
		}
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procField returns the value of a "Name:" line of /proc/PID/status.
func procField(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, name)
	return ""
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// notifySocket is a stand-in for systemd's notification socket: a unixgram
// socket whose path goes into NOTIFY_SOCKET.
type notifySocket struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T, dir string) *notifySocket {
	t.Helper()
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, path: path, conn: conn}
}

// next returns the next message, waiting at most 10 s.
func (n *notifySocket) next() string {
	n.t.Helper()
	buf := make([]byte, 4096)
	if err := n.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		n.t.Fatal(err)
	}
	k, err := n.conn.Read(buf)
	if err != nil {
		n.t.Fatalf("waiting for a notification: %v", err)
	}
	return string(buf[:k])
}

// waitFor returns the first message with a line starting with prefix,
// skipping others (watchdog pings, status updates), and the skipped ones.
func (n *notifySocket) waitFor(prefix string) (msg string, skipped []string) {
	n.t.Helper()
	for {
		m := n.next()
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, prefix) {
				return m, skipped
			}
		}
		skipped = append(skipped, m)
	}
}

// startServe runs tapis-agent with args (serve and its flags), as a child
// logging into e's buffer, and waits until it answers.
func (e *env) startServe(args ...string) {
	e.t.Helper()
	argv := append(append(append([]string{}, e.wrap...), filepath.Join(binDir, "tapis-agent")), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = e.environ()
	logf := logTo(e.t, e.log)
	defer logf.Close()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.agent = cmd
	e.exited = make(chan struct{})
	go func() { cmd.Wait(); close(e.exited) }()
	e.t.Cleanup(e.stopAgent)
	// Readiness: the agent answers status on its socket. It is a separate
	// process, so this polls with a deadline.
	c := &ipcclient.Client{Path: e.sock, Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			return
		}
		select {
		case <-e.exited:
			e.t.Fatalf("agent exited at start:\n%s", e.agentLog())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent did not answer within 10s:\n%s", e.agentLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nobody is the uid (and gid) tests run an agent as when they run as root.
const nobody = 65534

// nobodyAgent is a `tapis-agent serve` running as uid nobody, with its own
// copies of the binaries, HOME and socket directory.
type nobodyAgent struct {
	t    *testing.T
	pid  int
	bin  string // holds tapis-agent and tapis-token, readable by nobody
	home string
	env  []string

	log string // the file the agent's stderr goes to
}

// startAsNobody runs tapis-agent serve as uid nobody, through the command
// wrap (e.g. prlimit with its flags) if given, and waits until it answers
// a tapis-token run as nobody. The test must run as root.
func startAsNobody(t *testing.T, wrap ...string) *nobodyAgent {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("startAsNobody needs root")
	}
	// The test's own directories are root's and 0700: nobody needs a
	// world-searchable one, holding a HOME and socket directory it owns.
	dir, err := os.MkdirTemp("", "tan")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &nobodyAgent{t: t, bin: filepath.Join(dir, "bin"), home: filepath.Join(dir, "home")}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(a.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tapis-agent", "tapis-token"} {
		data, err := os.ReadFile(filepath.Join(binDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a.bin, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(a.bin, name), 0o755); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	sockDir := filepath.Join(a.home, "s")
	for _, d := range []string{a.home, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	a.env = []string{
		"PATH=" + a.bin + ":/usr/bin:/bin",
		"HOME=" + a.home,
		"TAPIS_AGENT_SOCK=" + filepath.Join(sockDir, "agent.sock"),
		"TAPIS_AGENT_CONFIG=" + filepath.Join(a.home, "config.toml"), // missing: an empty config
		"XDG_RUNTIME_DIR=" + filepath.Join(a.home, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(a.home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(a.home, ".local", "state"),
	}

	args := append(append([]string{}, wrap...), filepath.Join(a.bin, "tapis-agent"), "serve")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = a.env
	cmd.Dir = "/"
	a.log = filepath.Join(dir, "agent.stderr")
	logf := logTo(t, a.log)
	defer logf.Close()
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.pid = cmd.Process.Pid // the wrapper execs the agent: the same pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("agent running as nobody did not stop within 10s of SIGTERM")
		}
	})
	// Readiness: root's own connections are refused (a foreign uid), so
	// ask as nobody.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := a.token("status"); r.code == 0 {
			return a
		}
		select {
		case <-exited:
			t.Fatalf("agent running as nobody exited at start:\n%s", a.agentLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent running as nobody did not answer within 10s:\n%s", a.agentLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// token runs the copy of tapis-token as nobody, in the agent's environment.
func (a *nobodyAgent) token(args ...string) result {
	a.t.Helper()
	cmd := exec.Command(filepath.Join(a.bin, "tapis-token"), args...)
	cmd.Env = a.env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("running tapis-token as nobody: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func (a *nobodyAgent) agentLog() string { return readLog(a.t, a.log) }
