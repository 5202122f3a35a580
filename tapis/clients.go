package tapis

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/tapis-agent/tapis-agent/secret"
)

// OAuthClient is an OAuth client registered with the tenant. A deleted
// client has Active false (upstream deletes softly, and a deleted client
// still works for token grants).
type OAuthClient struct {
	ID          string
	Key         secret.Value
	DisplayName string
	Description string
	Owner       string
	CallbackURL string
	Active      bool
}

// NewClient describes a client to register. Every field is optional:
// upstream generates ID and Key when empty. IDs are unique across all
// tenants; a taken ID fails with ReasonClientExists.
type NewClient struct {
	ID          string
	Key         secret.Value
	DisplayName string
	Description string
	// CallbackURL is where the authorization-code grant redirects the
	// browser; Tapis compares redirect_uri with it byte for byte.
	CallbackURL string
}

type clientResult struct {
	ClientID    string `json:"client_id"`
	ClientKey   string `json:"client_key"`
	DisplayName string `json:"display_name"`
	Description string `json:"description"`
	Owner       string `json:"owner"`
	CallbackURL string `json:"callback_url"`
	Active      bool   `json:"active"`
}

// CreateClient registers an OAuth client owned by the user of
// accessToken. The token goes in X-Tapis-Token; no Authorization header
// is sent (upstream breaks on one).
func (c *Client) CreateClient(ctx context.Context, accessToken secret.Value, nc NewClient) (*OAuthClient, error) {
	body := map[string]string{}
	for k, v := range map[string]string{
		"client_id": nc.ID, "client_key": nc.Key.Reveal(),
		"display_name": nc.DisplayName, "description": nc.Description, "callback_url": nc.CallbackURL,
	} {
		if v != "" {
			body[k] = v
		}
	}
	r := request{
		op: "create client", method: http.MethodPost, path: pathClients,
		body: body, token: accessToken, secrets: []secret.Value{nc.Key},
	}
	var res clientResult
	if err := c.do(ctx, r, &res); err != nil {
		return nil, err
	}
	if res.ClientID == "" || res.ClientKey == "" {
		return nil, &Error{Op: r.op, StatusCode: http.StatusOK, Reason: ReasonUpstream, Transient: true,
			Err: errors.New("result has no client id or key")}
	}
	return res.client(), nil
}

func (r *clientResult) client() *OAuthClient {
	return &OAuthClient{
		ID: r.ClientID, Key: secret.Value(r.ClientKey), DisplayName: r.DisplayName,
		Description: r.Description, Owner: r.Owner, CallbackURL: r.CallbackURL, Active: r.Active,
	}
}

// ListClients returns the OAuth clients of the user of accessToken, with
// their keys (Tapis returns them to the owner); deleted ones too when
// showInactive.
func (c *Client) ListClients(ctx context.Context, accessToken secret.Value, showInactive bool) ([]*OAuthClient, error) {
	path := pathClients
	if showInactive {
		// Any non-empty value counts, even "false".
		path += "?show_inactive=true"
	}
	r := request{op: "list clients", method: http.MethodGet, path: path, token: accessToken}
	var res []clientResult
	if err := c.do(ctx, r, &res); err != nil {
		return nil, err
	}
	out := make([]*OAuthClient, 0, len(res))
	for i := range res {
		out = append(out, res[i].client())
	}
	return out, nil
}

// SetCallback changes the callback_url of the client clientID, which
// must belong to the user of accessToken. It takes effect at once, for
// the browser pages and the code exchange alike.
func (c *Client) SetCallback(ctx context.Context, accessToken secret.Value, clientID, callbackURL string) error {
	r := request{
		op: "update client", method: http.MethodPut,
		path:  pathClients + "/" + url.PathEscape(clientID),
		body:  map[string]string{"callback_url": callbackURL},
		token: accessToken,
	}
	if clientID == "" {
		return &Error{Op: r.op, Reason: ReasonBadRequest, Err: errors.New("empty client id")}
	}
	return c.do(ctx, r, nil)
}

// DeleteClient deactivates the client clientID, which must belong to the
// user of accessToken. Deleting a deleted client succeeds again.
func (c *Client) DeleteClient(ctx context.Context, accessToken secret.Value, clientID string) error {
	r := request{
		op: "delete client", method: http.MethodDelete,
		path:  pathClients + "/" + url.PathEscape(clientID),
		token: accessToken,
	}
	if clientID == "" {
		// The bare collection path does not take DELETE.
		return &Error{Op: r.op, Reason: ReasonBadRequest, Err: errors.New("empty client id")}
	}
	return c.do(ctx, r, nil)
}

// Revoke revokes an access or refresh token. Revoking twice succeeds.
// Upstream's revocation only makes the site router reject the token: a
// revoked refresh token still refreshes, so callers must also forget it.
// An expired or garbage token fails with ReasonInvalidToken.
func (c *Client) Revoke(ctx context.Context, token secret.Value) error {
	r := request{
		op: "revoke", method: http.MethodPost, path: pathRevoke,
		body: map[string]string{"token": token.Reveal()}, secrets: []secret.Value{token},
	}
	return c.do(ctx, r, nil)
}
