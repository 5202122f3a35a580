package ipc

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/wire"
)

// ErrAgentUnreachable is wrapped by the errors of a Client call when no
// agent could be reached: the socket is missing or refuses connections,
// the socket directory fails CheckDir, or the connection broke before an
// answer arrived. Callers test it with errors.Is.
var ErrAgentUnreachable = wire.ErrAgentUnreachable

// Default per-call timeouts of a Client whose Timeout is zero. The agent
// bounds its own work a little below these, so a slow call ends with the
// agent's answer rather than the client's timeout.
const (
	DefaultTokenTimeout = wire.DefaultTokenTimeout
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
	return wire.Token(c.path(), c.Timeout, tenant, minValid)
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
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	status, respBody, err := wire.RoundTrip(c.path(), method, target, body, timeout)
	if err != nil {
		return err
	}
	return decodeAnswer(status, respBody, out)
}

func (c *Client) path() string {
	if c.Path == "" {
		return SocketPath()
	}
	return c.Path
}

// decodeAnswer decodes a 2xx body into out, or turns a non-2xx answer into
// an *Error carrying the agent's code, message and hint.
func decodeAnswer(status int, body []byte, out any) error {
	if err := wire.ErrorAnswer(status, body); err != nil {
		return err
	}
	if json.Unmarshal(body, out) != nil {
		return wire.MalformedBody(status)
	}
	return nil
}
