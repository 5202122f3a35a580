// Package ipcclient is the Go client of the agent's socket API (package
// ipc): the HTTP calls with net/http, and the token call over the frame.
// tapis-token does not link it: its one call is ipc.Token.
package ipcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// maxAnswerBytes bounds an answer's body; the agent's are small, and
// anything beyond this is not the agent.
const maxAnswerBytes = 1 << 20

// Client calls the agent over its Unix socket. The zero value uses
// ipc.SocketPath and the default timeouts. A Client is safe for concurrent
// use: every call opens its own connection.
type Client struct {
	// Path is the socket path; empty means ipc.SocketPath().
	Path string
	// Timeout bounds a whole call, within the context's deadline. Zero
	// means ipc.TokenTimeout for Token, ipc.LoginTimeout for Login and
	// ipc.DefaultTimeout for the others.
	Timeout time.Duration
}

// Token returns an access token for tenant ("" for the agent's default
// tenant) that stays valid for at least minValid; a negative minValid
// leaves the choice to the agent. It uses the token frame.
func (c *Client) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	timeout := c.timeout(ipc.TokenTimeout)
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	return ipc.Token(c.path(), ipc.TokenCall{Tenant: tenant, MinValid: minValid, Timeout: timeout})
}

// Status returns the agent's status and one entry per tenant.
func (c *Client) Status(ctx context.Context) (*ipc.StatusResponse, error) {
	return call[ipc.StatusResponse](ctx, c, http.MethodGet, ipc.PathStatus, nil, ipc.DefaultTimeout)
}

// Login logs in to a tenant with a password, or starts, waits for or
// cancels a device-code login (req.Device).
func (c *Client) Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	return call[ipc.LoginResponse](ctx, c, http.MethodPost, ipc.PathLogin, req, ipc.LoginTimeout)
}

// Logout revokes the tenant's tokens upstream and wipes them from the agent.
func (c *Client) Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error) {
	return call[ipc.TenantStatus](ctx, c, http.MethodPost, ipc.PathLogout, &ipc.LogoutRequest{Tenant: tenant}, ipc.DefaultTimeout)
}

// Import hands the agent an access token, and optionally a refresh token
// and its client, obtained elsewhere.
func (c *Client) Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	return call[ipc.TenantStatus](ctx, c, http.MethodPost, ipc.PathImport, req, ipc.DefaultTimeout)
}

func (c *Client) path() string {
	if c.Path == "" {
		return ipc.SocketPath()
	}
	return c.Path
}

func (c *Client) timeout(def time.Duration) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return def
}

// call makes a call whose answer is a T.
func call[T any](ctx context.Context, c *Client, method, path string, in any, defaultTimeout time.Duration) (*T, error) {
	var out T
	if err := c.call(ctx, method, path, in, &out, defaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// call sends one request on a connection of its own, with in as its JSON
// body (nil: none), and decodes the answer into out, or returns the
// *ipc.Error the agent answered.
func (c *Client) call(ctx context.Context, method, path string, in, out any, defaultTimeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout(defaultTimeout))
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tapis-agent"+path, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sock := c.path()
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			if err := ipc.CheckDir(filepath.Dir(sock)); err != nil {
				return nil, ipc.Unreachable(err)
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", sock)
			if err != nil {
				return nil, ipc.Unreachable(err)
			}
			return conn, nil
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return transportError(sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return transportError(sock, err)
	}
	if len(b) > maxAnswerBytes {
		return malformed(resp.StatusCode, "body over 1 MiB")
	}
	return decodeAnswer(resp.StatusCode, b, out)
}

// transportError is the error of a call that got no answer: the dial's,
// which wraps ipc.ErrAgentUnreachable, or a connection that broke, which
// means the agent went away.
func transportError(sock string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, ipc.ErrAgentUnreachable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("reading answer from agent: %w at %s: %w", ipc.ErrAgentUnreachable, sock, err)
}

// decodeAnswer decodes a 2xx body into out, or turns any other answer into
// the *ipc.Error it carries.
func decodeAnswer(status int, body []byte, out any) error {
	if status < 200 || status > 299 {
		var eb ipc.ErrorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" {
			return malformed(status, fmt.Sprintf("HTTP status %d without an error body", status))
		}
		return &ipc.Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Hint: eb.Error.Hint}
	}
	if json.Unmarshal(body, out) != nil {
		// The decoder's message may quote the answer: left out.
		return malformed(status, "invalid JSON body")
	}
	return nil
}

func malformed(status int, what string) *ipc.Error {
	return &ipc.Error{Status: status, Code: ipc.CodeInternal, Message: "malformed answer from agent: " + what}
}
