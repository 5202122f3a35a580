package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// newAPI returns the upstream client of tenant t.
func (a *Agent) newAPI(t *config.Tenant) (*tapis.Client, error) {
	return a.newAPITimeout(t, a.opts.UpstreamTimeout)
}

// newAPITimeout returns the upstream client of tenant t whose calls give
// up after timeout.
func (a *Agent) newAPITimeout(t *config.Tenant, timeout time.Duration) (*tapis.Client, error) {
	opts := []tapis.Option{tapis.WithTimeout(timeout), tapis.WithUserAgent("tapis-agent/" + a.opts.Version)}
	if t.CAFile != "" {
		opts = append(opts, tapis.WithCAFile(t.CAFile))
	} else if a.opts.HTTPClient != nil {
		opts = append(opts, tapis.WithHTTPClient(a.opts.HTTPClient))
	}
	api, err := tapis.New(t.BaseURL, opts...)
	if err != nil {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("%s: %v", t.Name, err),
			Hint: "fix base_url or ca_file of the tenant in the config"}
	}
	return api, nil
}

// Login answers POST /v1/login with the password grant. Without a client
// configured for the tenant it registers an OAuth client for this host, since
// Tapis issues refresh tokens only to a grant authenticated by a client.
func (a *Agent) Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	name, err := a.resolve(req.Tenant)
	if err != nil {
		return nil, err
	}
	switch {
	case req.Probe:
		return a.probe(ctx, name)
	case req.Device && req.Browser:
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: "a login is either a device-code or a browser login",
			Hint: "tapis-token login " + name + " --browser, or --device"}
	case req.Device:
		req.Password = ""
		return a.loginDevice(ctx, name, req)
	case req.Browser:
		req.Password = ""
		return a.loginBrowser(ctx, name, req)
	case req.Wait || req.Cancel:
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: "wait and cancel apply to device-code and browser logins only",
			Hint: "tapis-token login " + name + " --device"}
	}
	t := a.Config().TenantOrDefault(name)
	username := req.Username
	if username == "" {
		username = t.Username
	}
	if username == "" {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": no username given",
			Hint: "tapis-token login " + name + " --username NAME"}
	}
	password := secret.Value(req.Password)
	req.Password = ""
	if password.IsZero() {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": no password given",
			Hint: "tapis-token login " + name + " (it prompts), or --password-stdin"}
	}
	s, err := a.passwordLogin(ctx, name, t, username, password)
	if err != nil {
		return nil, err
	}
	return &ipc.LoginResponse{Tenant: s.status()}, nil
}

// passwordLogin performs the password grant for tenant t and installs the
// session it obtains.
func (a *Agent) passwordLogin(ctx context.Context, name string, t *config.Tenant, username string, password secret.Value) (*session, error) {
	api, err := a.newAPI(t)
	if err != nil {
		return nil, err
	}

	var creds *tapis.ClientCredentials
	registered := false
	if t.ClientID != "" {
		creds = &tapis.ClientCredentials{ID: t.ClientID, Key: t.ClientKey}
	} else if old := a.session(name); old != nil && old.registered && old.username == username && old.baseURL() == api.BaseURL() {
		creds, registered = old.client, true
	}
	var first *tapis.Token // the client-less grant that found or registered the client
	var hc *hostClient
	if creds == nil {
		first, err = api.PasswordGrant(ctx, username, password, nil)
		if err != nil {
			return nil, a.upstreamError(name, "logging in", err)
		}
		hc, err = a.ensureHostClient(ctx, name, api, first.AccessToken)
		if err != nil {
			return nil, err
		}
		creds = &hc.creds
		registered = true
	}
	tok, err := api.PasswordGrant(ctx, username, password, creds)
	if err != nil {
		if hc != nil && hc.created {
			// Unused, the client would pile up upstream with every retry.
			a.deleteClient(ctx, name, api, first.AccessToken, creds.ID)
		}
		return nil, a.upstreamError(name, "logging in", err)
	}
	if tok.RefreshToken.IsZero() {
		return nil, &ipc.Error{Code: ipc.CodeInternal, Message: name + ": Tapis issued no refresh token",
			Hint: "check client_id and client_key_file of the tenant"}
	}
	s := a.newSession(sessionParams{name: name, tenant: t, api: api, username: username,
		client: creds, registered: registered, margin: a.Config().RefreshMargin}, newTokenSet(tok, a.opts.Now()))
	if err := a.install(s); err != nil {
		return nil, err
	}
	a.log.Info("login", "tenant", name, "username", username, "jti", tok.AccessJTI)
	return s, nil
}

// Import answers POST /v1/import: an access token alone gives an
// access-only session until it expires; a refresh token with its client
// gives a full session, checked by refreshing it at once; a username and
// password log in. Nothing the agent holds changes unless the import
// succeeds.
func (a *Agent) Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	name, err := a.resolve(req.Tenant)
	if err != nil {
		return nil, err
	}
	t := a.Config().TenantOrDefault(name)
	api, err := a.newAPI(t)
	if err != nil {
		return nil, err
	}
	if err := checkImportBase(name, api.BaseURL(), req.BaseURL, req.Source); err != nil {
		return nil, err
	}
	now := a.opts.Now()
	if req.Password != "" {
		return a.importLogin(ctx, name, t, api, req)
	}
	if req.RefreshToken != "" {
		creds := requestClient(t, req.ClientID, secret.Value(req.ClientKey))
		req.ClientKey = ""
		if creds.ID == "" {
			hint := "tapis-token import " + name + " --refresh-token --client-id ID --client-key-stdin (token, then key, on stdin), or set client_id and client_key_file in the config"
			switch req.Source {
			case "":
			case "environment":
				hint = "give the client's id and key with the token (TAPIS_API_KEY and TAPIS_API_SECRET in the environment), or set client_id and client_key_file under [tenants." + name + "] in the config"
			default:
				hint = "the file names no client (apikey and apisecret): set client_id and client_key_file under [tenants." + name + "] in the config"
			}
			return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": a refresh token needs the OAuth client it was issued to: Tapis refreshes it only for that client",
				Hint: hint}
		}
		if creds.Key.IsZero() {
			return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("%s: the key of client %s is needed to refresh the imported token", name, creds.ID),
				Hint: "give it on the line after the token with --client-key-stdin, or set client_key_file in the config"}
		}
		if _, err := checkImported(name, api.BaseURL(), req.RefreshToken, "refresh", now); err != nil {
			return nil, err
		}
		tok, err := api.Refresh(ctx, secret.Value(req.RefreshToken), creds)
		if err != nil {
			return nil, a.upstreamError(name, "checking the imported refresh token", err)
		}
		c, _ := jwt.Decode(tok.AccessToken.Reveal())
		s := a.newSession(sessionParams{name: name, tenant: t, api: api, username: c.Username(),
			client: &creds, margin: a.Config().RefreshMargin}, newTokenSet(tok, now))
		if err := a.install(s); err != nil {
			return nil, err
		}
		a.log.Info("import", "tenant", name, "source", req.Source, "kind", "refresh_token", "jti", tok.AccessJTI)
		st := s.status()
		return &st, nil
	}
	c, err := checkImported(name, api.BaseURL(), req.AccessToken, "access", now)
	if err != nil {
		return nil, err
	}
	exp, _ := c.Expiry()
	ts := &tokenSet{access: secret.Value(req.AccessToken), accessJTI: c.JTI(), issuedAt: now, expiresAt: exp}
	s := a.newSession(sessionParams{name: name, tenant: t, api: api, username: c.Username()}, ts)
	if err := a.install(s); err != nil {
		return nil, err
	}
	a.log.Info("import", "tenant", name, "source", req.Source, "kind", "access_token", "jti", ts.accessJTI)
	st := s.status()
	return &st, nil
}

// requestClient returns the OAuth client a request names, else the
// tenant's: the request's client id (the configured one when it names
// none) with the request's key, or the configured key for the configured
// id. Either field may be empty.
func requestClient(t *config.Tenant, id string, key secret.Value) tapis.ClientCredentials {
	if id == "" {
		id = t.ClientID
	}
	if key.IsZero() && id == t.ClientID {
		key = t.ClientKey
	}
	return tapis.ClientCredentials{ID: id, Key: key}
}

// checkImported refuses a token that is not a JWT of the wanted type, has
// expired, or was issued for another tenant's base URL.
func checkImported(name, baseURL, token, typ string, now time.Time) (jwt.Claims, error) {
	bad := func(format string, args ...any) error {
		return &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": " + fmt.Sprintf(format, args...),
			Hint: "paste the " + typ + " token as issued by " + baseURL}
	}
	if token == "" {
		return nil, bad("no %s token given", typ)
	}
	c, err := jwt.Decode(token)
	if err != nil {
		return nil, bad("not a Tapis %s token: %v", typ, err)
	}
	if got := c.TokenType(); got != typ {
		return nil, bad("a token of type %q, not %q", got, typ)
	}
	exp, ok := c.Expiry()
	if !ok {
		return nil, bad("the token has no expiry")
	}
	if !now.Before(exp) {
		return nil, bad("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if want := baseURL + "/v3/tokens"; c.Issuer() != want {
		return nil, bad("the token was issued by %s, not by this tenant (%s)", c.Issuer(), want)
	}
	return c, nil
}

// upstreamError turns an upstream failure into the socket API's error.
func (a *Agent) upstreamError(name, action string, err error) error {
	var te *tapis.Error
	switch {
	case errors.As(err, &te) && te.Reason == tapis.ReasonBadCredentials:
		return &ipc.Error{Code: ipc.CodeBadCredentials, Message: fmt.Sprintf("%s: Tapis rejected the username or password", name),
			Hint: "tapis-token login " + name + " and check them"}
	case errors.As(err, &te) && te.Reason == tapis.ReasonBadClient:
		// Its own code: asking the user for the password again cannot
		// fix a wrong client id or key.
		return &ipc.Error{Code: ipc.CodeBadClient, Message: fmt.Sprintf("%s: Tapis rejected the OAuth client (%s)", name, te.Message),
			Hint: "fix client_id and client_key_file under [tenants." + name + "] in the config (the agent reloads it), then run tapis-token login " + name + " again"}
	case errors.As(err, &te) && te.Reason == tapis.ReasonGrantNotAllowed:
		return &ipc.Error{Code: ipc.CodeLoginFlow, Message: fmt.Sprintf("%s: %s: the tenant does not allow this login (%s)", name, action, te.Message),
			Hint: "tapis-token login " + name + " --browser, or --device; tapis-token login says which the tenant allows"}
	case errors.As(err, &te) && te.Reason == tapis.ReasonInvalidRefreshToken:
		return &ipc.Error{Code: ipc.CodeLoginRequired, Message: fmt.Sprintf("%s: Tapis rejected the refresh token", name),
			Hint: "tapis-token login " + name}
	case tapis.Fault(err) != tapis.FaultNone:
		return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: fmt.Sprintf("%s: %s: %s", name, action, tapis.Describe(err)),
			Hint: "check the network and base_url of the tenant; try again in a minute"}
	case tapis.IsTransient(err):
		return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: fmt.Sprintf("%s: %s: %s", name, action, tapis.Describe(err)),
			Hint: "Tapis is failing for now; try again in a minute"}
	}
	return &ipc.Error{Code: ipc.CodeInternal, Message: fmt.Sprintf("%s: %s: %s", name, action, tapis.Describe(err)),
		Hint: "tapis-token status shows the tenant's last error; the agent's log says more"}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
