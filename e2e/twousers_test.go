package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// attackerUID is the user the attacker runs as: nobody.
const attackerUID = 65534

// attackerScript listens on a socket of its own, as the attacker, and
// appends whatever a client sends to a file: the passwords and tokens a
// client that does not check who answers would give away.
const attackerScript = `
import os, socket, sys, threading
sock, got = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sock)
os.chmod(sock, 0o777)
srv.listen(64)
open(sock + ".ready", "w").close()
def serve(c):
    c.settimeout(2)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    if data:
        with open(got, "ab") as f:
            f.write(data)
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

// TestTwoUsers runs a victim (the test's user, root) and an attacker
// (nobody) on one machine: the attacker's socket is put in the victim's
// way by a symlink swapped in a loop under a shared directory, and by a
// socket file that passes every check of the path, and the victim's
// clients must give it nothing, failing with a clear error instead.
func TestTwoUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the attacker as another user (nobody)")
	}
	// The system's python3: one under root's home is not nobody's to run.
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("needs /usr/bin/python3 for the attacker")
	}
	t.Parallel()
	base, err := os.MkdirTemp("", "tu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // the attacker reaches its own directory
		t.Fatal(err)
	}
	// The attacker's own directory, with its socket.
	atk := filepath.Join(base, "atk")
	if err := os.Mkdir(atk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(atk, attackerUID, attackerUID); err != nil {
		t.Fatal(err)
	}
	evil, got := filepath.Join(atk, "evil.sock"), filepath.Join(atk, "got")
	cmd := exec.Command(python, "-c", attackerScript, evil, got)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: attackerUID, Gid: attackerUID}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	poll(t, "the attacker's socket", 10*time.Second, func() bool {
		_, err := os.Stat(evil + ".ready")
		return err == nil
	})
	token := filepath.Join(binDir, "tapis-token")
	env := func(sock string) []string {
		return []string{"TAPIS_AGENT_SOCK=" + sock, "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	}
	nothingGot := func(when string) {
		t.Helper()
		if data, err := os.ReadFile(got); err == nil && len(data) > 0 {
			t.Fatalf("%s: the attacker got %q", when, data)
		}
	}

	// A shared directory others may write, not sticky: the attacker swaps
	// a symlink to its socket in and out of the victim's socket path.
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	sharedSock := filepath.Join(shared, "agent.sock")
	ctx, stop := context.WithCancel(context.Background())
	swapper := exec.CommandContext(ctx, python, "-c", `
import os, sys
evil, path = sys.argv[1], sys.argv[2]
tmp = path + ".new"
while True:
    for target in (evil, "/nonexistent/agent.sock"):
        try:
            os.symlink(target, tmp)
            os.rename(tmp, path)
        except OSError:
            pass
`, evil, sharedSock)
	swapper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: attackerUID, Gid: attackerUID}}
	if err := swapper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); swapper.Wait() }()
	const logins = 200
	refused := 0
	for i := range logins {
		pw := "pw-" + strconv.Itoa(i) + "-victim"
		r := runCmd(t, token, env(sharedSock), pw+"\n", "login", "dev", "--password-stdin")
		if r.code == 3 && strings.Contains(r.stderr, "tapis-token: hint: ") {
			refused++
		}
		if r.code != 3 || !strings.Contains(r.stderr, "tapis-token: hint: ") || !strings.Contains(r.stderr, shared) {
			t.Errorf("login %d under attack: exit %d, stderr %q; want exit 3 and a hint", i, r.code, r.stderr)
			break
		}
	}
	stop()
	nothingGot("the symlink-swap race")
	t.Logf("symlink-swap race: %d logins, %d refused with a clear error, 0 passwords to the attacker", logins, refused)

	// A socket file that passes every check of the path (the victim's own
	// directory, a socket owned by the victim) but that the attacker's
	// process serves: as if the attacker had won a race. Only the check of
	// the peer stands in the way.
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(private, "agent.sock")
	if err := os.Link(evil, sock); err != nil {
		t.Skipf("cannot hard-link the attacker's socket: %v", err)
	}
	if err := os.Lchown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, token, env(sock), "hunter2-victim\n", "login", "dev", "--password-stdin")
	if r.code != 3 || !strings.Contains(r.stderr, "is served by uid 65534, not by you (uid 0)") || !strings.Contains(r.stderr, "TAPIS_AGENT_SOCK") {
		t.Errorf("login to an impostor: exit %d, stderr %q; want exit 3 naming uid 65534 and a way out", r.code, r.stderr)
	}
	r = runCmd(t, token, env(sock), "", "dev")
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "served by uid 65534") {
		t.Errorf("token from an impostor: exit %d, stdout %q, stderr %q; want exit 3", r.code, r.stdout, r.stderr)
	}
	// tapis-agent stop signals nothing an impostor names.
	victim := exec.Command("sleep", "60")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	r = runCmd(t, filepath.Join(binDir, "tapis-agent"), env(sock), "", "stop", "--socket", sock)
	if r.code == 0 {
		t.Errorf("tapis-agent stop on an impostor's socket succeeded:\n%s", r.stderr)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("tapis-agent stop signalled an unrelated process: %v", err)
	}
	nothingGot("the impostor behind a good path")
}
