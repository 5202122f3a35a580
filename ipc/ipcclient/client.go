// Package ipcclient is the Go client of the agent's socket (package ipc):
// the HTTP calls with net/http, and the token call over the frame.
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
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

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
	return ipc.Token(c.path(), ipc.TokenCall{Tenant: tenant, MinValid: minValid, Timeout: max(timeout, time.Millisecond)})
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

// Import hands the agent an access token, a refresh token and its
// client, or a username and password, obtained elsewhere.
func (c *Client) Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	return call[ipc.TenantStatus](ctx, c, http.MethodPost, ipc.PathImport, req, ipc.LoginTimeout)
}

// Lease starts, renews or (req.Cancel) ends the lease of a batch job's
// token file.
func (c *Client) Lease(ctx context.Context, req *ipc.LeaseRequest) (*ipc.LeaseStatus, error) {
	return call[ipc.LeaseStatus](ctx, c, http.MethodPost, ipc.PathLease, req, ipc.DefaultTimeout)
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

// call sends one request on a connection of its own, with in as its JSON
// body (nil: none), and returns the answer decoded as a T, or the
// *ipc.Error the agent answered.
func call[T any](ctx context.Context, c *Client, method, path string, in any, defaultTimeout time.Duration) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout(defaultTimeout))
	defer cancel()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tapis-agent"+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	sock := c.path()
	transport := &http.Transport{DisableKeepAlives: true, MaxResponseHeaderBytes: 64 << 10,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, sock) }}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		if errors.Is(err, ipc.ErrAgentUnreachable) || ctx.Err() != nil {
			return nil, errors.Unwrap(err) // the *url.Error names the URL, not the socket
		}
		return nil, cutError(sock, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, cutError(sock, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ipc.ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error.Code == "" {
			return nil, malformed(resp.StatusCode, fmt.Sprintf("HTTP status %d without an error body", resp.StatusCode))
		}
		return nil, &ipc.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Hint: eb.Error.Hint}
	}
	var out T
	if json.Unmarshal(b, &out) != nil {
		// The decoder's message may quote the answer: left out.
		return nil, malformed(resp.StatusCode, "invalid JSON body")
	}
	return &out, nil
}

func malformed(status int, what string) *ipc.Error {
	return &ipc.Error{Status: status, Code: ipc.CodeInternal, Message: "malformed answer from agent: " + what}
}

// cutError is the error of a call whose connection broke after it was
// made: the agent stopped or crashed while at work on it.
func cutError(sock string, err error) error {
	return fmt.Errorf("reading answer from agent at %s: %w (%w: %w)", sock, ipc.ErrConnectionCut, ipc.ErrAgentUnreachable, err)
}

// dial connects to the agent's socket at sock, refusing before anything is
// sent a path that others could control, a symlink, and a socket another
// user serves (see ipc.CheckPath, ipc.SocketAddr, ipc.CheckPeer).
func dial(ctx context.Context, sock string) (net.Conn, error) {
	if err := ipc.CheckPath(sock); err != nil {
		return nil, ipc.Unreachable(err)
	}
	addr, done, err := ipc.SocketAddr(sock)
	if err != nil {
		return nil, ipc.Unreachable(fmt.Errorf("dial unix %s: %w", sock, err))
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", addr)
	if errors.Is(err, syscall.ENOENT) && addr != sock {
		conn, err = (&net.Dialer{}).DialContext(ctx, "unix", sock) // no /proc to connect through
	}
	done()
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		err = fmt.Errorf("dial unix %s: %w", sock, oe.Err) // not the /proc address
	}
	if err != nil {
		return nil, ipc.Unreachable(err)
	}
	rc, err := conn.(*net.UnixConn).SyscallConn()
	if err == nil {
		cerr := error(nil)
		if err = rc.Control(func(fd uintptr) { cerr = ipc.CheckPeer(int(fd), sock) }); err == nil {
			err = cerr
		}
	}
	if err != nil {
		conn.Close()
		return nil, ipc.Unreachable(err)
	}
	return conn, nil
}
