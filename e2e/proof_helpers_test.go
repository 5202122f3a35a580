package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/agent"
	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// logRecord is one line the in-process agent logged.
type logRecord struct {
	time  time.Time
	msg   string
	attrs map[string]any
}

// recordingHandler keeps every log record, for assertions on what the
// agent did and when.
type recordingHandler struct {
	mu   *sync.Mutex
	recs *[]logRecord
	with []slog.Attr
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{mu: &sync.Mutex{}, recs: &[]logRecord{}}
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{time: time.Now(), msg: r.Message, attrs: map[string]any{}}
	for _, a := range h.with {
		rec.attrs[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{mu: h.mu, recs: h.recs, with: append(append([]slog.Attr{}, h.with...), as...)}
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

// records returns a copy of the records so far.
func (h *recordingHandler) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.recs...)
}

// failedAttempts returns the refresher's records of failed refresh
// attempts, in order.
func (h *recordingHandler) failedAttempts() []logRecord {
	var out []logRecord
	for _, r := range h.records() {
		if _, ok := r.attrs["attempts"]; ok && r.msg == "refresh_failed" {
			out = append(out, r)
		}
	}
	return out
}

// inproc is an agent.Agent in this process, served over a real Unix
// socket by ipcserver: unlike the binary, its upstream timeout and clock
// can be set.
type inproc struct {
	a    *agent.Agent
	log  *recordingHandler
	sock string
}

// startInproc serves an agent with opts (Logger is set here) and the given
// tenants until the test ends.
func startInproc(t *testing.T, opts agent.Options, tenants ...*config.Tenant) *inproc {
	t.Helper()
	dir, err := os.MkdirTemp("", "tai")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &inproc{log: newRecordingHandler(), sock: filepath.Join(dir, "s", "agent.sock")}
	opts.Logger = slog.New(p.log)
	if opts.Hostname == "" {
		opts.Hostname = "login1.example.org"
	}
	p.a = agent.New(opts)
	cfg := &config.Config{Path: "test.toml", Tenants: map[string]*config.Tenant{}}
	for _, tn := range tenants {
		cfg.Tenants[tn.Name] = tn
	}
	p.a.ApplyConfig(cfg)
	ln, err := ipcserver.Listen(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ipcserver.New(p.a, opts.Logger).Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		p.a.Close()
	})
	return p
}

func (p *inproc) client() *ipcclient.Client {
	return &ipcclient.Client{Path: p.sock, Timeout: 30 * time.Second}
}

// tenantStatus returns the status of tenant name.
func (p *inproc) tenantStatus(t *testing.T, name string) ipc.TenantStatus {
	t.Helper()
	st, err := p.client().Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, ts := range st.Tenants {
		if ts.Tenant == name {
			return ts
		}
	}
	t.Fatalf("status has no tenant %q", name)
	return ipc.TenantStatus{}
}

// poll waits until cond holds; the agent's work is asynchronous and
// observed only through its answers. Deadline-bounded.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servedCheck judges a served token on the wall clock: it must not have
// expired (JWT exp, whole seconds) and must be valid for minValid by its
// expires_at. It returns a description of what is wrong, or "".
func servedCheck(tr *ipc.TokenResponse, minValid time.Duration, now time.Time) string {
	c, err := jwt.Decode(tr.AccessToken)
	if err != nil {
		return "served token is not a JWT: " + err.Error()
	}
	exp, ok := c.Expiry()
	if !ok {
		return "served token has no exp"
	}
	if !now.Before(exp.Add(time.Second)) { // exp is truncated to the second
		return "served an expired token (exp " + exp.Format(time.RFC3339) + ")"
	}
	if tr.ExpiresAt.Sub(now) < minValid-50*time.Millisecond {
		return "served a token valid " + tr.ExpiresAt.Sub(now).String() + ", less than the " + minValid.String() + " asked"
	}
	return ""
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA and
// returns it with its PEM.
func selfSigned(t *testing.T, cn string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// front is a TCP front for a fake tenant on 127.0.0.1 whose failures the
// fake cannot produce itself: it can stop listening (connections refused)
// and, as a TLS front, present a certificate the agent does not trust.
type front struct {
	t      *testing.T
	addr   string // fixed for its life: the tenant's base URL names it
	target string // the fake's host:port

	mu      sync.Mutex // guards the fields below
	ln      net.Listener
	good    *tls.Certificate // nil: plain TCP
	bad     *tls.Certificate
	useBad  bool
	badSeen int               // handshakes offered the bad certificate
	conns   map[net.Conn]bool // open client connections
}

// newFront listens on a fresh port and forwards to target. With good set
// it terminates TLS with it.
func newFront(t *testing.T, target string, good, bad *tls.Certificate) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{t: t, addr: ln.Addr().String(), target: target, good: good, bad: bad, conns: map[net.Conn]bool{}}
	f.serve(ln)
	t.Cleanup(f.close)
	return f
}

func (f *front) serve(ln net.Listener) {
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.handle(c)
		}
	}()
}

func (f *front) handle(c net.Conn) {
	defer c.Close()
	f.mu.Lock()
	f.conns[c] = true
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
	}()
	good, bad := f.good, f.useBad
	if bad {
		f.badSeen++
	}
	f.mu.Unlock()
	if good != nil {
		cert := *good
		if bad {
			cert = *f.bad
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
	io.Copy(c, up)
}

// refuse closes the listener and every open connection: connections to
// addr are refused, and no kept-alive one carries on.
func (f *front) refuse() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	f.dropConnsLocked()
}

func (f *front) dropConnsLocked() {
	for c := range f.conns {
		c.Close()
	}
}

// reopen listens on addr again.
func (f *front) reopen() {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Errorf("listening again on %s: %v", f.addr, err)
		return
	}
	f.serve(ln)
}

// presentBad switches between the untrusted and the trusted certificate.
func (f *front) presentBad(on bool) {
	f.mu.Lock()
	f.useBad = on
	f.dropConnsLocked() // new connections, new handshakes
	f.mu.Unlock()
}

func (f *front) close() { f.refuse() }

// jsonStrict decodes exactly one JSON value from b into v.
func jsonStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
