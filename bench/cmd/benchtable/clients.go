package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// tokenCall asks an agent for tenant's access token, valid for at least
// minValid, and returns when the token expires. Each way a client can ask
// the agent (the frame, HTTP on a new connection, HTTP kept alive) is one
// tokenCall; an empty token is an error.
type tokenCall func(tenant string, minValid time.Duration) (expiresAt time.Time, err error)

// callTimeout bounds one call: far above any latency measured, it only
// keeps a stuck agent from stalling the run.
const callTimeout = 10 * time.Second

// frameCall asks over the token frame, one connection per call, the way
// tapis-token asks.
func frameCall(sock string) tokenCall {
	return func(tenant string, minValid time.Duration) (time.Time, error) {
		c, err := net.DialTimeout("unix", sock, callTimeout)
		if err != nil {
			return time.Time{}, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(callTimeout))
		req := fmt.Sprintf("@tapis-agent/1 token %s %d\n", tenant, int64(minValid.Seconds()))
		if _, err := io.WriteString(c, req); err != nil {
			return time.Time{}, err
		}
		answer, err := io.ReadAll(io.LimitReader(c, 64<<10))
		if err != nil {
			return time.Time{}, err
		}
		return parseFrameAnswer(answer)
	}
}

// parseFrameAnswer returns the expiry of an "ok" answer of the token
// frame, or an error carrying the code of an "error" answer.
func parseFrameAnswer(answer []byte) (time.Time, error) {
	line, ok := bytes.CutSuffix(answer, []byte("\n"))
	if !ok {
		return time.Time{}, fmt.Errorf("answer %.40q… is not one line", answer)
	}
	f := bytes.SplitN(line, []byte(" "), 5)
	if len(f) < 3 || string(f[0]) != "@tapis-agent/1" {
		return time.Time{}, fmt.Errorf("answer %.40q… is not a token frame", line)
	}
	if string(f[1]) == "error" {
		return time.Time{}, fmt.Errorf("agent answered error %s", f[2])
	}
	if string(f[1]) != "ok" || len(f) != 5 {
		return time.Time{}, fmt.Errorf("answer %.40q… is not a token frame", line)
	}
	// EXPIRES_AT may carry a fraction; whole seconds do for the checks
	// made here.
	whole, _, _ := bytes.Cut(f[3], []byte("."))
	sec, err := strconv.ParseInt(string(whole), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("answer's expiry %q: %w", f[3], err)
	}
	tok, err := strconv.QuotedPrefix(string(f[4]))
	if err != nil || len(tok) <= len(`""`) {
		return time.Time{}, errors.New("answer holds no access token")
	}
	return time.Unix(sec, 0), nil
}

// httpCall asks with GET /v1/token through a net/http client. With
// keepAlive false every call has a connection of its own and says
// "Connection: close", as the Python client does; with keepAlive true,
// clients connections are kept and reused. Call the returned func after
// each round: idle kept-alive connections hold slots of the agent's
// connection limit.
func httpCall(sock string, clients int, keepAlive bool) (tokenCall, func()) {
	hc := &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
	}}
	return func(tenant string, minValid time.Duration) (time.Time, error) {
		resp, err := hc.Get(fmt.Sprintf("http://tapis-agent%s?tenant=%s&min_valid=%d", ipc.PathToken, tenant, int64(minValid.Seconds())))
		if err != nil {
			return time.Time{}, err
		}
		defer resp.Body.Close()
		var tr ipc.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return time.Time{}, fmt.Errorf("decoding answer (status %d): %w", resp.StatusCode, err)
		}
		if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
			return time.Time{}, fmt.Errorf("agent answered status %d", resp.StatusCode)
		}
		return tr.ExpiresAt, nil
	}, hc.CloseIdleConnections
}
