// Package tapis is the client of the upstream Tapis v3 authenticator: the
// password, refresh and device-code grants, OAuth client registration and
// deletion, and revocation.
//
// Every failed call returns an *Error whose Kind and Reason tell the
// agent's retry policy what to do: retry later (IsTransient), or give up
// and log in again (IsDefinitive). The wire protocol, including the exact
// messages classified here, is described in tapis-protocol.md.
package tapis

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
)

// Defaults of a Client.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultUserAgent = "tapis-agent"
	// MaxBodySize bounds every upstream response body; a bigger body is a
	// transient error.
	MaxBodySize = 1 << 20
	// MaxCAFile bounds a CA file (WithCAFile); a bundle of every public
	// CA is a few hundred kilobytes.
	MaxCAFile = 4 << 20
	// caFileTimeout bounds reading a CA file, on a network file system
	// that may hang.
	caFileTimeout = 10 * time.Second
)

// Client talks to one Tapis tenant, identified by its base URL (for
// example https://tacc.tapis.io). Create it with New; the zero value is
// not usable. A Client is immutable after New and safe for concurrent use.
type Client struct {
	baseURL   string
	hc        *http.Client
	timeout   time.Duration
	userAgent string
	caFile    string
	optErr    error
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the Client send requests through hc. The Client
// works on a shallow copy that never follows redirects, so credentials are
// never re-sent to another URL. hc's own Timeout, if any, also applies.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc == nil {
			c.optErr = errors.New("tapis: nil http client")
			return
		}
		c.hc = hc
	}
}

// WithCAFile adds the PEM certificates in path to the system roots used to
// verify the server. TLS is always verified. New reads the file as the
// files the agent is pointed at are read (a regular file, at most
// MaxCAFile, in bounded time), and fails if it cannot be read or holds no
// certificate, or if WithHTTPClient supplied a client whose Transport is
// not an *http.Transport.
func WithCAFile(path string) Option {
	return func(c *Client) { c.caFile = path }
}

// WithTimeout bounds each call, including reading the response body.
// The default is DefaultTimeout; d <= 0 keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithUserAgent sets the User-Agent header; the default is
// DefaultUserAgent.
func WithUserAgent(s string) Option {
	return func(c *Client) {
		if s != "" {
			c.userAgent = s
		}
	}
}

// New returns a Client for the tenant at baseURL, which must pass
// baseurl.Normalize: https, or http on a loopback host for tests and local
// fakes; a host and no user info, query, fragment or /v3. The Client uses
// the normalised URL (no trailing slash, lower-case host).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := baseurl.Normalize(baseURL)
	if err != nil {
		return nil, fmt.Errorf("tapis: base url: %w", err)
	}
	c := &Client{
		baseURL:   u,
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,
	}
	for _, o := range opts {
		o(c)
	}
	if c.optErr != nil {
		return nil, c.optErr
	}
	var hc http.Client
	if c.hc != nil {
		hc = *c.hc
	} else {
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.caFile != "" {
		t, err := transportWithCA(hc.Transport, c.caFile)
		if err != nil {
			return nil, err
		}
		hc.Transport = t
	}
	// Never follow redirects: a redirected POST would carry the password
	// or client key to wherever upstream points.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// transportWithCA returns a clone of rt (nil means the default transport)
// whose roots are the system pool plus the certificates in caFile.
func transportWithCA(rt http.RoundTripper, caFile string) (*http.Transport, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	base, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("tapis: ca file %s: http client transport is %T, not *http.Transport", caFile, rt)
	}
	// New runs at every login: a named pipe or a giant put at the path
	// since the config was loaded must not hang it or fill memory.
	pemBytes, err := safefile.ReadTimeout(caFile, safefile.Options{Max: MaxCAFile}, caFileTimeout)
	if err != nil {
		return nil, fmt.Errorf("tapis: reading ca file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("tapis: ca file %s: no PEM certificate found", caFile)
	}
	t := base.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = pool
	t.TLSClientConfig.InsecureSkipVerify = false
	if t.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.TLSClientConfig.MinVersion = tls.VersionTLS12
	}
	return t, nil
}

// BaseURL returns the tenant base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL }

// request describes one upstream call.
type request struct {
	op     string
	method string
	path   string
	body   any                // JSON-encoded when non-nil
	basic  *ClientCredentials // Authorization: Basic, tokens endpoint only
	token  secret.Value       // X-Tapis-Token when non-zero
	// secrets are values sent with the request; they are scrubbed from
	// any message upstream echoes back.
	secrets []secret.Value
}

// envelope is the five-key body of every Tapis Python service answer.
// metadata and version carry nothing useful and are ignored.
type envelope struct {
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
	Status  string          `json:"status"`
}

// parseEnvelope decodes a Tapis envelope: a single JSON object whose
// status is "success" or "error".
func parseEnvelope(b []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("decoding envelope: %w", err)
	}
	if env.Status != "success" && env.Status != "error" {
		return nil, fmt.Errorf("envelope status %q is neither success nor error", truncate(env.Status, 32))
	}
	return &env, nil
}

// errCallTimeout is the cancellation cause of a call's own timeout.
var errCallTimeout = errors.New("tapis: per-call timeout")

// do performs r and decodes the envelope's result into out (nil: ignore
// the result). Every failure is an *Error.
func (c *Client) do(ctx context.Context, r request, out any) error {
	callCtx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()

	fail := func(resp *http.Response, err error) error {
		e := &Error{Op: r.op, Reason: ReasonUpstream, Transient: true, Err: err, BaseURL: c.baseURL}
		if resp != nil {
			e.StatusCode, e.Status = resp.StatusCode, resp.Status
		}
		switch {
		case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
			e.Reason, e.Transient, e.Err = ReasonCanceled, false, ctx.Err()
		case ctx.Err() != nil:
			e.Err = ctx.Err() // the caller's deadline: still transient
		case errors.Is(context.Cause(callCtx), errCallTimeout):
			e.Err = fmt.Errorf("%w after %v: %w", ErrTimeout, c.timeout, context.DeadlineExceeded)
			e.timeout = c.timeout
		}
		return e
	}

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return &Error{Op: r.op, Reason: ReasonBadRequest, Err: fmt.Errorf("encoding request: %w", err)}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(callCtx, r.method, c.baseURL+r.path, body)
	if err != nil {
		return &Error{Op: r.op, Reason: ReasonBadRequest, Err: err}
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if r.basic != nil {
		req.SetBasicAuth(r.basic.ID, r.basic.Key.Reveal())
	}
	if !r.token.IsZero() {
		req.Header.Set("X-Tapis-Token", r.token.Reveal())
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return fail(nil, stripURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return fail(resp, fmt.Errorf("reading body: %w", err))
	}
	if len(b) > MaxBodySize {
		return fail(resp, fmt.Errorf("body larger than %d bytes", MaxBodySize))
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		// Unknown paths give Flask's HTML 500 page; proxies give their own.
		e := fail(resp, fmt.Errorf("unexpected content type %q", truncate(ct, 64))).(*Error)
		e.ContentType = truncate(ct, 64)
		e.Body = bodySnippet(b, append(r.secrets, r.token))
		return e
	}
	env, err := parseEnvelope(b)
	if err != nil {
		return fail(resp, err)
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		e := &Error{Op: r.op, StatusCode: resp.StatusCode, Status: resp.Status, BaseURL: c.baseURL, Message: env.Message}
		classify(e, append(r.secrets, r.token))
		return e
	}
	if out == nil {
		return nil
	}
	if len(env.Result) == 0 || string(env.Result) == "null" {
		return fail(resp, errors.New("result is null"))
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fail(resp, fmt.Errorf("decoding result: %w", err))
	}
	return nil
}

// stripURL drops the *url.Error wrapper, whose text repeats the method
// and URL; the Op already names the call.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
