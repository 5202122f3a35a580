package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// jwtPattern matches anything shaped like a JWT: three base64url segments,
// the first an encoded JSON object.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// tokenRecorder notes every JWT a fake tenant hands out, by its
// tapis/token_type claim: the access and refresh tokens the audit looks
// for, including the refresh tokens that only the agent ever sees. It is
// safe for concurrent use.
type tokenRecorder struct {
	mu      sync.Mutex      // guards the maps
	access  map[string]bool // access tokens issued
	refresh map[string]bool // refresh tokens issued
}

func newTokenRecorder() *tokenRecorder {
	return &tokenRecorder{access: map[string]bool{}, refresh: map[string]bool{}}
}

// note records the JWTs in text.
func (r *tokenRecorder) note(text string) {
	for _, tok := range jwtPattern.FindAllString(text, -1) {
		c, err := jwt.Decode(tok)
		if err != nil {
			continue
		}
		r.mu.Lock()
		if c.TokenType() == "refresh" {
			r.refresh[tok] = true
		} else {
			r.access[tok] = true
		}
		r.mu.Unlock()
	}
}

// tokens returns the access and refresh tokens noted so far.
func (r *tokenRecorder) tokens() (access, refresh []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.access {
		access = append(access, t)
	}
	for t := range r.refresh {
		refresh = append(refresh, t)
	}
	return access, refresh
}

// parkedListener hands the fake an address without ever accepting on it:
// the fake names its base URL (and so its tokens' issuer) after Addr,
// while the test serves the real listener through a recording handler.
type parkedListener struct {
	addr   net.Addr
	once   sync.Once
	closed chan struct{}
}

func (l *parkedListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *parkedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *parkedListener) Addr() net.Addr { return l.addr }

// teeWriter keeps a copy of a response body.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

// recordedFake starts a fake tenant whose every answer passes through rec
// before it reaches the agent.
func recordedFake(t *testing.T, cfg tapistest.Config, rec *tokenRecorder) *tapistest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake, err := tapistest.NewServer(cfg, &parkedListener{addr: ln.Addr(), closed: make(chan struct{})})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &teeWriter{ResponseWriter: w}
		fake.ServeHTTP(tw, r)
		rec.note(tw.body.String())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fake
}

// newSecretsEnv is newEnv for the audit: the fake records the tokens it
// issues, and the config lives under HOME at its XDG place, so that a
// leak into it, or into anything beside it, is found.
func newSecretsEnv(t *testing.T, cfg tapistest.Config, rec *tokenRecorder) *env {
	t.Helper()
	fake := recordedFake(t, cfg, rec)
	// Unix socket paths are limited to 108 bytes: t.TempDir() can be
	// longer. MkdirTemp makes the directory 0700.
	dir, err := os.MkdirTemp("", "tas")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	home := filepath.Join(dir, "home")
	e := &env{t: t, fake: fake, dir: dir, sock: filepath.Join(dir, "s", "agent.sock"), home: home,
		config: filepath.Join(home, ".config", "tapis-agent", "config.toml")}
	if err := os.MkdirAll(filepath.Dir(e.config), 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

// secret is a value no output or file may show, unless allowed there.
type secret struct {
	name   string
	access bool // an access token: allowed where tokens are printed on purpose
}

// text is an output or a file's content as captured, to be scanned once
// every secret is known.
type text struct {
	label  string
	body   string
	access bool   // access tokens are allowed in it
	allow  string // one more value allowed in it (a key file's key)
	file   string // the path, for files
	isFile bool
}

// audit collects secrets and texts and looks for the former in the
// latter. It is not safe for concurrent use.
type audit struct {
	t       *testing.T
	secrets map[string]secret // by value
	texts   []text
}

func newAudit(t *testing.T) *audit {
	return &audit{t: t, secrets: map[string]secret{}}
}

// secret adds a value that must not leak.
func (a *audit) secret(name, value string) {
	if value != "" {
		a.secrets[value] = secret{name: name}
	}
}

// token adds a JWT, classified by its token type.
func (a *audit) token(name, value string) {
	c, err := jwt.Decode(value)
	if err != nil {
		a.t.Errorf("%s = %q: not a JWT: %v", name, value, err)
		return
	}
	if _, known := a.secrets[value]; !known { // the first name is the telling one
		a.secrets[value] = secret{name: c.TokenType() + " token " + name, access: c.TokenType() == "access"}
	}
}

// output adds an output that must hold no secret, or only access tokens.
func (a *audit) output(label, body string, access bool) {
	a.texts = append(a.texts, text{label: label, body: body, access: access})
}

// snapshot adds every regular file under root as it is now. Files in
// tokenFiles may hold access tokens; a file in keyFiles may hold its key.
func (a *audit) snapshot(stage, root string, tokenFiles map[string]bool, keyFiles map[string]string) {
	a.t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		a.texts = append(a.texts, text{label: stage + ": file " + path, body: string(b),
			access: tokenFiles[path], allow: keyFiles[path], file: path, isFile: true})
		return nil
	})
	if err != nil {
		a.t.Errorf("%s: walking %s: %v", stage, root, err)
	}
}

// heldAccessToken reports whether a snapshot of the file at path held a
// known access token: a token file the scan could have caught leaking.
func (a *audit) heldAccessToken(path string) bool {
	for _, tx := range a.texts {
		if tx.file != path {
			continue
		}
		for v, s := range a.secrets {
			if s.access && strings.Contains(tx.body, v) {
				return true
			}
		}
	}
	return false
}

// scanResult sums up a scan.
type scanResult struct {
	outputs, files int
	paths          map[string]bool // distinct files scanned
	hits           int
}

// scan looks for every secret in every text, and for any JWT that is not
// a known access token allowed there. It reports each hit as an error.
func (a *audit) scan() scanResult {
	a.t.Helper()
	res := scanResult{paths: map[string]bool{}}
	values := make([]string, 0, len(a.secrets))
	for v := range a.secrets {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, tx := range a.texts {
		if tx.isFile {
			res.files++
			res.paths[tx.file] = true
		} else {
			res.outputs++
		}
		for _, v := range values {
			s := a.secrets[v]
			if (s.access && tx.access) || v == tx.allow || !strings.Contains(tx.body, v) {
				continue
			}
			res.hits++
			a.t.Errorf("%s contains the %s: %s", tx.label, s.name, excerpt(tx.body, v))
		}
		for _, tok := range jwtPattern.FindAllString(tx.body, -1) {
			if _, known := a.secrets[tok]; known {
				continue // judged above
			}
			if c, err := jwt.Decode(tok); tx.access && err == nil && c.TokenType() == "access" {
				continue
			}
			res.hits++
			a.t.Errorf("%s contains an unknown JWT: %s", tx.label, excerpt(tx.body, tok))
		}
	}
	return res
}

// excerpt shows where v occurs in s, with a little context.
func excerpt(s, v string) string {
	i := strings.Index(s, v)
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("%q", s[max(0, i-60):min(len(s), i+len(v)+20)])
}
