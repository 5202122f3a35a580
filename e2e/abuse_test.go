package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// legitBound is the longest a legitimate token request may take while
// the socket is abused; generous for a shared, loaded test machine.
const legitBound = 2 * time.Second

// legit is a well-behaved client asking for a token in a loop, recording
// how long each answer took.
type legit struct {
	e    *env
	stop chan struct{}
	done chan struct{}
	// paused stops the requests while the test opens the socket's
	// directory, which the client rightly refuses to use.
	paused atomic.Bool

	mu     sync.Mutex // guards lats and errs
	lats   []time.Duration
	errs   []string
	served int
}

func startLegit(e *env) *legit {
	l := &legit{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	c := &ipcclient.Client{Path: e.sock, Timeout: 30 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if l.paused.Load() {
				continue
			}
			t0 := time.Now()
			tr, err := c.Token(context.Background(), "dev", time.Minute)
			d := time.Since(t0)
			l.mu.Lock()
			l.lats = append(l.lats, d)
			switch {
			case err != nil:
				l.errs = append(l.errs, err.Error())
			default:
				l.served++
				if msg := servedCheck(tr, time.Minute, time.Now()); msg != "" {
					l.errs = append(l.errs, msg)
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// answers returns how many answers the current measurement holds.
func (l *legit) answers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lats)
}

// check ends the current measurement, checks it and starts a new one.
func (l *legit) check(t *testing.T, phase string) { l.checkMin(t, phase, 1) }

// checkMin is check, failing unless the measurement rests on at least
// least answers.
func (l *legit) checkMin(t *testing.T, phase string, least int) {
	t.Helper()
	l.mu.Lock()
	lats, errs, served := l.lats, l.errs, l.served
	l.lats, l.errs, l.served = nil, nil, 0
	l.mu.Unlock()
	abuseFigures.legitServed.Add(int64(served))
	if len(lats) < least {
		t.Errorf("%s: the legitimate client got %d answers; want %d or more to judge its latency", phase, len(lats), least)
		if len(lats) == 0 {
			return
		}
	}
	slices.Sort(lats)
	p50, p99, worst := lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1]
	t.Logf("%s: legitimate client: %d answers, p50 %s, p99 %s, max %s, %d errors", phase, len(lats), p50, p99, worst, len(errs))
	if p99 > legitBound {
		t.Errorf("%s: legitimate client p99 %s; want < %s", phase, p99, legitBound)
	}
	for _, e := range errs[:min(len(errs), 3)] {
		t.Errorf("%s: legitimate client: %s", phase, e)
	}
}

func (l *legit) end() { close(l.stop); <-l.done }

var abuseFigures struct {
	requests, legitServed, dialFailed atomic.Int64
}

// hammer runs n jobs with the given concurrency.
func hammer(n, conc int, job func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				job(i)
			}
		})
	}
	wg.Wait()
}

// rawExchange writes b on a new connection and reads until the agent
// closes it or a deadline.
func rawExchange(sock string, b []byte, halfClose bool) string {
	c, err := net.Dial("unix", sock)
	if err != nil {
		abuseFigures.dialFailed.Add(1)
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(b)
	if halfClose {
		c.(*net.UnixConn).CloseWrite()
	}
	out, _ := io.ReadAll(io.LimitReader(c, 4096))
	abuseFigures.requests.Add(1)
	return string(out)
}

// TestSocketAbuse abuses the real agent's socket while a legitimate client
// keeps asking for tokens; its answers must keep coming within legitBound.
func TestSocketAbuse(t *testing.T) {
	// Not t.Parallel: it loads the CPUs, and measures the agent's latency.
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	e.login()
	l := startLegit(e)
	defer l.end()

	t.Run("garbage", func(t *testing.T) {
		var ok200 atomic.Int64
		hammer(10000, 32, func(i int) {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			b := make([]byte, 1+r.IntN(512))
			for j := range b {
				b[j] = byte(r.IntN(256))
			}
			if i%2 == 0 { // half of them look like HTTP at first
				b = append([]byte("GET /v1/token?tenant=dev HTTP/1.1\r\n"), b...)
			}
			// Written whole, then EOF: a garbage request that stalled
			// would only measure the agent's header timeout.
			if strings.HasPrefix(rawExchange(e.sock, b, true), "HTTP/1.1 200") {
				ok200.Add(1)
			}
		})
		if n := ok200.Load(); n > 0 {
			t.Errorf("%d garbage requests answered 200", n)
		}
		if n := abuseFigures.dialFailed.Load(); n > 0 {
			t.Errorf("%d garbage connections could not connect", n)
		}
		l.check(t, "10000 garbage requests")
	})

	t.Run("oversized", func(t *testing.T) {
		bigHeader := []byte("GET /v1/token?tenant=dev HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")
		bigBody := []byte(fmt.Sprintf("POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"tenant\":\"", 10<<20))
		bigBody = append(bigBody, []byte(strings.Repeat("a", 10<<20))...)
		var wrong, empty atomic.Int64
		// The agent lingers up to half a second on each refused
		// connection before it closes it (net/http's guard against a
		// reset): 32 at a time keep that from adding up.
		hammer(200, 32, func(i int) {
			req, want := bigHeader, "HTTP/1.1 431"
			if i%2 == 1 {
				req, want = bigBody, "HTTP/1.1 413"
			}
			// The agent answers before it has read everything and
			// closes; the answer waits in the socket for the reader.
			switch got := rawExchange(e.sock, req, false); {
			case got == "":
				empty.Add(1)
			case !strings.HasPrefix(got, want):
				wrong.Add(1)
			}
		})
		if n := wrong.Load() + empty.Load(); n > 0 {
			t.Errorf("%d oversized requests were not refused with 431/413 (%d without any answer)", n, empty.Load())
		}
		l.check(t, "100 1 MiB headers and 100 10 MiB bodies")
	})

	t.Run("half-closed", func(t *testing.T) {
		// Rounds of 1000 until the legitimate client's latency rests on
		// 50 answers or more, within a bound.
		var answered, sent atomic.Int64
		deadline := time.Now().Add(30 * time.Second)
		for sent.Load() == 0 || (l.answers() < 50 && time.Now().Before(deadline)) {
			hammer(1000, 32, func(i int) {
				req := "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
				if i%2 == 1 {
					req = req[:10] // a partial request, then EOF
				}
				sent.Add(1)
				if strings.HasPrefix(rawExchange(e.sock, []byte(req), true), "HTTP/1.1 200") {
					answered.Add(1)
				}
			})
		}
		if n, want := answered.Load(), sent.Load()/2; n != want {
			t.Errorf("%d of %d whole half-closed requests answered 200", n, want)
		}
		l.checkMin(t, fmt.Sprintf("%d half-closed connections", sent.Load()), 50)
	})

	t.Run("idle", func(t *testing.T) {
		var conns []net.Conn
		var dialed []time.Time
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 1000 {
			c, err := net.Dial("unix", e.sock)
			if err != nil {
				t.Fatalf("dialing idle connection %d: %v", len(conns), err)
			}
			conns = append(conns, c)
			dialed = append(dialed, time.Now())
		}
		abuseFigures.requests.Add(1000)
		// The agent closes a connection that sends no request within its
		// header timeout (ipcserver's ReadHeaderTimeout, 5 s, which the
		// agent has no flag to shorten). Each connection must see the
		// agent close it within that bound, plus slack for a loaded
		// machine; a read that times out instead means it was kept.
		const bound, slack = 5 * time.Second, 3 * time.Second
		var closed, kept atomic.Int64
		var slowest atomic.Int64
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				c.SetReadDeadline(dialed[i].Add(bound + slack))
				n, err := c.Read(make([]byte, 64))
				switch {
				case n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
					closed.Add(1)
					d := int64(time.Since(dialed[i]))
					for {
						old := slowest.Load()
						if d <= old || slowest.CompareAndSwap(old, d) {
							break
						}
					}
				default:
					kept.Add(1)
				}
			})
		}
		wg.Wait()
		t.Logf("1000 idle connections: %d closed by the agent, the last %s after its dial; %d kept", closed.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), kept.Load())
		if kept.Load() > 0 {
			t.Errorf("%d of 1000 idle connections were not closed within %s of their dial (header timeout %s)", kept.Load(), bound+slack, bound)
		}
		if d := time.Duration(slowest.Load()); d < bound-time.Second {
			t.Errorf("an idle connection was closed %s after its dial; the header timeout is %s", d, bound)
		}
		l.check(t, "1000 idle connections held open")
	})

	t.Run("other-uid", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to run a process as another user")
		}
		// The socket's directory is 0700: another user cannot even
		// connect. Open it up to reach the peer check behind it.
		out, err := asNobody(e.sock)
		if err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("another user through the 0700 directory: %v %q; want permission denied", err, out)
		}
		dir := filepath.Dir(e.sock)
		l.paused.Store(true)
		time.Sleep(100 * time.Millisecond) // lets a request in progress end; a pause is best effort
		if err := os.Chmod(e.dir, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(e.sock, 0o666); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			out, err := asNobody(e.sock)
			if err != nil || !strings.HasPrefix(out, "HTTP/1.1 403") || strings.Contains(out, "eyJ") {
				t.Fatalf("another user's request: %v %q; want 403 and no token", err, out)
			}
		}
		os.Chmod(dir, 0o700)
		os.Chmod(e.dir, 0o700)
		l.paused.Store(false)
		time.Sleep(200 * time.Millisecond) // lets the legitimate client ask again
		abuseFigures.requests.Add(21)
		if !strings.Contains(e.agentLog(), "peer_uid=65534") {
			t.Errorf("the agent did not log the refused peer")
		}
		l.check(t, "requests from another uid")
	})
	t.Logf("abuse requests sent %d; legitimate tokens served meanwhile %d", abuseFigures.requests.Load(), abuseFigures.legitServed.Load())
}

// asNobody asks for a token on sock as uid 65534, with the system Python
// (a binary every user may run), and returns what it read.
func asNobody(sock string) (string, error) {
	const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"GET /v1/token?tenant=dev HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, sock)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
