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
// "dev" and an agent logged in to it.
type world struct {
	dir      string // temporary; removed by close
	agentBin string
	tokenBin string
	hello    string // a hello-world Go binary
	minHTTP  string // a minimal net/http server on a Unix socket
	fake     *tapistest.Server
	agent    *agentProc
	env      []string // environment of tapis-token runs
}

const helloSrc = `package main

import "fmt"

func main() { fmt.Println("hello, world") }
`

// minHTTPSrc answers every request with a JSON body of the given size,
// the size of the agent's token answer.
const minHTTPSrc = `package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	body := []byte("{\"access_token\":\"" + strings.Repeat("a", n) + "\",\"tenant\":\"dev\",\"expires_in\":3600,\"expires_at\":\"2030-01-01T00:00:00Z\"}\n")
	os.Remove(os.Args[1])
	ln, err := net.Listen("unix", os.Args[1])
	if err != nil {
		panic(err)
	}
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
}
`

func newWorld(binDir string) (*world, error) {
	w := &world{}
	for _, b := range []string{"tapis-agent", "tapis-token"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run make build first", b, binDir)
		}
	}
	var err error
	w.agentBin, _ = filepath.Abs(filepath.Join(binDir, "tapis-agent"))
	w.tokenBin, _ = filepath.Abs(filepath.Join(binDir, "tapis-token"))
	// Socket paths are limited to 108 bytes: a short directory.
	if w.dir, err = os.MkdirTemp("", "tab"); err != nil {
		return nil, err
	}
	if w.hello, err = buildGo(w.dir, "hello", helloSrc); err != nil {
		w.close()
		return nil, err
	}
	if w.minHTTP, err = buildGo(w.dir, "minhttp", minHTTPSrc); err != nil {
		w.close()
		return nil, err
	}
	w.fake, err = tapistest.NewServer(tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "secret"}, AccessTTL: time.Hour}, nil)
	if err != nil {
		w.close()
		return nil, err
	}
	cfg := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", w.fake.URL())
	if w.agent, err = startAgent(w.agentBin, filepath.Join(w.dir, "a"), cfg); err != nil {
		w.close()
		return nil, err
	}
	w.env = []string{"PATH=/usr/bin:/bin", "HOME=" + w.dir, "TAPIS_AGENT_SOCK=" + w.agent.sock}
	if _, err := w.agent.client().Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"}); err != nil {
		w.close()
		return nil, fmt.Errorf("logging in: %w", err)
	}
	return w, nil
}

func (w *world) close() {
	if w.agent != nil {
		w.agent.stop()
	}
	if w.fake != nil {
		w.fake.Close()
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
}

// buildGo builds a one-file program the way make build builds the
// helper: static, trimmed, stripped.
func buildGo(dir, name, src string) (string, error) {
	sdir := filepath.Join(dir, name+"-src")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(sdir, "go.mod"), []byte("module "+name+"\n\ngo 1.26\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(sdir, "main.go"), []byte(src), 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = sdir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, out)
	}
	return bin, nil
}

// agentProc is a running tapis-agent serve.
type agentProc struct {
	cmd    *exec.Cmd
	sock   string
	exited chan struct{}
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
	a := &agentProc{sock: filepath.Join(dir, "s", "agent.sock"), exited: make(chan struct{})}
	a.cmd = exec.Command(bin, "serve", "--socket", a.sock, "--config", cfgPath, "--log-level", "warn")
	a.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "XDG_STATE_HOME=" + dir}
	a.cmd.Stderr = os.Stderr
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { a.cmd.Wait(); close(a.exited) }()
	c := &ipcclient.Client{Path: a.sock, Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			return a, nil
		}
		select {
		case <-a.exited:
			return nil, errors.New("agent exited at start")
		default:
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, errors.New("agent did not answer within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *agentProc) client() *ipcclient.Client { return &ipcclient.Client{Path: a.sock} }

func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

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

// startMinHTTP runs the baseline server with a body of n token bytes.
func (w *world) startMinHTTP(n int) (sock string, stop func(), err error) {
	sock = filepath.Join(w.dir, "min.sock")
	cmd := exec.Command(w.minHTTP, sock, strconv.Itoa(n))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("baseline server did not listen within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
