package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestTokenNotInArgv: while curl runs with each of the forms the README
// gives, another user reading every /proc/*/cmdline (and trying every
// /proc/*/environ) never sees the token. The token passed as an argument,
// the form the forms replace, is seen: the watcher works.
func TestTokenNotInArgv(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the watcher runs as uid nobody, which needs root to start")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("skipped: curl is not installed (apt-get install curl)")
	}
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	e.login()
	token := strings.TrimSpace(e.mustToken("", "dev").stdout)

	cases := []struct {
		name    string
		script  string // run by bash, with $URL the slow server
		visible bool
	}{
		{"argument (unsafe)", `curl -sS -H "X-Tapis-Token: $(tapis-token dev)" "$URL"`, true},
		{"-H @<(tapis-token -H)", `curl -sS -H @<(tapis-token -H dev) "$URL"`, false},
		{"-K <(tapis-token --curl-config)", `curl -sS -K <(tapis-token --curl-config dev) "$URL"`, false},
		{"tapis-token -H | curl -H @-", `tapis-token -H dev | curl -sS -H @- "$URL"`, false},
		{"tapis-token exec", `tapis-token exec dev -- sh -c 'printf "X-Tapis-Token: %s\n" "$TAPIS_TOKEN" | curl -sS -H @- "$URL"'`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatcher(t)
			// The server holds each request until the watcher has read
			// every process's command line three times over while curl
			// waits for the answer.
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				got = r.Header.Get("X-Tapis-Token")
				if !w.waitScans(3, 20*time.Second) {
					t.Errorf("the watcher did not finish three scans within 20s")
				}
				rw.Write([]byte("done\n"))
			}))
			defer srv.Close()
			cmd := exec.Command("bash", "-c", tc.script)
			cmd.Env = append(e.environ(), "URL="+srv.URL, "PATH="+binDir+":"+filepath.Dir(curl)+":/usr/bin:/bin")
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "done\n" {
				t.Fatalf("%s: %v\n%s", tc.script, err, out)
			}
			if got != token {
				t.Fatalf("the server got X-Tapis-Token %q; want the agent's token", got)
			}
			seen := w.stop()
			if strings.Contains(seen, token) != tc.visible {
				t.Errorf("token seen by another user in /proc = %v; want %v (the watcher read %d bytes in %d scans)",
					!tc.visible, tc.visible, len(seen), strings.Count(seen, scanMark))
			}
		})
	}
}

// scanMark ends each of the watcher's scans.
const scanMark = "\n@@scan@@\n"

// watcher is a shell running as uid nobody that reads every process's
// command line and environment in /proc in a loop, as any user of a
// login node can.
type watcher struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex // guards out, scans
	cond *sync.Cond
	out  bytes.Buffer
	// scans counts the scans that ended; done is closed at the output's end.
	scans int
	done  chan struct{}
}

func startWatcher(t *testing.T) *watcher {
	t.Helper()
	// cat reads each file it can; other users' environ files refuse it.
	script := `while :; do cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null; printf '` + strings.ReplaceAll(scanMark, "\n", `\n`) + `'; done`
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{t: t, cmd: cmd, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		defer close(w.done)
		r := bufio.NewReader(stdout)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			w.mu.Lock()
			// A mark may straddle two reads: count from just before the
			// new bytes, too little to hold a whole mark already counted.
			from := max(w.out.Len()-len(scanMark)+1, 0)
			w.out.Write(buf[:n])
			w.scans += bytes.Count(w.out.Bytes()[from:], []byte(scanMark))
			w.cond.Broadcast()
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	// One whole scan before curl starts: the watcher runs.
	if !w.waitScans(1, 20*time.Second) {
		t.Fatal("the watcher did not finish a scan within 20s")
	}
	return w
}

// waitScans waits until n more scans have ended, up to d; it reports
// whether they did.
func (w *watcher) waitScans(n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	want := w.scans + n
	for w.scans < want && time.Now().Before(deadline) {
		w.cond.Wait()
	}
	return w.scans >= want
}

// stop ends the watcher and returns all it read.
func (w *watcher) stop() string {
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}
