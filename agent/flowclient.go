package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
)

// flowClient is the OAuth client a device-code or browser login runs
// with, and what the agent knows about it.
type flowClient struct {
	creds       tapis.ClientCredentials
	callbackURL string       // "" when not known
	registered  bool         // the agent's own client for this host: logout deletes it
	created     bool         // registered by this login: a failed login deletes it
	token       secret.Value // an access token of the user, to change the client; zero when none
}

// resolveClient finds the client a device-code or browser login runs
// with: the one the request or the config names; else the agent's
// client for this host, taken from the tenant's session or found (or
// registered) with an access token: the session's, or the one the user
// pasted from the tenant's Token Web App. Without any, it answers
// CodeClientNeeded, which makes tapis-token ask for that token.
func (a *Agent) resolveClient(ctx context.Context, name string, t *config.Tenant, api *tapis.Client, req *ipc.LoginRequest, flag string) (*flowClient, error) {
	bootstrap := secret.Value(req.BootstrapToken)
	req.BootstrapToken = ""
	creds := requestClient(t, req.ClientID, secret.Value(req.ClientKey))
	req.ClientKey = ""
	fc := &flowClient{token: a.sessionToken(name, api.BaseURL())}
	if !bootstrap.IsZero() {
		if _, err := checkImported(name, api.BaseURL(), bootstrap.Reveal(), "access", a.opts.Now()); err != nil {
			return nil, err
		}
		fc.token = bootstrap
	}
	if creds.ID != "" {
		if creds.Key.IsZero() {
			return nil, &ipc.Error{Code: ipc.CodeBadRequest,
				Message: fmt.Sprintf("%s: the key of client %s is needed too: the login itself needs none, but every later refresh of its tokens does", name, creds.ID),
				Hint:    fmt.Sprintf("set client_key_file under [tenants.%s] in the config, or pipe the key in: tapis-token login %s %s --client-id %s --client-key-stdin", name, name, flag, creds.ID)}
		}
		fc.creds = creds
		return fc, nil
	}
	if old := a.session(name); old != nil && old.registered && old.client != nil && old.baseURL() == api.BaseURL() && fc.token.IsZero() {
		fc.creds, fc.registered = *old.client, true
		return fc, nil
	}
	if fc.token.IsZero() {
		webapp := api.BaseURL() + "/v3/oauth2/webapp"
		return nil, &ipc.Error{Code: ipc.CodeClientNeeded,
			Message: fmt.Sprintf("%s: this host has no OAuth client of the agent yet, and registering one (or finding the one registered before) takes a Tapis token once: open %s, log in, and copy the access token it shows", name, webapp),
			Hint:    fmt.Sprintf("paste it when tapis-token login %s %s asks, or pipe it in with --token-stdin; or set client_id and client_key_file under [tenants.%s] in the config", name, flag, name)}
	}
	hc, err := a.ensureHostClient(ctx, name, api, fc.token)
	if err != nil {
		return nil, err
	}
	fc.creds, fc.callbackURL, fc.registered, fc.created = hc.creds, hc.callbackURL, true, hc.created
	return fc, nil
}

// sessionToken returns the access token of the tenant's session when it
// is still valid for a minute at baseURL, else zero: enough to list or
// change the user's clients.
func (a *Agent) sessionToken(name, baseURL string) secret.Value {
	s := a.session(name)
	if s == nil || s.baseURL() != baseURL {
		return ""
	}
	t := s.tok.Load()
	if t == nil || !t.validFor(a.opts.Now(), time.Minute) {
		return ""
	}
	return t.access
}

// failedLogin deletes the client a login registered and could not use.
func (a *Agent) failedLogin(ctx context.Context, name string, api *tapis.Client, fc *flowClient) {
	if fc.created && !fc.token.IsZero() {
		a.deleteClient(ctx, name, api, fc.token, fc.creds.ID)
	}
}
