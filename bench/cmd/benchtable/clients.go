package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// tokenCall asks an agent for tenant's access token, valid for at least
// minValid. Each way a client can ask the agent (the frame, HTTP on a new
// connection, HTTP kept alive) is one tokenCall; an answer without a token
// is an error.
type tokenCall func(tenant string, minValid time.Duration) (*ipc.TokenResponse, error)

// callTimeout bounds one call as tapis-token bounds it: the agent bounds
// its own work a little below, so a slow call (a thousand tenants
// refreshing at once) ends with the agent's answer. It only keeps a stuck
// agent from stalling the run.
const callTimeout = ipc.TokenTimeout

// frameCall asks over the token frame, one connection per call, as
// tapis-token does. It dials with package net rather than calling
// ipc.Token, whose blocking system calls suit a program making one call:
// here many callers wait at once, which the run-time poller serves
// without a thread each.
func frameCall(sock string) tokenCall {
	return func(tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
		req, err := ipc.AppendTokenRequest(nil, tenant, minValid)
		if err != nil {
			return nil, err
		}
		c, err := net.DialTimeout("unix", sock, callTimeout)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(callTimeout))
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		answer, err := io.ReadAll(io.LimitReader(c, ipc.MaxAnswerBytes))
		if err != nil {
			return nil, err
		}
		tr, err := ipc.ParseAnswer(answer)
		if err == nil && tr.AccessToken == "" {
			err = errors.New("answer holds no access token")
		}
		return tr, err
	}
}

// httpCall asks with GET /v1/token through a net/http client. With
// keepAlive false every call has a connection of its own and says
// "Connection: close", as a client of the JSON API does; with keepAlive true,
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
	return func(tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
		resp, err := hc.Get(fmt.Sprintf("http://tapis-agent%s?tenant=%s&min_valid=%d", ipc.PathToken, tenant, int64(minValid.Seconds())))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var tr ipc.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return nil, fmt.Errorf("decoding answer (status %d): %w", resp.StatusCode, err)
		}
		if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
			return nil, fmt.Errorf("agent answered status %d", resp.StatusCode)
		}
		return &tr, nil
	}, hc.CloseIdleConnections
}
