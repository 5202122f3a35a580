package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// sshNode is a private OpenSSH server on a loopback port, with its own
// host key and a key authorized for the test, standing in for a compute
// node. No system config is read or changed: sshd runs with a config of
// the test's, and the client with an ssh_config of the test's.
type sshNode struct {
	dir       string
	sshConfig string // ssh -F this: Host "node" is the server
	user      string
	log       string // sshd's
}

// startSSHNode starts sshd, or skips the test saying why it cannot.
func startSSHNode(t *testing.T) *sshNode {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	for _, p := range []string{sshd, "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipped: %s is not installed (apt-get install openssh-server openssh-client): %v", p, err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Skipf("skipped: no user name for uid %d: %v", os.Getuid(), err)
	}
	// sshd refuses a key file under a world-writable directory: a private one.
	dir, err := os.MkdirTemp("", "tassh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &sshNode{dir: dir, sshConfig: filepath.Join(dir, "ssh_config"), user: u.Username}
	for _, k := range []string{"host_key", "user_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tapis-agent-test", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	copyFile(t, filepath.Join(dir, "user_key.pub"), filepath.Join(dir, "authorized_keys"))
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd as root insists on its privilege-separation directory.
		if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) {
			if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
				t.Skipf("skipped: sshd needs /run/sshd: %v", err)
			}
			t.Cleanup(func() { os.Remove("/run/sshd") })
		}
	}
	var port int
	var srv *exec.Cmd
	logPath := filepath.Join(dir, "sshd.log")
	for try := 0; ; try++ {
		port = freePort(t)
		cfg := strings.Join([]string{
			"Port " + fmt.Sprint(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + filepath.Join(dir, "host_key"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"UsePAM no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"StrictModes no",
			"StreamLocalBindUnlink yes",
			"AllowStreamLocalForwarding yes",
			"LogLevel VERBOSE",
			"",
		}, "\n")
		if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		logf := logTo(t, logPath)
		srv = exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		srv.Stderr = logf
		if err := srv.Start(); err != nil {
			logf.Close()
			t.Skipf("skipped: sshd cannot start: %v", err)
		}
		logf.Close()
		exited := make(chan error, 1)
		go func() { exited <- srv.Wait() }()
		if waitListening(port, exited, 10*time.Second) {
			t.Cleanup(func() {
				srv.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					srv.Process.Kill()
					<-exited
				}
			})
			break
		}
		srv.Process.Kill()
		if try == 2 {
			t.Skipf("skipped: sshd did not start listening:\n%s", readFile(logPath))
		}
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	clientCfg := strings.Join([]string{
		"Host node",
		"  HostName 127.0.0.1",
		"  Port " + fmt.Sprint(port),
		"  User " + n.user,
		"  IdentityFile " + filepath.Join(dir, "user_key"),
		"  IdentitiesOnly yes",
		"  UserKnownHostsFile " + knownHosts,
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
		"  LogLevel ERROR",
		// The fastest key exchange: a slow machine spends seconds on
		// the default post-quantum one.
		"  KexAlgorithms curve25519-sha256",
		"",
	}, "\n")
	if err := os.WriteFile(n.sshConfig, []byte(clientCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.log = logPath
	return n
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening reports whether port accepts connections within d, before
// the server exits.
func waitListening(port int, exited <-chan error, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// TestForward: `tapis-agent forward node` binds a socket on the node to
// the agent's through a real sshd; tapis-token and the Python client there
// get the agent's token through it; a process of another uid on the node
// is refused; the socket's directory goes when the remote command ends.
func TestForward(t *testing.T) {
	t.Parallel()
	n := startSSHNode(t)
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	e.login()
	token := strings.TrimSpace(e.mustToken("", "dev").stdout)
	env := append(e.environ(), "TAPIS_AGENT_SSH=ssh -F "+n.sshConfig)

	// A command on the node: the helper there prints the agent's token.
	remoteToken := filepath.Join(binDir, "tapis-token")
	r := runCmd(t, filepath.Join(binDir, "tapis-agent"), env, "", "forward", "node", remoteToken, "dev")
	if r.code != 0 || strings.TrimSpace(r.stdout) != token {
		t.Fatalf("forward node tapis-token dev: exit %d, stdout %q; want the agent's token\nstderr:\n%s\nagent log:\n%s\nsshd log:\n%s",
			r.code, r.stdout, r.stderr, e.agentLog(), readFile(n.log))
	}
	// A socket in a directory of the user's choice; the command's exit
	// status comes back.
	mine := filepath.Join(n.dir, "fwd")
	if err := os.Mkdir(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, filepath.Join(binDir, "tapis-agent"), env, "", "forward", "--remote-socket", filepath.Join(mine, "a.sock"), "node",
		remoteToken, "dev", ">", filepath.Join(mine, "token"), "&&", "exit", "7")
	if r.code != 7 || strings.TrimSpace(readFile(filepath.Join(mine, "token"))) != token {
		t.Errorf("forward --remote-socket node …; exit 7: exit %d, token file %q; want 7 and the token\nstderr:\n%s", r.code, readFile(filepath.Join(mine, "token")), r.stderr)
	}

	// A session that stays: the test looks at the node's side meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tapis-agent"), "forward", "node",
		`echo "$TAPIS_AGENT_SOCK"; read line || true`)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the remote TAPIS_AGENT_SOCK: %v\nstderr:\n%s", err, stderr.String())
	}
	remote := strings.TrimSpace(line)
	dir := filepath.Dir(remote)
	if !strings.HasPrefix(filepath.Base(dir), "tapis-agent-fwd.") || filepath.Base(remote) != "agent.sock" {
		t.Fatalf("remote TAPIS_AGENT_SOCK = %q; want agent.sock in a tapis-agent-fwd.* directory", remote)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("remote socket directory: %v, %v; want mode 0700", fi, err)
	}

	// The user on the node: the helper and the Python client get the token.
	nodeEnv := []string{"PATH=/usr/bin:/bin", "HOME=" + e.home, "TAPIS_AGENT_SOCK=" + remote}
	r = runCmd(t, filepath.Join(binDir, "tapis-token"), nodeEnv, "", "dev")
	if r.code != 0 || strings.TrimSpace(r.stdout) != token {
		t.Errorf("tapis-token through the forwarded socket: exit %d, stdout %q, stderr %q; want the token", r.code, r.stdout, r.stderr)
	}
	if py, err := systemPython(); err == nil {
		src, _ := filepath.Abs("../contrib/python/src")
		r = runCmd(t, py, append(nodeEnv, "PYTHONPATH="+src), "", "-c", "import tapis_agent; print(tapis_agent.token('dev'))")
		if r.code != 0 || strings.TrimSpace(r.stdout) != token {
			t.Errorf("the Python client through the forwarded socket: exit %d, stdout %q, stderr %q; want the token", r.code, r.stdout, r.stderr)
		}
	} else {
		t.Log("python3 is not installed: the Python client through the forwarded socket is not tried")
	}

	// Another uid on the node is refused: by the directory, and, were the
	// directory open, by the socket's own mode.
	if os.Geteuid() == 0 {
		other := connectAs(t, nobody, remote)
		if !strings.Contains(other, "Permission denied") {
			t.Errorf("uid nobody connecting to the forwarded socket: %q; want permission denied", other)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		other = connectAs(t, nobody, remote)
		os.Chmod(dir, 0o700)
		if !strings.Contains(other, "Permission denied") {
			t.Errorf("uid nobody connecting to the forwarded socket in an open directory: %q; want permission denied", other)
		}
	} else {
		t.Log("not root: a peer of another uid on the node is not tried")
	}

	// The session ends: the directory goes with it.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("forward session: %v\nstderr:\n%s", err, stderr.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("remote socket directory after the session: %v; want it removed", err)
	}
	if strings.Contains(e.agentLog(), token) {
		t.Errorf("the agent logged the token")
	}
}

// connectAs connects to the Unix socket path as uid, with python3 (no
// binary of the test needs to be readable by uid), and returns what
// happened: "connected" or the error.
func connectAs(t *testing.T, uid int, path string) string {
	t.Helper()
	py, err := systemPython()
	if err != nil {
		t.Skip("skipped: python3 is not installed, which the other uid's client is")
	}
	cmd := exec.Command(py, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    s.sendall(b"@tapis-agent/1 token dev -\n")
    print("connected:", s.recv(4096))
except OSError as e:
    print(e.strerror)`, path)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// systemPython is the system's python3, which any uid may run.
func systemPython() (string, error) {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3", nil
	}
	return exec.LookPath("python3")
}
