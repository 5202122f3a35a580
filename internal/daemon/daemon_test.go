package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// syncBuffer is a bytes.Buffer that a logger may write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notifySocket is a stand-in for systemd's $NOTIFY_SOCKET.
type notifySocket struct {
	t    *testing.T
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
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	return &notifySocket{t: t, conn: conn}
}

// waitFor reads messages until one starts with prefix, and returns it.
func (n *notifySocket) waitFor(prefix string) string {
	n.t.Helper()
	m, err := n.within(prefix, 10*time.Second)
	if err != nil {
		n.t.Fatalf("waiting for %s: %v", prefix, err)
	}
	return m
}

// within reads messages until one starts with prefix, for at most d.
func (n *notifySocket) within(prefix string, d time.Duration) (string, error) {
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(d))
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			return "", err
		}
		if m := string(buf[:k]); strings.HasPrefix(m, prefix) {
			return m, nil
		}
	}
}

// serving is a Daemon serving on a socket in a temp dir.
type serving struct {
	d      *Daemon
	sock   string
	config string
	level  *slog.LevelVar
	log    *syncBuffer
	notify *notifySocket
	cancel context.CancelFunc
	done   chan error
}

// serve writes config (unless "") and starts a Daemon serving it.
func serve(t *testing.T, config string) *serving {
	t.Helper()
	dir := shortDir(t)
	t.Setenv("LISTEN_PID", "") // no socket activation from the test's parent
	s := &serving{
		sock:   filepath.Join(dir, "run", "agent.sock"),
		config: filepath.Join(dir, "config.toml"),
		level:  new(slog.LevelVar),
		log:    new(syncBuffer),
		notify: newNotifySocket(t, dir),
		done:   make(chan error, 1),
	}
	if config != "" {
		s.write(t, config)
	}
	log := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: s.level}))
	ln, activated, err := Listen(s.sock, log)
	if err != nil {
		t.Fatal(err)
	}
	if activated {
		t.Fatal("Listen reports socket activation; want a socket of its own")
	}
	s.d, err = New(Options{Socket: s.sock, ConfigPath: s.config, Logger: log, Level: s.level, Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- s.d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	s.notify.waitFor("READY=1")
	return s
}

func (s *serving) write(t *testing.T, config string) {
	t.Helper()
	if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// status asks the daemon for its status over its socket.
func (s *serving) status(t *testing.T) *ipc.StatusResponse {
	t.Helper()
	st, err := (&ipcclient.Client{Path: s.sock, Timeout: 10 * time.Second}).Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v\nlog:\n%s", err, s.log)
	}
	return st
}

func tenantNames(st *ipc.StatusResponse) string {
	var names []string
	for _, t := range st.Tenants {
		names = append(names, t.Tenant)
	}
	return strings.Join(names, ",")
}

const devConfig = "log_level = \"debug\"\n\n[tenants.dev]\nbase_url = \"https://dev.example.org\"\nusername = \"jdoe\"\n"

// TestServeReload walks the config through its states: loaded, broken,
// removed and emptied, reloaded by Reload as SIGHUP and the watcher do.
func TestServeReload(t *testing.T) {
	s := serve(t, devConfig)
	st := s.status(t)
	if tenantNames(st) != "dev" || st.ConfigError != "" || st.Version != "v-test" || st.Socket != s.sock || st.PID != os.Getpid() {
		t.Fatalf("status = tenants %q, config error %q, version %q, socket %q, pid %d; want dev, none, v-test, %s, %d",
			tenantNames(st), st.ConfigError, st.Version, st.Socket, st.PID, s.sock, os.Getpid())
	}
	if got := s.level.Level(); got != slog.LevelDebug {
		t.Errorf("level after loading log_level = \"debug\": %v; want DEBUG", got)
	}
	if log := s.log.String(); !strings.Contains(log, "msg=serving") || !strings.Contains(log, "version=v-test") {
		t.Errorf("log lacks the serving line:\n%s", log)
	}

	// A broken file keeps the config in force and says why.
	s.write(t, "[tenants.dev\n")
	if err := s.d.Reload(); err == nil {
		t.Fatal("Reload of a broken config = nil; want its error")
	}
	st = s.status(t)
	if tenantNames(st) != "dev" || st.ConfigError == "" || strings.Contains(st.ConfigError, "no config was loaded") {
		t.Errorf("after a broken reload: tenants %q, config error %q; want dev kept and the parse error alone", tenantNames(st), st.ConfigError)
	}

	// A removed file keeps the config too: an editor may be about to
	// write the new one.
	if err := os.Remove(s.config); err != nil {
		t.Fatal(err)
	}
	if err := s.d.Reload(); err != nil {
		t.Fatalf("Reload of a removed config = %v; want nil", err)
	}
	st = s.status(t)
	if tenantNames(st) != "dev" || !strings.Contains(st.ConfigError, "was removed") {
		t.Errorf("after removing the file: tenants %q, config error %q; want dev kept and the removal reported", tenantNames(st), st.ConfigError)
	}
	if !strings.Contains(s.log.String(), "msg=config_missing") {
		t.Errorf("log lacks config_missing:\n%s", s.log)
	}

	// An empty file drops every tenant, and log_level goes back to info.
	s.write(t, "")
	if err := s.d.Reload(); err != nil {
		t.Fatalf("Reload of an empty config = %v; want nil", err)
	}
	st = s.status(t)
	if len(st.Tenants) != 0 || st.ConfigError != "" {
		t.Errorf("after emptying the file: tenants %q, config error %q; want none", tenantNames(st), st.ConfigError)
	}
	if got := s.level.Level(); got != slog.LevelInfo {
		t.Errorf("level after dropping log_level: %v; want INFO", got)
	}

	s.cancel()
	if err := <-s.done; err != nil {
		t.Errorf("Serve after cancel = %v; want nil", err)
	}
	s.done <- nil // for the cleanup
	s.notify.waitFor("STOPPING=1")
	if _, err := os.Lstat(s.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Serve returned: %v; want it removed", err)
	}
}

// TestServeBrokenConfig: a config that does not load at start leaves the
// daemon serving without tenants, and says so until the file is fixed.
func TestServeBrokenConfig(t *testing.T) {
	s := serve(t, "log_level = \"loud\"\n")
	st := s.status(t)
	if len(st.Tenants) != 0 || !strings.Contains(st.ConfigError, "no config was loaded") {
		t.Fatalf("status with a broken config: tenants %q, config error %q; want none and \"no config was loaded\"", tenantNames(st), st.ConfigError)
	}
	if n := strings.Count(s.log.String(), "msg=config_invalid"); n != 1 {
		t.Errorf("log has %d config_invalid lines; want 1:\n%s", n, s.log)
	}
	s.write(t, devConfig)
	if err := s.d.Reload(); err != nil {
		t.Fatalf("Reload of the fixed config = %v", err)
	}
	if st := s.status(t); tenantNames(st) != "dev" || st.ConfigError != "" {
		t.Errorf("after the fix: tenants %q, config error %q; want dev and none", tenantNames(st), st.ConfigError)
	}
}

// TestServeMissingConfig: no file is an empty config, not an error.
func TestServeMissingConfig(t *testing.T) {
	s := serve(t, "")
	if st := s.status(t); len(st.Tenants) != 0 || st.ConfigError != "" {
		t.Errorf("status without a config file: tenants %q, config error %q; want none", tenantNames(st), st.ConfigError)
	}
}

// TestServeReloadTriggers: SIGHUP, the agent's reload request and a
// change of the file each reload, framed by RELOADING=1 and READY=1.
func TestServeReloadTriggers(t *testing.T) {
	s := serve(t, "")
	reloaded := func(reason string) {
		t.Helper()
		if m := s.notify.waitFor("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
			t.Errorf("%s: reload message %q; want MONOTONIC_USEC", reason, m)
		}
		if m := s.notify.waitFor("READY=1"); !strings.Contains(m, "STATUS=") {
			t.Errorf("%s: message after the reload %q; want READY=1 with STATUS=", reason, m)
		}
	}

	// Serve takes SIGHUP from before READY=1 on.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded("SIGHUP")
	if !strings.Contains(s.log.String(), "reason=SIGHUP") {
		t.Errorf("log lacks the SIGHUP reload:\n%s", s.log)
	}

	if err := postReload(s.sock); err != nil {
		t.Fatalf("reload request: %v", err)
	}
	reloaded("reload request")

	// The watcher starts beside Serve and may not watch yet: write until
	// it sees a change.
	for i := 0; ; i++ {
		s.write(t, devConfig+strings.Repeat("\n", i))
		if _, err := s.notify.within("RELOADING=1", time.Second); err == nil {
			break
		} else if i == 10 {
			t.Fatalf("no reload after writing the config %d times: %v", i+1, err)
		}
	}
	if m := s.notify.waitFor("READY=1"); !strings.Contains(m, "STATUS=") {
		t.Errorf("file change: message after the reload %q; want READY=1 with STATUS=", m)
	}
	if !strings.Contains(s.log.String(), `reason="config file changed"`) {
		t.Errorf("log lacks the watcher's reload:\n%s", s.log)
	}
	if st := s.status(t); tenantNames(st) != "dev" {
		t.Errorf("tenants after the file changed: %q; want dev", tenantNames(st))
	}
}

// TestServeLevelGiven: with no Level, the config's log_level changes
// nothing.
func TestServeLevelGiven(t *testing.T) {
	dir := shortDir(t)
	t.Setenv("LISTEN_PID", "")
	t.Setenv("NOTIFY_SOCKET", "")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(devConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var lvl slog.LevelVar
	lvl.Set(slog.LevelWarn)
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: &lvl}))
	sock := filepath.Join(dir, "agent.sock")
	ln, _, err := Listen(sock, log)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Socket: sock, ConfigPath: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := lvl.Level(); got != slog.LevelWarn {
		t.Errorf("level with Level nil after loading log_level = \"debug\": %v; want WARN as given", got)
	}
	if strings.Contains(buf.String(), "log_level_changed") {
		t.Errorf("log_level_changed logged with Level nil:\n%s", buf.String())
	}
}

func TestNewNeedsSocket(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a socket = nil error; want one")
	}
}

func TestSetLogLevel(t *testing.T) {
	cases := []struct {
		name     string
		from     slog.Level
		config   string
		want     slog.Level
		wantLine string // "" for no line
	}{
		{"unset is info", slog.LevelWarn, "", slog.LevelInfo, "level=INFO msg=log_level_changed from=WARN to=INFO"},
		{"more verbose shows", slog.LevelInfo, "debug", slog.LevelDebug, "level=DEBUG msg=log_level_changed from=INFO to=DEBUG"},
		{"less verbose shows", slog.LevelDebug, "error", slog.LevelError, "level=DEBUG msg=log_level_changed from=DEBUG to=ERROR"},
		{"same is silent", slog.LevelWarn, "warn", slog.LevelWarn, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lvl slog.LevelVar
			lvl.Set(tc.from)
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: &lvl}))
			setLogLevel(log, &lvl, tc.config)
			if got := lvl.Level(); got != tc.want {
				t.Errorf("setLogLevel(%v, %q) set %v; want %v", tc.from, tc.config, got, tc.want)
			}
			if got := buf.String(); tc.wantLine == "" && got != "" || !strings.Contains(got, tc.wantLine) {
				t.Errorf("setLogLevel(%v, %q) logged %q; want %q", tc.from, tc.config, got, tc.wantLine)
			}
		})
	}
}

// shortDir returns a temp dir whose paths fit a Unix socket name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// postReload calls POST /v1/reload on the agent at sock.
func postReload(sock string) error {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := hc.Post("http://tapis-agent"+ipc.PathReload, "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", ipc.PathReload, resp.Status)
	}
	return nil
}

// accessToken is an unsigned access token of the tenant at baseURL, enough
// for an import: the agent does not verify signatures.
func accessToken(baseURL string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload := fmt.Sprintf(`{"iss":%q,"exp":%d,"tapis/token_type":"access","tapis/username":"jdoe","jti":"j1"}`,
		baseURL+"/v3/tokens", exp.Unix())
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

// TestServeReloadSettles: a save that truncates the file and writes it
// later ends no session; a config that ends sessions is put in force once
// it has stayed unchanged for the settle delay, and says so meanwhile.
func TestServeReloadSettles(t *testing.T) {
	s := serve(t, devConfig)
	setSettle := func(d time.Duration) {
		s.d.loadMu.Lock()
		s.d.settle = d
		s.d.loadMu.Unlock()
	}
	setSettle(time.Hour)
	if _, err := s.d.agent.Import(context.Background(), &ipc.ImportRequest{Tenant: "dev",
		AccessToken: accessToken("https://dev.example.org", time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		st := s.status(t)
		for _, ts := range st.Tenants {
			if ts.Tenant == "dev" {
				return ts.State
			}
		}
		return "gone"
	}

	// The truncated file.
	s.write(t, "")
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	st := s.status(t)
	if got := state(); got != ipc.StateAccessOnly || !strings.Contains(st.ConfigError, "would end the session of dev;") {
		t.Fatalf("after truncating the file: dev is %s, config error %q; want the session kept and the wait said", got, st.ConfigError)
	}
	if !strings.Contains(s.log.String(), "msg=config_settling") {
		t.Errorf("log lacks config_settling:\n%s", s.log)
	}
	// The write that follows.
	s.write(t, devConfig+"\n# saved\n")
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, st := state(), s.status(t); got != ipc.StateAccessOnly || st.ConfigError != "" {
		t.Fatalf("after the write: dev is %s, config error %q; want the session and no error", got, st.ConfigError)
	}

	// A removal meant as one happens once the file has settled.
	setSettle(300 * time.Millisecond)
	s.write(t, "")
	start := time.Now()
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	for state() != "gone" {
		s.notify.waitFor("READY=1")
		if time.Since(start) > 10*time.Second {
			t.Fatalf("session still there %s after emptying the file", time.Since(start))
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("session ended %s after emptying the file; want after the settle delay", d)
	}
	if st := s.status(t); st.ConfigError != "" {
		t.Errorf("config error after settling: %q", st.ConfigError)
	}
}

// TestServeReloadSettlesCutFile: a save cut between two tenants, or one
// that removes a tenant, ends that tenant's session only once the file has
// stayed unchanged for the settle delay; the other session is untouched
// throughout.
func TestServeReloadSettlesCutFile(t *testing.T) {
	const prodTable = "\n[tenants.prod]\nbase_url = \"https://prod.example.org\"\nusername = \"jdoe\"\n"
	s := serve(t, devConfig+prodTable)
	s.d.loadMu.Lock()
	s.d.settle = time.Hour
	s.d.loadMu.Unlock()
	for _, name := range []string{"dev", "prod"} {
		if _, err := s.d.agent.Import(context.Background(), &ipc.ImportRequest{Tenant: name,
			AccessToken: accessToken("https://"+name+".example.org", time.Now().Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	states := func() string {
		var out []string
		for _, ts := range s.status(t).Tenants {
			out = append(out, ts.Tenant+"="+ts.State)
		}
		return strings.Join(out, ",")
	}
	both := "dev=" + ipc.StateAccessOnly + ",prod=" + ipc.StateAccessOnly

	cases := []struct{ name, cut string }{
		{"cut after the first tenant", devConfig},
		{"cut inside the second tenant", devConfig + "\n[tenants.prod]\nbase_url = \"https://prod.example.org\"\n"},
	}
	for _, tc := range cases {
		s.write(t, tc.cut)
		if err := s.d.Reload(); err != nil {
			t.Fatal(err)
		}
		if got, msg := states(), s.status(t).ConfigError; got != both || !strings.Contains(msg, "would end the session of prod;") {
			t.Fatalf("%s: %s, config error %q; want both sessions kept and the wait said", tc.name, got, msg)
		}
		s.write(t, devConfig+prodTable)
		if err := s.d.Reload(); err != nil {
			t.Fatal(err)
		}
		if got, msg := states(), s.status(t).ConfigError; got != both || msg != "" {
			t.Fatalf("%s, then written whole: %s, config error %q; want both sessions and no error", tc.name, got, msg)
		}
	}

	// Removing prod on purpose ends its session once the file has settled.
	s.d.loadMu.Lock()
	s.d.settle = 300 * time.Millisecond
	s.d.loadMu.Unlock()
	s.write(t, devConfig)
	start := time.Now()
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	for states() != "dev="+ipc.StateAccessOnly {
		s.notify.waitFor("READY=1")
		if time.Since(start) > 10*time.Second {
			t.Fatalf("prod still there %s after its removal: %s", time.Since(start), states())
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("prod's session ended %s after its removal; want after the settle delay", d)
	}
	if msg := s.status(t).ConfigError; msg != "" {
		t.Errorf("config error after settling: %q", msg)
	}
}

// TestServeReloadAskedAtOnce: a reload the user asks for (SIGHUP, the
// agent's reload request) puts a config that ends a session in force at
// once, even while the watcher's reload of it waits for the file to
// settle.
func TestServeReloadAskedAtOnce(t *testing.T) {
	const prodTable = "\n[tenants.prod]\nbase_url = \"https://prod.example.org\"\nusername = \"jdoe\"\n"
	s := serve(t, devConfig+prodTable)
	s.d.loadMu.Lock()
	s.d.settle = time.Hour
	s.d.loadMu.Unlock()
	if _, err := s.d.agent.Import(context.Background(), &ipc.ImportRequest{Tenant: "prod",
		AccessToken: accessToken("https://prod.example.org", time.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	s.write(t, devConfig)
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if msg := s.status(t).ConfigError; !strings.Contains(msg, "would end the session of prod;") {
		t.Fatalf("the watcher's reload: config error %q; want the wait said", msg)
	}
	if err := s.d.ReloadAsked(); err != nil {
		t.Fatal(err)
	}
	st := s.status(t)
	if len(st.Tenants) != 1 || st.Tenants[0].Tenant != "dev" || st.ConfigError != "" {
		t.Errorf("after an asked reload: tenants %+v, config error %q; want dev alone and no error", st.Tenants, st.ConfigError)
	}
}
