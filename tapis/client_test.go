package tapis_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis"
)

// TestNewValidatesBaseURL checks that New applies baseurl.Normalize, whose
// own tests cover the rule.
func TestNewValidatesBaseURL(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"https://Tacc.tapis.io/", "https://tacc.tapis.io"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://tacc.tapis.io", ""},
		{"https://user:pw@tacc.tapis.io", ""},
	}
	for _, tc := range cases {
		c, err := tapis.New(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("New(%q) = %q, nil; want an error", tc.in, c.BaseURL())
		case tc.want != "" && err != nil:
			t.Errorf("New(%q) error %v; want %q", tc.in, err, tc.want)
		case tc.want != "" && c.BaseURL() != tc.want:
			t.Errorf("New(%q).BaseURL() = %q; want %q", tc.in, c.BaseURL(), tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && strings.Contains(tc.in, "pw@") {
			t.Errorf("New(%q) error %q repeats the password", tc.in, err)
		}
	}
	if _, err := tapis.New("https://x.io", tapis.WithHTTPClient(nil)); err == nil {
		t.Error("New with WithHTTPClient(nil): want an error")
	}
}

// recorded is one request a recording server saw.
type recorded struct {
	method, path string
	header       http.Header
	body         map[string]any
}

// newRecorder starts a server that answers every request with success
// and result, and records the requests.
func newRecorder(t *testing.T, result string, opts ...tapis.Option) (*tapis.Client, func() []recorded) {
	var mu sync.Mutex
	var reqs []recorded
	c := newRaw(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, path: r.URL.Path, header: r.Header.Clone()}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &rec.body); err != nil {
				t.Errorf("request body %q is not JSON: %v", b, err)
			}
		}
		mu.Lock()
		reqs = append(reqs, rec)
		mu.Unlock()
		reply(200, `{"message":"ok","metadata":{},"result":`+result+`,"status":"success","version":"dev"}`)(w, r)
	}, opts...)
	return c, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), reqs...)
	}
}

// TestRequestShape checks method, path, body and the headers the protocol
// is picky about: JSON content type, Basic only on the tokens endpoint,
// X-Tapis-Token only where a user token is needed.
func TestRequestShape(t *testing.T) {
	const tokenResult = `{"access_token":{"access_token":"a.b.c","expires_at":"2026-11-22T18:11:19.676197+00:00","expires_in":14400,"jti":"j1"},` +
		`"refresh_token":{"refresh_token":"d.e.f","expires_at":"2027-11-22T14:11:19+00:00","expires_in":31536000,"jti":"j2"}}`
	const clientResult = `{"active":true,"callback_url":"","client_id":"cid","client_key":"ckey","description":"","display_name":"cid","owner":"jdoe","tenant_id":"dev"}`
	cred := tapis.ClientCredentials{ID: "cid", Key: "ckey"}
	ctx := context.Background()
	cases := []struct {
		name   string
		result string
		call   func(c *tapis.Client) error
		method string
		path   string
		body   map[string]any
		basic  bool   // Authorization: Basic cid:ckey
		token  string // X-Tapis-Token
	}{
		{"password with client", tokenResult, func(c *tapis.Client) error {
			_, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
			return err
		}, "POST", "/v3/oauth2/tokens", map[string]any{"grant_type": "password", "username": "jdoe", "password": "pw"}, true, ""},
		{"password without client", tokenResult, func(c *tapis.Client) error {
			_, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
			return err
		}, "POST", "/v3/oauth2/tokens", map[string]any{"grant_type": "password", "username": "jdoe", "password": "pw"}, false, ""},
		{"refresh", tokenResult, func(c *tapis.Client) error {
			_, err := c.Refresh(ctx, "rt", cred)
			return err
		}, "POST", "/v3/oauth2/tokens", map[string]any{"grant_type": "refresh_token", "refresh_token": "rt"}, true, ""},
		{"device poll", tokenResult, func(c *tapis.Client) error {
			_, err := c.PollDevice(ctx, &tapis.DeviceCode{ClientID: "cid", DeviceCode: "dcode"})
			return err
		}, "POST", "/v3/oauth2/tokens", map[string]any{"grant_type": "device_code", "client_id": "cid", "device_code": "dcode"}, false, ""},
		{"device start", `{"client_id":"cid","device_code":"dcode","expires_in":"Sun, 22 Nov 2026 14:22:09 GMT","user_code":"aTGHNyNZ","verification_uri":"https://x/v3/oauth2/device?client_id=cid"}`,
			func(c *tapis.Client) error {
				_, err := c.StartDevice(ctx, "cid")
				return err
			}, "POST", "/v3/oauth2/device/code", map[string]any{"client_id": "cid"}, false, ""},
		{"create client", clientResult, func(c *tapis.Client) error {
			_, err := c.CreateClient(ctx, "atok", tapis.NewClient{ID: "cid", Description: "token agent"})
			return err
		}, "POST", "/v3/oauth2/clients", map[string]any{"client_id": "cid", "description": "token agent"}, false, "atok"},
		{"create client empty", clientResult, func(c *tapis.Client) error {
			_, err := c.CreateClient(ctx, "atok", tapis.NewClient{})
			return err
		}, "POST", "/v3/oauth2/clients", map[string]any{}, false, "atok"},
		{"delete client", clientResult, func(c *tapis.Client) error {
			return c.DeleteClient(ctx, "atok", "c/id")
		}, "DELETE", "/v3/oauth2/clients/c/id", nil, false, "atok"},
		{"revoke", `""`, func(c *tapis.Client) error {
			return c.Revoke(ctx, "rtok")
		}, "POST", "/v3/oauth2/tokens/revoke", map[string]any{"token": "rtok"}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, reqs := newRecorder(t, tc.result, tapis.WithUserAgent("test-agent/1"))
			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			rs := reqs()
			if len(rs) != 1 {
				t.Fatalf("server saw %d requests; want 1", len(rs))
			}
			r := rs[0]
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("request %s %s; want %s %s", r.method, r.path, tc.method, tc.path)
			}
			if tc.body != nil {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q; want application/json", ct)
				}
				if len(r.body) != len(tc.body) {
					t.Errorf("body = %v; want %v", r.body, tc.body)
				}
				for k, v := range tc.body {
					if r.body[k] != v {
						t.Errorf("body[%q] = %v; want %v", k, r.body[k], v)
					}
				}
			} else if r.body != nil {
				t.Errorf("body = %v; want none", r.body)
			}
			auth := r.header.Get("Authorization")
			if tc.basic {
				req := &http.Request{Header: r.header}
				id, key, ok := req.BasicAuth()
				if !ok || id != "cid" || key != "ckey" {
					t.Errorf("Basic auth = %q, %q, %v; want cid, ckey", id, key, ok)
				}
			} else if auth != "" {
				t.Errorf("Authorization = %q; want none", auth)
			}
			if got := r.header.Get("X-Tapis-Token"); got != tc.token {
				t.Errorf("X-Tapis-Token = %q; want %q", got, tc.token)
			}
			if ua := r.header.Get("User-Agent"); ua != "test-agent/1" {
				t.Errorf("User-Agent = %q; want test-agent/1", ua)
			}
		})
	}
}

func TestParseTokenResult(t *testing.T) {
	c, _ := newRecorder(t, `{"access_token":{"access_token":"a.b.c","expires_at":"2026-11-22T18:11:19.676197+00:00","expires_in":14400,"jti":"j1"},`+
		`"refresh_token":{"refresh_token":"d.e.f","expires_at":"2027-11-22T14:11:19+00:00","expires_in":31536000,"jti":"j2"},"id_token":"x"}`)
	tok, err := c.PasswordGrant(context.Background(), "jdoe", "pw", &tapis.ClientCredentials{ID: "c", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	want := tapis.Token{
		AccessToken: "a.b.c", AccessJTI: "j1", AccessTTL: 4 * time.Hour,
		AccessExpiresAt: time.Date(2026, 11, 22, 18, 11, 19, 676197000, time.UTC),
		RefreshToken:    "d.e.f", RefreshJTI: "j2", RefreshTTL: 365 * 24 * time.Hour,
		RefreshExpiresAt: time.Date(2027, 11, 22, 14, 11, 19, 0, time.UTC),
	}
	if *tok != want {
		t.Errorf("token = %+v;\nwant %+v", *tok, want)
	}

	// Bad expiry fields are transient protocol errors.
	for _, res := range []string{
		`{"access_token":{"access_token":"a.b.c","expires_at":"tomorrow","expires_in":1,"jti":"j"}}`,
		`{"access_token":{"access_token":"a.b.c","expires_at":"2026-11-22T18:11:19+00:00","expires_in":"4h","jti":"j"}}`,
		`{"access_token":{"access_token":"a.b.c","expires_in":1,"jti":"j"}}`,
		`{"access_token":{"expires_at":"2026-11-22T18:11:19+00:00","expires_in":1,"jti":"j"}}`,
		`{"access_token":"a.b.c"}`,
	} {
		c, _ := newRecorder(t, res)
		_, err := c.PasswordGrant(context.Background(), "jdoe", "pw", nil)
		if !tapis.IsTransient(err) {
			t.Errorf("result %s: err = %v; want transient", res, err)
		}
	}
	// A refresh must return a refresh token.
	c, _ = newRecorder(t, `{"access_token":{"access_token":"a.b.c","expires_at":"2026-11-22T18:11:19+00:00","expires_in":1,"jti":"j"}}`)
	if _, err := c.Refresh(context.Background(), "rt", tapis.ClientCredentials{ID: "c", Key: "k"}); !tapis.IsTransient(err) {
		t.Errorf("refresh without refresh token: err = %v; want transient", err)
	}
}

func TestPollDeviceEnforcesExpiry(t *testing.T) {
	c := newRaw(t, reply(400, errorEnvelope("device code not ready.")))
	dc := &tapis.DeviceCode{ClientID: "cid", DeviceCode: "dc", ExpiresAt: time.Now().Add(-time.Second)}
	_, err := c.PollDevice(context.Background(), dc)
	e := asError(t, err)
	if e.Reason != tapis.ReasonDeviceExpired || !tapis.IsDefinitive(err) || errors.Is(err, tapis.ErrDeviceNotReady) {
		t.Errorf("PollDevice after expiry = %v (reason %q); want definitive device_expired", err, e.Reason)
	}
}

func TestStartDeviceExpiry(t *testing.T) {
	cases := []struct {
		expiresIn string
		ok        bool
	}{
		{`"Sun, 22 Nov 2026 14:22:09 GMT"`, true},
		{`600`, true},
		{`"soon"`, false},
		{`null`, false},
		{`-5`, false},
	}
	for _, tc := range cases {
		c, _ := newRecorder(t, `{"client_id":"cid","device_code":"dcode","expires_in":`+tc.expiresIn+`,"user_code":"u","verification_uri":"v"}`)
		dc, err := c.StartDevice(context.Background(), "cid")
		if tc.ok != (err == nil) {
			t.Errorf("expires_in %s: err = %v; want ok %v", tc.expiresIn, err, tc.ok)
			continue
		}
		if err != nil && !tapis.IsTransient(err) {
			t.Errorf("expires_in %s: err = %v; want transient", tc.expiresIn, err)
		}
		if tc.expiresIn[0] == '"' && err == nil && !dc.ExpiresAt.Equal(time.Date(2026, 11, 22, 14, 22, 9, 0, time.UTC)) {
			t.Errorf("ExpiresAt = %v; want 2026-11-22 14:22:09 UTC", dc.ExpiresAt)
		}
	}
}

// writeCertPEM writes srv's certificate to a PEM file and returns its path.
func writeCertPEM(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(reply(200, `{"message":"","metadata":{},"result":[],"status":"success","version":"dev"}`))
	defer srv.Close()
	ca := writeCertPEM(t, srv)
	ctx := context.Background()

	plain, err := tapis.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	err = plain.Revoke(ctx, "tok")
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) || !tapis.IsTransient(err) {
		t.Errorf("without CA file: err = %v; want a transient x509.UnknownAuthorityError", err)
	}

	withCA, err := tapis.New(srv.URL, tapis.WithCAFile(ca))
	if err != nil {
		t.Fatal(err)
	}
	if err := withCA.Revoke(ctx, "tok"); err != nil {
		t.Errorf("with CA file: %v", err)
	}

	// The CA also combines with a caller's http.Client.
	withBoth, err := tapis.New(srv.URL, tapis.WithHTTPClient(&http.Client{}), tapis.WithCAFile(ca))
	if err != nil {
		t.Fatal(err)
	}
	if err := withBoth.Revoke(ctx, "tok"); err != nil {
		t.Errorf("with http client and CA file: %v", err)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	for _, p := range []string{garbage, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := tapis.New(srv.URL, tapis.WithCAFile(p)); err == nil {
			t.Errorf("New with CA file %s: want an error", p)
		}
	}
	// New runs at every login: what was put at the path since it was
	// checked is refused without blocking or reading it whole.
	fifo, giant := filepath.Join(t.TempDir(), "fifo.pem"), filepath.Join(t.TempDir(), "giant.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(giant)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct{ path, want string }{
		{fifo, fifo + " is a named pipe, not a regular file"},
		{giant, giant + " is 2 GiB, more than the 4 MiB allowed"},
	} {
		done := make(chan error, 1)
		go func() { _, err := tapis.New(srv.URL, tapis.WithCAFile(tc.path)); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New with CA file %s: %v; want an error saying %q", tc.path, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("New with CA file %s blocked", tc.path)
		}
	}
	rt := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	if _, err := tapis.New(srv.URL, tapis.WithHTTPClient(rt), tapis.WithCAFile(ca)); err == nil {
		t.Error("New with a custom RoundTripper and a CA file: want an error")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestExpiryPrefersEarlierExp checks that a token's expiry is the JWT exp
// when expires_at (with its fraction) is later, and expires_at when exp is
// missing or later.
func TestExpiryPrefersEarlierExp(t *testing.T) {
	enc := func(p string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(p)) + ".sig"
	}
	cases := []struct {
		name, token, expiresAt string
		want                   time.Time
	}{
		{"exp earlier", enc(`{"exp":1795371079}`), "2026-11-22T18:11:19.676197+00:00", time.Unix(1795371079, 0)},
		{"expires_at earlier", enc(`{"exp":1795371090}`), "2026-11-22T18:11:19.676197+00:00", time.Date(2026, 11, 22, 18, 11, 19, 676197000, time.UTC)},
		{"no exp", enc(`{}`), "2026-11-22T18:11:19+00:00", time.Date(2026, 11, 22, 18, 11, 19, 0, time.UTC)},
		{"no expires_at", enc(`{"exp":1795371079}`), "", time.Unix(1795371079, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ea := ""
			if tc.expiresAt != "" {
				ea = `"expires_at":"` + tc.expiresAt + `",`
			}
			c, _ := newRecorder(t, `{"access_token":{"access_token":"`+tc.token+`",`+ea+`"expires_in":14400,"jti":"j"}}`)
			tok, err := c.PasswordGrant(context.Background(), "u", "p", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.AccessExpiresAt.Equal(tc.want) {
				t.Errorf("AccessExpiresAt = %v; want %v", tok.AccessExpiresAt, tc.want)
			}
		})
	}
}

func TestEmptyIDsRejectedLocally(t *testing.T) {
	c, reqs := newRecorder(t, `{}`)
	ctx := context.Background()
	if err := c.DeleteClient(ctx, "at", ""); !tapis.IsDefinitive(err) {
		t.Errorf("DeleteClient(\"\") = %v; want a definitive error", err)
	}
	if n := len(reqs()); n != 0 {
		t.Errorf("server saw %d requests; want 0", n)
	}
}
