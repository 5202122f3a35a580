package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// world is what every measurement shares: the binaries, a fake tenant
// "dev", and an agent of each version logged in to it.
type world struct {
	dir string // temporary; removed by close
	// cur is the version measured, from -bin.
	cur *version
	// old is the version of git revision baselineRev, or nil when it could
	// not be built or started; oldMissing then says why.
	old         *version
	baselineRev string
	oldMissing  string
	// The baseline programs of bench/baseline.
	hello, rawToken, nullAgent string
	fake                       *tapistest.Server
	tokenBytes                 int // size of the access token the fake issues
}

// version is one build of tapis-agent and tapis-token, with its agent
// serving and logged in to the fake tenant "dev".
type version struct {
	agentBin string
	tokenBin string
	agent    *agentProc
	env      []string // environment of its tapis-token runs
}

func newWorld(binDir, baselineRev string) (*world, error) {
	w := &world{baselineRev: baselineRev}
	if err := w.start(binDir); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// start builds what the run needs and starts the fake and the agents.
func (w *world) start(binDir string) error {
	var err error
	// Socket paths are limited to 108 bytes: a short directory.
	if w.dir, err = os.MkdirTemp("", "tab"); err != nil {
		return err
	}
	if w.hello, w.rawToken, w.nullAgent, err = buildBaselines(filepath.Join(w.dir, "baseline")); err != nil {
		return err
	}
	w.fake, err = tapistest.NewServer(tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "secret"}, AccessTTL: time.Hour}, nil)
	if err != nil {
		return err
	}
	if w.cur, err = w.startVersion("cur", binDir); err != nil {
		return err
	}
	tr, err := frameCall(w.cur.agent.sock)("dev", time.Minute)
	if err != nil {
		return err
	}
	w.tokenBytes = len(tr.AccessToken)
	w.old, w.oldMissing = w.startOld(w.baselineRev)
	return nil
}

// oldToken and oldAgent name the baseline revision's programs in the
// table.
func (w *world) oldToken() string { return "`tapis-token` of " + w.baselineRev }
func (w *world) oldAgent() string { return "agent of " + w.baselineRev }

// startOld builds and starts the version of git revision rev. When that
// fails the run goes on without it: it returns nil and the reason.
func (w *world) startOld(rev string) (*version, string) {
	if rev == "" {
		return nil, "-baseline-rev is empty"
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, "git is not available"
	}
	if exec.Command("git", "rev-parse", "--verify", "--quiet", rev+"^{commit}").Run() != nil {
		return nil, fmt.Sprintf("revision %s is not in this repository", rev)
	}
	bin := filepath.Join(w.dir, "old-bin")
	if err := buildAt(rev, bin); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		return nil, fmt.Sprintf("building revision %s failed (see the run's log)", rev)
	}
	v, err := w.startVersion("old", bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		return nil, fmt.Sprintf("the agent of revision %s did not start (see the run's log)", rev)
	}
	return v, ""
}

// startVersion starts the agent of binDir in its own directory dir under
// w.dir and logs it in to the fake.
func (w *world) startVersion(dir, binDir string) (*version, error) {
	v := &version{}
	var err error
	if v.agentBin, err = findBin(binDir, "tapis-agent"); err != nil {
		return nil, err
	}
	if v.tokenBin, err = findBin(binDir, "tapis-token"); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", w.fake.URL())
	a, err := startAgent(v.agentBin, filepath.Join(w.dir, dir), cfg)
	if err != nil {
		return nil, err
	}
	v.agent = a
	v.env = []string{"PATH=/usr/bin:/bin", "HOME=" + w.dir, "TAPIS_AGENT_SOCK=" + a.sock}
	if _, err := a.client().Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"}); err != nil {
		a.stop()
		return nil, fmt.Errorf("logging in: %w", err)
	}
	return v, nil
}

// findBin returns the absolute path of program name in binDir.
func findBin(binDir, name string) (string, error) {
	p, err := filepath.Abs(filepath.Join(binDir, name))
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		return "", fmt.Errorf("%s not found in %s: run make build first", name, binDir)
	}
	return p, nil
}

func (w *world) close() {
	for _, v := range []*version{w.cur, w.old} {
		if v != nil {
			v.agent.stop()
		}
	}
	if w.fake != nil {
		w.fake.Close()
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
}

// proc is a program of the run's, started in the background.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProc starts cmd and waits until ready reports nil, or fails when
// the program exits first or ready has not succeeded within 20 s.
func startProc(cmd *exec.Cmd, ready func() error) (*proc, error) {
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	name := filepath.Base(cmd.Path)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ready() == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start", name)
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer within 20s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop interrupts the program, and kills it if it has not exited 10 s
// later.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// agentProc is a running tapis-agent serve.
type agentProc struct {
	*proc
	sock string
}

// startAgent runs tapis-agent serve with config text cfg in dir and waits
// until it answers.
func startAgent(bin, dir, cfg string) (*agentProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	a := &agentProc{sock: filepath.Join(dir, "s", "agent.sock")}
	cmd := exec.Command(bin, "serve", "--socket", a.sock, "--config", cfgPath, "--log-level", "warn")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "XDG_STATE_HOME=" + dir}
	var err error
	a.proc, err = startProc(cmd, func() error {
		_, err := (&ipcclient.Client{Path: a.sock, Timeout: time.Second}).Status(context.Background())
		return err
	})
	return a, err
}

// client calls the agent's HTTP API, which every version serves alike.
func (a *agentProc) client() *ipcclient.Client { return &ipcclient.Client{Path: a.sock} }

// rss returns the agent's resident set size in bytes.
func (a *agentProc) rss() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// startNullAgent runs bench/baseline/nullagent on a socket in w.dir,
// answering with a token as large as the fake's, and returns its socket.
func (w *world) startNullAgent() (sock string, p *proc, err error) {
	sock = filepath.Join(w.dir, "null.sock")
	cmd := exec.Command(w.nullAgent, sock, strconv.Itoa(w.tokenBytes))
	p, err = startProc(cmd, func() error {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	return sock, p, err
}
