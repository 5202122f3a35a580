package agent

import (
	"context"
	"fmt"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
)

// checkImportBase refuses credentials whose source names another tenant
// address (from) than the tenant's (want). An empty from names none.
func checkImportBase(name, want, from, source string) error {
	if from == "" {
		return nil
	}
	if source == "" {
		source = "the import"
	}
	got, err := baseurl.Normalize(from)
	if err != nil {
		return &ipc.Error{Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("%s: %s names the tenant address %q, which is not a Tapis v3 base URL (%v)", name, source, from, err),
			Hint:    "import credentials issued by " + want}
	}
	if got != want {
		return &ipc.Error{Code: ipc.CodeBadRequest,
			Message: fmt.Sprintf("%s: %s holds credentials for %s, but %s is at %s", name, source, got, name, want),
			Hint:    fmt.Sprintf("import them into the tenant at %s (set base_url under [tenants.NAME] in the config), or import credentials issued by %s", got, want)}
	}
	return nil
}

// importLogin answers an import of a username and password: a password
// login, through the client the request names when it names one, else as
// tapis-token login does.
func (a *Agent) importLogin(ctx context.Context, name string, t *config.Tenant, api *tapis.Client, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	password := secret.Value(req.Password)
	req.Password = ""
	creds := requestClient(t, req.ClientID, secret.Value(req.ClientKey))
	req.ClientKey = ""
	username := req.Username
	if username == "" {
		username = t.Username
	}
	if username == "" {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": a password was given but no username",
			Hint: "give the username too (TAPIS_API_USERNAME), or set username under [tenants." + name + "] in the config"}
	}
	if req.ClientID == "" || creds.ID == t.ClientID {
		s, err := a.passwordLogin(ctx, name, t, username, password)
		if err != nil {
			return nil, err
		}
		st := s.status()
		return &st, nil
	}
	if creds.Key.IsZero() {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("%s: the key of client %s is needed to log in through it", name, creds.ID),
			Hint: "give the client's key too (TAPIS_API_SECRET), or leave out the client id and the agent uses its own client"}
	}
	tok, err := api.PasswordGrant(ctx, username, password, &creds)
	if err != nil {
		return nil, a.upstreamError(name, "logging in", err)
	}
	if tok.RefreshToken.IsZero() {
		return nil, &ipc.Error{Code: ipc.CodeInternal, Message: name + ": Tapis issued no refresh token",
			Hint: "check the client id and key given"}
	}
	s := a.newSession(sessionParams{name: name, tenant: t, api: api, username: username,
		client: &creds, margin: a.Config().RefreshMargin}, newTokenSet(tok, a.opts.Now()))
	if err := a.install(s); err != nil {
		return nil, err
	}
	a.log.Info("import", "tenant", name, "source", req.Source, "kind", "login", "username", username, "jti", tok.AccessJTI)
	st := s.status()
	return &st, nil
}
