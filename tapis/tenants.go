package tapis

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Tenant is a tenant record of the Tapis tenants API. PublicKey is the
// PEM key that signs the tenant's tokens (see VerifyRS256).
type Tenant struct {
	ID            string `json:"tenant_id"`
	BaseURL       string `json:"base_url"`
	SiteID        string `json:"site_id"`
	Status        string `json:"status"`
	TokenService  string `json:"token_service"`
	Authenticator string `json:"authenticator"`
	PublicKey     string `json:"public_key"`
	Description   string `json:"description"`
}

// Site is a site record of the Tapis tenants API.
// TenantBaseURLTemplate looks like "https://${tenant_id}.tapis.io".
type Site struct {
	ID                    string `json:"site_id"`
	BaseURL               string `json:"base_url"`
	TenantBaseURLTemplate string `json:"tenant_base_url_template"`
	Primary               bool   `json:"primary"`
}

// Tenant returns the record of tenant id. No token is sent: the tenants API
// rejects a stale one. An unknown id fails with ReasonNotFound.
func (c *Client) Tenant(ctx context.Context, id string) (*Tenant, error) {
	r := request{op: "get tenant", method: http.MethodGet, path: pathTenants + "/" + url.PathEscape(id)}
	if id == "" {
		// The bare collection path would answer a list, not a tenant.
		return nil, &Error{Op: r.op, Reason: ReasonBadRequest, Err: errors.New("empty tenant id")}
	}
	var t Tenant
	if err := c.do(ctx, r, &t); err != nil {
		return nil, err
	}
	if t.ID == "" {
		return nil, &Error{Op: r.op, StatusCode: http.StatusOK, Reason: ReasonUpstream, Transient: true,
			Err: errors.New("result has no tenant_id")}
	}
	return &t, nil
}

// Tenants lists the active tenants.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	if err := c.do(ctx, request{op: "list tenants", method: http.MethodGet, path: pathTenants}, &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// Sites lists the sites.
func (c *Client) Sites(ctx context.Context) ([]Site, error) {
	var ss []Site
	if err := c.do(ctx, request{op: "list sites", method: http.MethodGet, path: pathSites}, &ss); err != nil {
		return nil, err
	}
	return ss, nil
}
