package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// password is distinct enough to be searched for in logs.
const password = "pw-Zq8xVv3-not-in-logs"

func TestStartStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{Users: map[string]string{"jdoe": password}})
	shLine := fmt.Sprintf("TAPIS_AGENT_SOCK=%s; export TAPIS_AGENT_SOCK;\n", e.sock)

	r := e.startDetached()
	if r.stdout != shLine {
		t.Fatalf("start printed %q; want %q", r.stdout, shLine)
	}
	if !strings.Contains(r.stderr, "started agent pid") {
		t.Errorf("start said %q on stderr; want the pid of the agent it started", r.stderr)
	}
	st, err := e.client().Status(context.Background())
	if err != nil {
		t.Fatalf("status after start: %v", err)
	}
	pid := st.PID

	// Again: the same agent, the same socket.
	r = e.startDetached()
	if r.stdout != shLine || !strings.Contains(r.stderr, fmt.Sprintf("agent pid %d already runs", pid)) {
		t.Errorf("second start: stdout %q, stderr %q; want the same socket and pid %d reused", r.stdout, r.stderr, pid)
	}
	if got := agentsServing(t, e.sock); len(got) != 1 || got[0] != pid {
		t.Errorf("agents serving after two starts: %v; want [%d]", got, pid)
	}
	if r := e.startDetached("-c", "-q"); r.stdout != fmt.Sprintf("setenv TAPIS_AGENT_SOCK %s;\n", e.sock) || r.stderr != "" {
		t.Errorf("start -c -q: stdout %q, stderr %q; want one setenv line and silence", r.stdout, r.stderr)
	}
	if r := e.agentCmd([]string{"SHELL=/bin/tcsh"}, "start", "-q"); !strings.HasPrefix(r.stdout, "setenv ") {
		t.Errorf("start with SHELL=/bin/tcsh printed %q; want csh syntax", r.stdout)
	}

	// Hardening, as the kernel sees it.
	limits := readFile(fmt.Sprintf("/proc/%d/limits", pid))
	if !strings.Contains(limits, "Max core file size        0                    0") {
		t.Errorf("/proc/%d/limits:\n%s\nwant a core file size of 0", pid, limits)
	}
	if os.Geteuid() == 0 {
		// root may lock memory whatever RLIMIT_MEMLOCK says. The dumpable
		// flag of root's agent cannot be seen (TestNotDumpableAsNobody).
		if lck := procField(t, pid, "VmLck"); lck == "0 kB" {
			t.Errorf("VmLck = %s; want the agent's memory locked", lck)
		}
	} else {
		checkNotDumpable(t, pid, os.Geteuid())
	}

	// The log is private and holds no secret after a login.
	e.mustToken(password+"\n", "login", "dev", "--password-stdin")
	tok := strings.TrimSpace(e.mustToken("", "dev").stdout)
	logPath := e.agentLogPath()
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatalf("agent log: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("agent log mode = %v; want 0600", fi.Mode().Perm())
	}
	log := readFile(logPath)
	if !strings.Contains(log, "serving") {
		t.Errorf("agent log lacks the serving line:\n%s", log)
	}
	secrets := map[string]string{"password": password, "access token": tok}
	for _, c := range e.fake.Clients() {
		secrets["client key"] = c.ClientKey
	}
	for what, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("agent log holds the %s", what)
		}
	}

	// kill -9 leaves a stale socket; the next start replaces it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the killed agent to die", 10*time.Second, func() bool { return !processAlive(pid) })
	if fi, err := os.Lstat(e.sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket after kill -9: %v; want a stale socket file left behind", err)
	}
	r = e.startDetached()
	if r.stdout != shLine {
		t.Errorf("start over a stale socket printed %q; want %q", r.stdout, shLine)
	}
	st, err = e.client().Status(context.Background())
	if err != nil || st.PID == pid {
		t.Fatalf("status after restart: %+v, %v; want a new agent", st, err)
	}
	pid = st.PID

	// stop: the agent is gone, and so is its socket.
	r = e.agentCmd(nil, "stop")
	if r.code != 0 || r.stdout != "unset TAPIS_AGENT_SOCK;\n" || !strings.Contains(r.stderr, fmt.Sprintf("stopped agent pid %d", pid)) {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if processAlive(pid) {
		t.Errorf("agent pid %d alive after stop returned", pid)
	}
	if _, err := os.Lstat(e.sock); !os.IsNotExist(err) {
		t.Errorf("socket after stop: %v; want it removed", err)
	}
	if r := e.agentCmd(nil, "stop"); r.code != 1 || !strings.Contains(r.stderr, "no agent answers on "+e.sock) {
		t.Errorf("stop without agent: exit %d, stderr %q; want 1 and a clear message", r.code, r.stderr)
	}
	if r := e.token("", "status"); r.code != 3 {
		t.Errorf("tapis-token status after stop: exit %d; want 3 (agent not reachable)", r.code)
	}
}

// checkNotDumpable checks that the process pid runs as uid and is not
// dumpable: the kernel then makes its /proc files root's, whereas those of
// a dumpable process belong to its uid.
func checkNotDumpable(t *testing.T, pid, uid int) {
	t.Helper()
	if got := strings.Fields(procField(t, pid, "Uid")); len(got) == 0 || got[0] != strconv.Itoa(uid) {
		t.Fatalf("pid %d runs as uid %v; want %d", pid, got, uid)
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; owner != 0 {
		t.Errorf("/proc/%d/status of an agent running as uid %d is owned by uid %d; want 0 (the agent is not dumpable)", pid, uid, owner)
	}
}

// TestNotDumpableAsNobody checks the dumpable flag where CI can see it:
// every process of root has root-owned /proc files, so root runs the agent
// as nobody. As another user, TestStartStop checks it.
func TestNotDumpableAsNobody(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as another uid; TestStartStop checks the flag")
	}
	a := startAsNobody(t)
	checkNotDumpable(t, a.pid, nobody)
}

// TestMlockWarning checks that an agent whose RLIMIT_MEMLOCK is too small
// to lock its memory says so in its log, and serves all the same.
func TestMlockWarning(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as a user without CAP_IPC_LOCK")
	}
	a := startAsNobody(t, "prlimit", "--memlock=65536:65536")
	// The agent's stderr reaches the buffer through a copying goroutine,
	// which may lag behind its first answer.
	var log string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log = a.agentLog()
		if strings.Contains(log, "msg=serving") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(log, "msg=hardening_incomplete") || !strings.Contains(log, "memory not locked: RLIMIT_MEMLOCK is 64 KiB, and the agent needs") {
		t.Errorf("agent log with RLIMIT_MEMLOCK = 64 KiB lacks the mlockall warning:\n%s", log)
	}
	if !strings.Contains(log, "msg=serving") {
		t.Errorf("agent log lacks the serving line:\n%s", log)
	}
	if lck := procField(t, a.pid, "VmLck"); lck != "0 kB" {
		t.Errorf("VmLck = %s; want nothing locked", lck)
	}
	// Status says it too, with what is at risk and the fix an ordinary
	// user can apply: none beyond the hard limit.
	r := a.token("status")
	if r.code != 0 {
		t.Errorf("tapis-token status: exit %d, stderr %q; want the agent serving", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "\nwarning: memory not locked: RLIMIT_MEMLOCK is 64 KiB") ||
		!strings.Contains(r.stdout, "the hard limit is 64 KiB, which only an administrator can raise") ||
		!strings.Contains(r.stdout, "swap") || strings.Contains(r.stdout, "ulimit -l unlimited") {
		t.Errorf("tapis-token status lacks the truthful memory warning:\n%s", r.stdout)
	}
}

// TestReservedNamesMatchCommands keeps config.ReservedNames, the names a
// tenant may not have, in step with the commands tapis-token's help lists.
func TestReservedNamesMatchCommands(t *testing.T) {
	t.Parallel()
	// Reserved for a command to come, not dispatched yet.
	ahead := map[string]bool{"completion": true}

	e := newEnv(t, tapistest.Config{})
	help := e.mustToken("", "help").stdout
	_, section, ok := strings.Cut(help, "\nCommands:\n")
	if !ok {
		t.Fatalf("tapis-token help has no Commands section:\n%s", help)
	}
	section, _, _ = strings.Cut(section, "\n\n")
	commands := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		// A command starts its line after two blanks; its description
		// continues further in.
		if rest, ok := strings.CutPrefix(line, "  "); ok && rest != "" && rest[0] != ' ' {
			commands[strings.Fields(rest)[0]] = true
		}
	}
	if len(commands) < 5 {
		t.Fatalf("found commands %v in tapis-token help; want at least login, logout, status, claims, import", commands)
	}
	for c := range commands {
		if !slices.Contains(config.ReservedNames, c) {
			t.Errorf("tapis-token command %q is not in config.ReservedNames: a tenant could be named like it", c)
		}
	}
	for _, n := range config.ReservedNames {
		if !commands[n] && !ahead[n] {
			t.Errorf("config.ReservedNames holds %q, which tapis-token help lists no command for", n)
		}
	}
}

func TestConcurrentStartsMakeOneAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	const n = 5
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = e.agentCmd(nil, "start") })
	}
	wg.Wait()
	for _, pid := range agentsServing(t, e.sock) {
		t.Cleanup(func() { killAndWait(t, pid) })
	}
	want := fmt.Sprintf("TAPIS_AGENT_SOCK=%s; export TAPIS_AGENT_SOCK;\n", e.sock)
	started := 0
	for i, r := range results {
		if r.code != 0 || r.stdout != want {
			t.Errorf("start #%d: exit %d, stdout %q, stderr %q", i, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "started agent") {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d of %d racing starts started an agent; want 1", started, n)
	}
	st, err := e.client().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := agentsServing(t, e.sock); len(got) != 1 || got[0] != st.PID {
		t.Errorf("agents serving after %d racing starts: %v; want only pid %d", n, got, st.PID)
	}
	for i, r := range results {
		if !strings.Contains(r.stderr, "pid "+strconv.Itoa(st.PID)) {
			t.Errorf("start #%d named another agent: %q; want pid %d", i, r.stderr, st.PID)
		}
	}
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed")
	}
	e := newEnv(t, tapistest.Config{})
	ns := newNotifySocket(t, e.dir)
	sock := filepath.Join(e.dir, "activated.sock")
	// Without --accept, systemd-socket-activate waits for the first
	// connection, then execs the agent in its own process with the
	// listening socket as fd 3. TAPIS_AGENT_SOCK stays unset: the agent must
	// serve on the descriptor, not at a path of its own.
	cmd := exec.Command(activate, "-l", sock, "--fdname=agent.sock",
		"-E", "NOTIFY_SOCKET="+ns.path, "-E", "WATCHDOG_USEC=400000",
		"-E", "TAPIS_AGENT_CONFIG="+e.config, "-E", "HOME="+e.home,
		"-E", "XDG_RUNTIME_DIR="+filepath.Join(e.dir, "run"),
		filepath.Join(binDir, "tapis-agent"), "serve", "--log-level", "debug")
	logf := logTo(t, e.log)
	defer logf.Close()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// It binds the socket before it listens: wait for a connection to be
	// accepted, not for the file. That first connection has it exec the
	// agent, which finds it queued and closed.
	e.waitFor("systemd-socket-activate to listen", 10*time.Second, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}

	c := &ipcclient.Client{Path: sock, Timeout: 10 * time.Second}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("status through the activated socket: %v\nlog:\n%s", err, e.agentLog())
	}
	if st.PID != cmd.Process.Pid || st.Socket != sock {
		t.Errorf("status = pid %d socket %q; want pid %d (exec'd in place) socket %q", st.PID, st.Socket, cmd.Process.Pid, sock)
	}
	if msg, _ := ns.waitFor("READY=1"); !strings.Contains(msg, "STATUS=1 needs login") {
		t.Errorf("READY message %q; want it with STATUS=1 needs login", msg)
	}
	if _, skipped := ns.waitFor("WATCHDOG=1"); len(skipped) > 5 {
		t.Errorf("messages before the first watchdog ping: %q", skipped)
	}

	reloadSeen := func(how string) {
		t.Helper()
		msg, _ := ns.waitFor("RELOADING=1")
		if !strings.Contains(msg, "MONOTONIC_USEC=") {
			t.Errorf("%s: reload message %q; want MONOTONIC_USEC with RELOADING=1", how, msg)
		}
		if msg, _ := ns.waitFor("READY=1"); !strings.Contains(msg, "STATUS=") {
			t.Errorf("%s: message after the reload %q; want READY=1 with a STATUS line", how, msg)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloadSeen("SIGHUP")
	if err := reload(sock); err != nil {
		t.Fatalf("POST /v1/reload: %v", err)
	}
	reloadSeen("POST /v1/reload")

	after, err := os.Lstat(sock)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("socket replaced while serving (%v); want the one systemd passed", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.waitFor("STOPPING=1")
	select {
	case <-exited:
		if exitErr != nil {
			t.Errorf("agent exit after SIGTERM: %v; want 0\nlog:\n%s", exitErr, e.agentLog())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent did not exit within 15s of SIGTERM")
	}
	// The socket belongs to systemd: the agent leaves it in place.
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("activated socket after exit: %v; want it left in place", err)
	}
	if _, err := os.Lstat(filepath.Join(e.dir, "run", "tapis-agent")); !os.IsNotExist(err) {
		t.Errorf("the activated agent made its default socket directory (%v); want nothing created", err)
	}
}

func TestMakeInstall(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binaries through make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dir := t.TempDir()
	goenv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	// OUT: the build goes beside the installation, not into bin/, which
	// the other suites of make test run meanwhile.
	cmd := exec.Command("make", "-C", "..", "install", "PREFIX="+dir, "HOME="+dir, "OUT="+filepath.Join(dir, "out"))
	// HOME moves, the Go caches must not.
	cmd.Env = append(os.Environ(), "HOME="+dir, "GOCACHE="+goenv("GOCACHE"), "GOPATH="+goenv("GOPATH"),
		"GOMODCACHE="+goenv("GOMODCACHE"), "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, want := range []string{"systemctl --user daemon-reload && systemctl --user enable --now tapis-agent.socket", `eval "$('` + dir + `/bin/tapis-agent' start -q)"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make install output lacks %q:\n%s", want, out)
		}
	}
	for _, bin := range []string{"tapis-agent", "tapis-token"} {
		fi, err := os.Stat(filepath.Join(dir, "bin", bin))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("installed %s: %v, %v; want mode 0755", bin, fi, err)
		}
	}
	// bash-completion loads a command's completion from a file of its name.
	for _, name := range []string{"tapis-agent", "tapis-token"} {
		b, err := os.ReadFile(filepath.Join(dir, "share", "bash-completion", "completions", name))
		if err != nil || !strings.Contains(string(b), "complete -F _tapis_token tapis-token") || !strings.Contains(string(b), "complete -F _tapis_agent tapis-agent") {
			t.Errorf("installed completion for %s: %v; want the completion of both commands", name, err)
		}
	}
	units := filepath.Join(dir, ".config", "systemd", "user")
	service := readFile(filepath.Join(units, "tapis-agent.service"))
	if !strings.Contains(service, "ExecStart="+dir+"/bin/tapis-agent serve\n") || strings.Contains(service, "@BINDIR@") {
		t.Errorf("installed service does not start %s/bin/tapis-agent:\n%s", dir, service)
	}
	socket := readFile(filepath.Join(units, "tapis-agent.socket"))
	for _, want := range []string{"ListenStream=%t/tapis-agent/agent.sock", "SocketMode=0600", "DirectoryMode=0700", "WantedBy=sockets.target"} {
		if !strings.Contains(socket, want) {
			t.Errorf("installed socket unit lacks %s", want)
		}
	}
	if out, err := exec.Command(filepath.Join(dir, "bin", "tapis-agent"), "version").Output(); err != nil || !strings.HasPrefix(string(out), "tapis-agent ") {
		t.Errorf("installed tapis-agent version: %q, %v", out, err)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return
	}
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	v := exec.Command(analyze, "verify", "--user", filepath.Join(units, "tapis-agent.socket"), filepath.Join(units, "tapis-agent.service"))
	v.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+run, "HOME="+dir)
	if out, err := v.CombinedOutput(); err != nil || strings.Contains(string(out), "tapis-agent") {
		t.Errorf("systemd-analyze verify --user on the installed units: %v\n%s", err, out)
	}
	if err := os.RemoveAll(run); err != nil { // systemd-analyze's
		t.Fatal(err)
	}

	// make uninstall leaves only the build output, and the go command's
	// telemetry counters in ~/.config/go.
	cmd = exec.Command("make", "-C", "..", "uninstall", "PREFIX="+dir, "HOME="+dir)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	if !sameEntries(t, dir, ".config", "out") || !sameEntries(t, filepath.Join(dir, ".config"), "go") {
		t.Errorf("make uninstall left more than the build output:\n%s", tree(t, dir))
	}
}

// sameEntries reports whether dir holds exactly the entries names.
func sameEntries(t *testing.T, dir string, names ...string) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	return slices.Equal(got, names)
}

func TestConcurrentServesKeepOneAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	// A stale socket, as a killed agent leaves it, which every serve may
	// want to replace.
	if err := os.MkdirAll(filepath.Dir(e.sock), 0o700); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	const n = 5
	type proc struct {
		cmd    *exec.Cmd
		stderr bytes.Buffer
		done   chan struct{}
		err    error
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{done: make(chan struct{})}
		p.cmd = exec.Command(filepath.Join(binDir, "tapis-agent"), "serve")
		p.cmd.Env = e.environ()
		p.cmd.Stderr = &p.stderr
		procs[i] = p
	}
	for _, p := range procs {
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-p.done
		})
	}
	// The winner answers; every other one gives up with a clear error.
	var st *ipc.StatusResponse
	e.waitFor("an agent to answer", 10*time.Second, func() bool {
		st, err = e.client().Status(context.Background())
		return err == nil
	})
	for _, p := range procs {
		if p.cmd.Process.Pid == st.PID {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("serve pid %d still runs beside agent %d", p.cmd.Process.Pid, st.PID)
		}
		if p.err == nil || !strings.Contains(p.stderr.String(), "an agent is already running") {
			t.Errorf("losing serve: %v, stderr %q; want exit 1 saying an agent already runs", p.err, p.stderr.String())
		}
	}
	if st2, err := e.client().Status(context.Background()); err != nil || st2.PID != st.PID {
		t.Errorf("status after the race: %+v, %v; want agent %d still serving", st2, err, st.PID)
	}
}
