package ipc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrAgentUnreachable is wrapped by the errors of a Client call when no
// agent could be reached: the socket is missing or refuses connections,
// the socket directory fails CheckDir, or the connection broke before an
// answer arrived. Callers test it with errors.Is.
var ErrAgentUnreachable = errors.New("agent not reachable")

// Default per-call timeouts of a Client whose Timeout is zero. The agent
// bounds its own work a little below these, so a slow call ends with the
// agent's answer rather than the client's timeout.
const (
	DefaultTokenTimeout = 60 * time.Second
	DefaultLoginTimeout = 5 * time.Minute
	DefaultTimeout      = 30 * time.Second
)

// Client calls the agent over its Unix socket. The zero value uses
// SocketPath and the default timeouts. A Client is safe for concurrent use:
// every call opens its own connection.
type Client struct {
	// Path is the socket path; empty means SocketPath().
	Path string
	// Timeout bounds a whole call: connecting, sending and reading the
	// answer. Zero means DefaultTokenTimeout for Token, DefaultLoginTimeout
	// for Login and DefaultTimeout for the others.
	Timeout time.Duration
}

// Token returns an access token for tenant that stays valid for at least
// minValid; a negative minValid leaves the choice to the agent (60 s, or
// less for tokens that live less than two minutes). An empty tenant asks
// for the agent's default tenant.
func (c *Client) Token(tenant string, minValid time.Duration) (*TokenResponse, error) {
	// Built by hand: net/url would add its package initialisation to
	// every start of tapis-token.
	q := ""
	if tenant != "" {
		q = "tenant=" + queryEscape(tenant)
	}
	if minValid >= 0 {
		secs := int64((minValid + time.Second - 1) / time.Second) // round up: never less than asked
		if q != "" {
			q += "&"
		}
		q += "min_valid=" + strconv.FormatInt(secs, 10)
	}
	status, body, err := c.roundTrip("GET", PathToken+"?"+q, nil, DefaultTokenTimeout)
	if err != nil {
		return nil, err
	}
	if err := errorAnswer(status, body); err != nil {
		return nil, err
	}
	var out TokenResponse
	if decodeToken(body, &out) != nil {
		return nil, malformedBody(status)
	}
	return &out, nil
}

// Status returns the agent's status and one entry per tenant.
func (c *Client) Status() (*StatusResponse, error) {
	var out StatusResponse
	if err := c.call("GET", PathStatus, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// Login logs in to a tenant with a password, or starts a device-code login
// when req.Device is set.
func (c *Client) Login(req *LoginRequest) (*LoginResponse, error) {
	var out LoginResponse
	if err := c.call("POST", PathLogin, req, &out, DefaultLoginTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout revokes the tenant's tokens upstream and wipes them from the agent.
func (c *Client) Logout(tenant string) (*TenantStatus, error) {
	var out TenantStatus
	if err := c.call("POST", PathLogout, &LogoutRequest{Tenant: tenant}, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// Import hands the agent an access token, and optionally a refresh token
// and its client, obtained elsewhere.
func (c *Client) Import(req *ImportRequest) (*TenantStatus, error) {
	var out TenantStatus
	if err := c.call("POST", PathImport, req, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reload makes the agent re-read its configuration and returns its status.
func (c *Client) Reload() (*StatusResponse, error) {
	var out StatusResponse
	if err := c.call("POST", PathReload, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// call performs one request on a fresh connection, with in encoded as its
// JSON body (nil: none), and decodes the answer into out.
func (c *Client) call(method, target string, in, out any, defaultTimeout time.Duration) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = b
	}
	status, respBody, err := c.roundTrip(method, target, body, defaultTimeout)
	if err != nil {
		return err
	}
	return decodeAnswer(status, respBody, out)
}

// roundTrip sends one request on a fresh connection and returns the
// answer's status and body. It uses no encoding/json, so neither does the
// helper's token path.
func (c *Client) roundTrip(method, target string, body []byte, defaultTimeout time.Duration) (int, []byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	path := c.Path
	if path == "" {
		path = SocketPath()
	}
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrAgentUnreachable, err)
	}
	conn, err := dial(path, time.Now().Add(timeout))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrAgentUnreachable, err) // err names the path
	}
	defer conn.Close()
	if err := writeRequest(conn, method, target, body); err != nil {
		return 0, nil, ioError("sending request to agent", path, err)
	}
	status, respBody, err := readResponse(bufio.NewReaderSize(conn, maxLineBytes))
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return 0, nil, e
		}
		return 0, nil, ioError("reading answer from agent", path, err)
	}
	return status, respBody, nil
}

// ioError wraps a failure on an established connection. A broken
// connection means the agent went away: ErrAgentUnreachable. A timeout
// keeps os.ErrDeadlineExceeded in the chain.
func ioError(action, path string, err error) error {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%s: %w at %s: %w", action, ErrAgentUnreachable, path, err)
	}
	return fmt.Errorf("%s at %s: %w", action, path, err)
}

// queryEscape percent-encodes s for a query value, as url.QueryEscape
// does but with %20 for a space, which every server decodes alike.
func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
