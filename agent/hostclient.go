package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
)

// Tapis keeps every OAuth client forever and burns a deleted client's id,
// so the agent keeps one client per host and tenant: the client listing
// returns its key to the owner, so a restarted agent finds it again with
// any access token of the user, instead of registering another.

// hostClientPrefix is the start of the id of every client the agent
// registers on this host: tapis-agent-<host>-; a random suffix of 8 hex
// digits follows (ids are unique across every Tapis tenant).
func (a *Agent) hostClientPrefix() string {
	host := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, a.opts.Hostname)
	return "tapis-agent-" + truncate(host, 50) + "-"
}

// clientID names a new OAuth client for this host.
func (a *Agent) clientID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return a.hostClientPrefix() + hex.EncodeToString(b[:])
}

// isHostClient reports whether id is a client the agent registered on
// this host: the prefix, then exactly 8 hex digits, so that the clients
// of host "login1" never match those of "login1-2".
func (a *Agent) isHostClient(id string) bool {
	rest, ok := strings.CutPrefix(id, a.hostClientPrefix())
	if !ok || len(rest) != 8 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// hostClient is the OAuth client the agent uses for a tenant on this host.
type hostClient struct {
	creds       tapis.ClientCredentials
	callbackURL string
	created     bool // registered by this call
}

// ensureHostClient returns the active client the agent registered on this
// host earlier, or registers one, and deletes every other active client
// of this host: they are leftovers of agents that stopped or crashed.
// Clients of other hosts are never touched: another login node's agent
// uses them. token is any access token of the user.
func (a *Agent) ensureHostClient(ctx context.Context, name string, api *tapis.Client, token secret.Value) (*hostClient, error) {
	list, err := api.ListClients(ctx, token, false)
	if err != nil {
		return nil, a.upstreamError(name, "listing your OAuth clients", err)
	}
	var keep *tapis.OAuthClient
	var stale []*tapis.OAuthClient
	for _, c := range list {
		if !c.Active || !a.isHostClient(c.ID) || c.Key.IsZero() {
			continue
		}
		// The listing is in creation order: keep the newest.
		if keep != nil {
			stale = append(stale, keep)
		}
		keep = c
	}
	for _, c := range stale {
		if err := api.DeleteClient(ctx, token, c.ID); err != nil {
			a.log.Warn("client_delete_failed", "tenant", name, "client_id", c.ID, "err", err)
			continue
		}
		a.log.Info("client_deleted", "tenant", name, "client_id", c.ID, "reason", "an unused earlier client of this host")
	}
	if keep != nil {
		a.log.Info("client_reused", "tenant", name, "client_id", keep.ID)
		return &hostClient{creds: tapis.ClientCredentials{ID: keep.ID, Key: keep.Key}, callbackURL: keep.CallbackURL}, nil
	}
	cb, err := freeCallbackURL()
	if err != nil {
		return nil, &ipc.Error{Code: ipc.CodeInternal, Message: fmt.Sprintf("%s: choosing a loopback port for browser logins: %v", name, err)}
	}
	oc, err := api.CreateClient(ctx, token, tapis.NewClient{
		ID:          a.clientID(),
		DisplayName: truncate("tapis-agent on "+a.opts.Hostname, 50),
		Description: truncate("tapis-agent on "+a.opts.Hostname, 70),
		CallbackURL: cb,
	})
	if err != nil {
		return nil, a.upstreamError(name, "registering an OAuth client", err)
	}
	a.log.Info("client_registered", "tenant", name, "client_id", oc.ID)
	return &hostClient{creds: tapis.ClientCredentials{ID: oc.ID, Key: oc.Key}, callbackURL: oc.CallbackURL, created: true}, nil
}

// deleteClient deletes a client the agent registered, best effort: a
// login that failed after registering it must not leave it behind.
func (a *Agent) deleteClient(ctx context.Context, name string, api *tapis.Client, token secret.Value, id string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := api.DeleteClient(dctx, token, id); err != nil {
		a.log.Warn("client_delete_failed", "tenant", name, "client_id", id, "err", err)
		return
	}
	a.log.Info("client_deleted", "tenant", name, "client_id", id, "reason", "the login failed")
}

// callbackPath is the path of the loopback redirect of a browser login.
const callbackPath = "/callback"

// callbackURL is the redirect address of a browser login on port.
func callbackURL(port int) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", port, callbackPath)
}

// freeCallbackURL picks a loopback port free at the moment, once per
// client: Tapis matches redirect_uri against callback_url byte for byte,
// so the port is part of the client's registration.
func freeCallbackURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return callbackURL(port), nil
}
