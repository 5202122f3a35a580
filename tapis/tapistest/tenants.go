package tapistest

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
)

// Fixed timestamps of the tenant and site records, in the str(datetime)
// form the tenants API renders (§5.4).
const recordTime = "2020-07-02 23:45:16.123456"

// tenantRecord is a tenant as the tenants API returns it; falsy fields are
// omitted, so only the set ones appear. Fields in key order.
type tenantRecord struct {
	AdminUser      string `json:"admin_user"`
	Authenticator  string `json:"authenticator"`
	BaseURL        string `json:"base_url"`
	CreateTime     string `json:"create_time"`
	CreatedBy      string `json:"created_by"`
	Description    string `json:"description"`
	LastUpdateTime string `json:"last_update_time"`
	LastUpdatedBy  string `json:"last_updated_by"`
	Owner          string `json:"owner"`
	PublicKey      string `json:"public_key"`
	SecurityKernel string `json:"security_kernel"`
	SiteID         string `json:"site_id"`
	Status         string `json:"status"`
	TenantID       string `json:"tenant_id"`
	TokenService   string `json:"token_service"`
}

type siteRecord struct {
	BaseURL               string   `json:"base_url"`
	CreateTime            string   `json:"create_time"`
	CreatedBy             string   `json:"created_by"`
	LastUpdateTime        string   `json:"last_update_time"`
	LastUpdatedBy         string   `json:"last_updated_by"`
	Primary               bool     `json:"primary"`
	Services              []string `json:"services"`
	SiteAdminTenantID     string   `json:"site_admin_tenant_id"`
	SiteID                string   `json:"site_id"`
	TenantBaseURLTemplate string   `json:"tenant_base_url_template"`
}

// siteID is the fake's only site.
const siteID = "tacc"

func (s *Server) tenantRecord() tenantRecord {
	return tenantRecord{
		AdminUser:      "admin",
		Authenticator:  s.url + "/v3/oauth2",
		BaseURL:        s.url,
		CreateTime:     recordTime,
		CreatedBy:      "tenants@admin",
		Description:    "Fake Tapis tenant " + s.tenant,
		LastUpdateTime: recordTime,
		LastUpdatedBy:  "tenants@admin",
		Owner:          "owner@example.org",
		PublicKey:      s.signingKey().pem,
		SecurityKernel: s.url + "/v3/security",
		SiteID:         siteID,
		Status:         "ACTIVE",
		TenantID:       s.tenant,
		TokenService:   s.url + "/v3/tokens",
	}
}

func (s *Server) siteRecord() siteRecord {
	return siteRecord{
		BaseURL:        s.url,
		CreateTime:     recordTime,
		CreatedBy:      "admin",
		LastUpdateTime: recordTime,
		LastUpdatedBy:  "admin",
		Primary:        true,
		Services:       []string{"systems", "files", "jobs"},
		// The fake serves its one tenant at its own URL, so the template
		// has no ${tenant_id} placeholder.
		SiteAdminTenantID:     "admin",
		SiteID:                siteID,
		TenantBaseURLTemplate: s.url,
	}
}

// optionalToken rejects a request carrying an invalid X-Tapis-Token; only a
// missing token is tolerated (§5.4). It reports whether to go on.
func (s *Server) optionalToken(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("X-Tapis-Token") == "" {
		return true
	}
	if _, msg := s.requestToken(r); msg != "" {
		fail(w, msg)
		return false
	}
	return true
}

func (s *Server) handleTenants(w http.ResponseWriter, r *http.Request) {
	if s.optionalToken(w, r) {
		ok(w, "Tenants retrieved successfully.", []tenantRecord{s.tenantRecord()})
	}
}

func (s *Server) handleTenant(w http.ResponseWriter, r *http.Request, id string) {
	s.handleOne(w, r, id == s.tenant, "No tenant found with tenant_id "+id+".", "Tenant retrieved successfully.", s.tenantRecord())
}

func (s *Server) handleSites(w http.ResponseWriter, r *http.Request) {
	if s.optionalToken(w, r) {
		ok(w, "Sites retrieved successfully.", []siteRecord{s.siteRecord()})
	}
}

func (s *Server) handleSite(w http.ResponseWriter, r *http.Request, id string) {
	s.handleOne(w, r, id == siteID, "No site found with site_id "+id+".", "Site retrieved successfully.", s.siteRecord())
}

// handleOne answers a request for one record: found says whether the id
// named it, and the messages are the real service's.
func (s *Server) handleOne(w http.ResponseWriter, r *http.Request, found bool, missing, retrieved string, record any) {
	switch {
	case !s.optionalToken(w, r):
	case !found:
		fail(w, missing)
	default:
		ok(w, retrieved, record)
	}
}

func (s *Server) handleWellKnown(w http.ResponseWriter, r *http.Request) {
	base := s.url
	ok(w, "OAuth server metadata retrieved successfully.", map[string]any{
		"authorization_endpoint": base + "/v3/oauth2/authorize",
		// The tenant's live list (tapis-flows.md §6.1).
		"grant_types_supported": s.allowedGrantTypes(),
		"issuer":                base + "/v3/oauth2",
		"jwks_uri":              base + "/v3/tenants/" + s.tenant,
		"registration_endpoint": base + "/v3/oauth2/clients",
		// Wrong on purpose: the real document advertises a path that
		// does not exist (§6.5).
		"token_endpoint": base + "/v3/oauth2/token",
	})
}

// userProfile is the userinfo result, fields in key order (§6.1).
type userProfile struct {
	CreateTime  *string `json:"create_time"`
	DN          string  `json:"dn"`
	Email       string  `json:"email"`
	GivenName   string  `json:"given_name"`
	LastName    string  `json:"last_name"`
	MobilePhone *string `json:"mobile_phone"`
	Phone       *string `json:"phone"`
	UID         *string `json:"uid"`
	Username    string  `json:"username"`
}

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	// Revocation is deliberately not consulted (§6.1).
	claims, msg := s.requestToken(r)
	if msg != "" {
		fail(w, msg)
		return
	}
	u, _ := claims["tapis/username"].(string)
	if u == "" {
		fail(w, msgInvalidToken)
		return
	}
	ok(w, "User profile retrieved successfully.", userProfile{
		DN:        "cn=" + u + ",ou=tenants." + s.tenant + ",dc=tapis",
		Email:     u + "@test.tapis.io",
		GivenName: u,
		LastName:  u,
		Username:  u,
	})
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	const notJSON = "Unable to parse message payload; is it JSON?"
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := readBody(r)
	if err != nil || !strings.EqualFold(mt, "application/json") {
		fail(w, notJSON)
		return
	}
	var req struct {
		Token any `json:"token"`
	}
	if json.Unmarshal(body, &req) != nil {
		fail(w, notJSON)
		return
	}
	tok, _ := req.Token.(string)
	claims, msg := s.validateToken(tok)
	if msg != "" {
		// The reason already ends in a period, hence "..".
		fail(w, "Invalid POST data; could not validate the token: debug data: "+msg+".")
		return
	}
	jti, _ := claims["jti"].(string)
	s.mu.Lock()
	s.revoked[jti] = true
	s.mu.Unlock()
	ok(w, "Token "+jti+" has been revoked.", "")
}
