package tapistest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// expect checks status and exact message of an answer.
func expect(t *testing.T, a answer, status int, msg string) {
	t.Helper()
	if a.status != status || a.env.Message != msg {
		t.Errorf("answer = %d %q; want %d %q", a.status, a.env.Message, status, msg)
	}
	if a.ctype != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", a.ctype)
	}
}

func TestClientsCRUD(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 11, 19, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	at1 := password(t, s, "", "testuser1", "pw1").AccessToken.AccessToken
	at2 := password(t, s, "", "testuser2", "pw2").AccessToken.AccessToken
	base := s.URL() + "/v3/oauth2/clients"
	tok := func(at string) map[string]string {
		return map[string]string{"X-Tapis-Token": at, "Content-Type": "application/json"}
	}
	decode := func(a answer) tapistest.Client {
		t.Helper()
		var c tapistest.Client
		if err := json.Unmarshal(a.env.Result, &c); err != nil {
			t.Fatalf("decoding client from %s: %v", a.raw, err)
		}
		return c
	}

	// Create with generated id and key.
	a := call(t, "POST", base, tok(at1), `{}`)
	expect(t, a, 200, "Client created successfully.")
	gen := decode(a)
	idRE := regexp.MustCompile(`^[A-Za-z0-9]{13}$`)
	if !idRE.MatchString(gen.ClientID) || !idRE.MatchString(gen.ClientKey) {
		t.Errorf("generated id/key = %q/%q; want 13 alphanumerics", gen.ClientID, gen.ClientKey)
	}
	want := tapistest.Client{Active: true, ClientID: gen.ClientID, ClientKey: gen.ClientKey, CreateTime: "Sun, 22 Nov 2026 14:11:19 GMT",
		DisplayName: gen.ClientID, LastUpdateTime: "Sun, 22 Nov 2026 14:11:19 GMT", Owner: "testuser1", TenantID: "dev"}
	if gen != want {
		t.Errorf("created client = %+v; want %+v", gen, want)
	}
	if !strings.Contains(string(a.raw), `"result":{"active":true,"callback_url":"","client_id":`) {
		t.Errorf("client keys not sorted: %s", a.raw)
	}

	// Create with a given id; duplicates are rejected with the exact text.
	a = call(t, "POST", base, tok(at1), `{"client_id":"agent1","client_key":"k1","description":"token agent","callback_url":"https://cb"}`)
	expect(t, a, 200, "Client created successfully.")
	if c := decode(a); c.ClientID != "agent1" || c.ClientKey != "k1" || c.DisplayName != "agent1" || c.Description != "token agent" {
		t.Errorf("created client = %+v", c)
	}
	expect(t, call(t, "POST", base, tok(at2), `{"client_id":"agent1"}`), 400,
		"Invalid POST data; This change would violate uniqueness constraints. Details: Key (client_id)=(agent1) already exists.")
	a = call(t, "POST", base, tok(at1), `{"client_id":`+fmt.Sprintf("%q", strings.Repeat("x", 81))+`}`)
	if a.status != 400 || !strings.HasPrefix(a.env.Message, "Invalid POST data: ") {
		t.Errorf("overlong id = %d %q", a.status, a.env.Message)
	}
	a = call(t, "POST", base, tok(at1), `{"client_id":5}`)
	if a.status != 400 || !strings.HasPrefix(a.env.Message, "Invalid POST data: [InvalidSchemaValue(") {
		t.Errorf("non-string id = %d %q", a.status, a.env.Message)
	}

	// Get: owner only.
	expect(t, call(t, "GET", base+"/agent1", tok(at1), ""), 200, "Client object retrieved successfully.")
	expect(t, call(t, "GET", base+"/agent1", tok(at2), ""), 400, "Not authorized for this client.")
	expect(t, call(t, "GET", base+"/nope", tok(at1), ""), 400, "No client found with id nope.")

	// Update.
	for _, f := range []string{"client_id", "client_key", "description"} {
		expect(t, call(t, "PUT", base+"/agent1", tok(at1), fmt.Sprintf(`{%q:"x"}`, f)), 400, fmt.Sprintf("Changing %s not currently supported.", f))
	}
	expect(t, call(t, "PUT", base+"/nope", tok(at1), `{"display_name":"d"}`), 400, "No client found with id nope.")
	expect(t, call(t, "PUT", base+"/agent1", tok(at2), `{"display_name":"d"}`), 400, "Not authorized for this client.")
	clk.t = clk.t.Add(time.Hour)
	a = call(t, "PUT", base+"/agent1", tok(at1), `{"display_name":"d","callback_url":"https://cb2"}`)
	expect(t, a, 200, "Client updated successfully")
	if c := decode(a); c.DisplayName != "d" || c.CallbackURL != "https://cb2" || c.LastUpdateTime != "Sun, 22 Nov 2026 15:11:19 GMT" || c.CreateTime != want.CreateTime {
		t.Errorf("updated client = %+v", c)
	}

	// Delete is soft.
	a = call(t, "DELETE", base+"/agent1", tok(at1), "")
	expect(t, a, 200, "Client status updated to inactive successfully")
	if decode(a).Active {
		t.Errorf("deleted client is active")
	}
	expect(t, call(t, "DELETE", base+"/agent1", tok(at2), ""), 400, "Not authorized for this client.")

	// List: the caller's clients; inactive ones only with show_inactive.
	ids := func(a answer) []string {
		var cs []tapistest.Client
		if err := json.Unmarshal(a.env.Result, &cs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.ClientID)
		}
		return out
	}
	a = call(t, "GET", base, tok(at1), "")
	expect(t, a, 200, "Clients retrieved successfully.")
	if got := fmt.Sprint(ids(a)); got != fmt.Sprint([]string{"myclient1", gen.ClientID}) {
		t.Errorf("list = %s", got)
	}
	a = call(t, "GET", base+"?show_inactive=false", tok(at1), "")
	if got := fmt.Sprint(ids(a)); got != fmt.Sprint([]string{"myclient1", gen.ClientID, "agent1"}) {
		t.Errorf("list with show_inactive = %s", got)
	}
	if n := len(s.Clients()); n != 4 {
		t.Errorf("Clients() has %d entries; want 4", n)
	}

	// Auth failures.
	cases := []struct {
		name string
		hdr  map[string]string
		msg  string
	}{
		{"authorization header", map[string]string{"X-Tapis-Token": at1, "Authorization": "Bearer " + at1}, "Invalid call to get_tenant_config; either tenant_id or url must be passed."},
		{"basic header", map[string]string{"Authorization": basic("testuser1", "pw1")}, "Invalid call to get_tenant_config; either tenant_id or url must be passed."},
		{"no token", nil, "No Tapis access token found in the request."},
		{"garbage", map[string]string{"X-Tapis-Token": "garbage"}, "Could not parse the Tapis access token."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, call(t, "GET", base, tc.hdr, ""), 400, tc.msg)
		})
	}
}

func TestTokenValidation(t *testing.T) {
	clk := &fixedClock{time.Now()}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	other := tapistest.New(t, tapistest.Config{TenantID: "other"})
	at := password(t, s, "", "testuser1", "pw1").AccessToken.AccessToken
	exp := clk.t.Add(time.Hour).Unix()
	cases := []struct {
		name string
		hdr  map[string]string
		msg  string
	}{
		{"missing", nil, "No Tapis access token found in the request."},
		{"bearer only", map[string]string{"Authorization": "Bearer " + at}, "No Tapis access token found in the request."},
		{"garbage", map[string]string{"X-Tapis-Token": "garbage"}, "Could not parse the Tapis access token."},
		{"no tenant claim", map[string]string{"X-Tapis-Token": s.SignClaims(map[string]any{"exp": exp})},
			"Unable to process Tapis token; could not parse the tenant_id. It is possible the token is in a format no longer supported by the platform."},
		{"unknown tenant", map[string]string{"X-Tapis-Token": s.SignClaims(map[string]any{"exp": exp, "tapis/tenant_id": "nowhere"})}, "Unable to process Tapis token; unexpected tenant_id."},
		{"bad signature", map[string]string{"X-Tapis-Token": other.SignClaims(map[string]any{"exp": exp, "tapis/tenant_id": "dev", "tapis/username": "testuser1"})}, "Invalid Tapis token."},
		{"expired", map[string]string{"X-Tapis-Token": s.SignClaims(map[string]any{"exp": clk.t.Unix(), "tapis/tenant_id": "dev", "tapis/username": "testuser1"})}, "Invalid Tapis token."},
		{"other tenant", map[string]string{"X-Tapis-Token": other.SignClaims(map[string]any{"exp": exp, "tapis/tenant_id": "other", "tapis/username": "testuser1"})},
			"The tenant_id claim in the token, other does not match the URL tenant, dev."},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v3/oauth2/userinfo", "/v3/oauth2/clients", "/v3/tenants", "/v3/sites/tacc"} {
			noToken := tc.hdr["X-Tapis-Token"] == ""
			if noToken && !strings.HasPrefix(path, "/v3/oauth2") {
				continue // the tenants API tolerates a missing token
			}
			if tc.hdr["Authorization"] != "" && path == "/v3/oauth2/clients" {
				continue // any Authorization header breaks clients calls differently
			}
			t.Run(tc.name+path, func(t *testing.T) {
				expect(t, call(t, "GET", s.URL()+path, tc.hdr, ""), 400, tc.msg)
			})
		}
	}
}

func TestUserinfo(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	at := password(t, s, "", "testuser1", "pw1").AccessToken.AccessToken
	a := call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Token": at}, "")
	want := `{"message":"User profile retrieved successfully.","metadata":{},"result":{"create_time":null,` +
		`"dn":"cn=testuser1,ou=tenants.dev,dc=tapis","email":"testuser1@test.tapis.io","given_name":"testuser1",` +
		`"last_name":"testuser1","mobile_phone":null,"phone":null,"uid":null,"username":"testuser1"},"status":"success","version":"dev"}` + "\n"
	if a.status != 200 || string(a.raw) != want {
		t.Errorf("userinfo = %d\n%s\nwant\n%s", a.status, a.raw, want)
	}
	// Expiry by the injected clock, with no leeway.
	clk.t = clk.t.Add(4*time.Hour - time.Second)
	expect(t, call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Token": at}, ""), 200, "User profile retrieved successfully.")
	clk.t = clk.t.Add(time.Second)
	expect(t, call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Token": at}, ""), 400, "Invalid Tapis token.")
}

func TestRevoke(t *testing.T) {
	clk := &fixedClock{time.Now()}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	r := password(t, s, basic("myclient1", "mykey1"), "testuser1", "pw1")
	url := s.URL() + "/v3/oauth2/tokens/revoke"
	js := map[string]string{"Content-Type": "application/json"}
	for _, tok := range []string{r.AccessToken.AccessToken, r.RefreshToken.RefreshToken} {
		jti := claimsOf(t, tok)["jti"].(string)
		if s.Revoked(jti) {
			t.Fatalf("Revoked(%s) before revoking", jti)
		}
		for range 2 { // repeatable
			a := call(t, "POST", url, js, fmt.Sprintf(`{"token":%q}`, tok))
			expect(t, a, 200, "Token "+jti+" has been revoked.")
			if string(a.env.Result) != `""` {
				t.Errorf("result = %s; want \"\"", a.env.Result)
			}
		}
		if !s.Revoked(jti) {
			t.Errorf("Revoked(%s) = false after revoking", jti)
		}
	}
	// A revoked access token still works on userinfo.
	expect(t, call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Token": r.AccessToken.AccessToken}, ""), 200, "User profile retrieved successfully.")

	expect(t, call(t, "POST", url, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "token="+r.AccessToken.AccessToken), 400,
		"Unable to parse message payload; is it JSON?")
	expect(t, call(t, "POST", url, js, "{"), 400, "Unable to parse message payload; is it JSON?")
	expect(t, call(t, "POST", url, js, `{"token":"garbage"}`), 400,
		"Invalid POST data; could not validate the token: debug data: Could not parse the Tapis access token..")
	clk.t = clk.t.Add(5 * time.Hour)
	expect(t, call(t, "POST", url, js, fmt.Sprintf(`{"token":%q}`, r.AccessToken.AccessToken)), 400,
		"Invalid POST data; could not validate the token: debug data: Invalid Tapis token..")
}

func TestTenantsAndSites(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	u := s.URL()
	a := call(t, "GET", u+"/v3/tenants", nil, "")
	expect(t, a, 200, "Tenants retrieved successfully.")
	var tenants []map[string]any
	if err := json.Unmarshal(a.env.Result, &tenants); err != nil || len(tenants) != 1 {
		t.Fatalf("tenants = %s (%v)", a.env.Result, err)
	}
	tn := tenants[0]
	want := map[string]string{"tenant_id": "dev", "base_url": u, "token_service": u + "/v3/tokens", "authenticator": u + "/v3/oauth2",
		"site_id": "tacc", "status": "ACTIVE", "public_key": s.PublicKeyPEM()}
	for k, v := range want {
		if tn[k] != v {
			t.Errorf("tenant %s = %v; want %v", k, tn[k], v)
		}
	}
	for _, k := range []string{"token_gen_services", "service_ldap_connection_id", "user_ldap_connection_id"} {
		if _, has := tn[k]; has {
			t.Errorf("falsy field %s present", k)
		}
	}
	expect(t, call(t, "GET", u+"/v3/tenants/dev", nil, ""), 200, "Tenant retrieved successfully.")
	expect(t, call(t, "GET", u+"/v3/tenants/nope", nil, ""), 400, "No tenant found with tenant_id nope.")

	a = call(t, "GET", u+"/v3/sites", nil, "")
	expect(t, a, 200, "Sites retrieved successfully.")
	var sites []map[string]any
	if err := json.Unmarshal(a.env.Result, &sites); err != nil || len(sites) != 1 {
		t.Fatalf("sites = %s (%v)", a.env.Result, err)
	}
	if sites[0]["site_id"] != "tacc" || sites[0]["primary"] != true || sites[0]["base_url"] != u || sites[0]["tenant_base_url_template"] != u {
		t.Errorf("site = %v", sites[0])
	}
	expect(t, call(t, "GET", u+"/v3/sites/tacc", nil, ""), 200, "Site retrieved successfully.")
	expect(t, call(t, "GET", u+"/v3/sites/nope", nil, ""), 400, "No site found with site_id nope.")

	// A valid token is accepted.
	at := password(t, s, "", "testuser1", "pw1").AccessToken.AccessToken
	expect(t, call(t, "GET", u+"/v3/tenants", map[string]string{"X-Tapis-Token": at}, ""), 200, "Tenants retrieved successfully.")
}

func TestHealthAndWellKnown(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	for _, p := range []string{"/v3/oauth2", "/v3/tenants", "/v3/tokens"} {
		a := call(t, "GET", s.URL()+p+"/hello", nil, "")
		expect(t, a, 200, "Hello from Tapis")
		if string(a.env.Result) != `""` {
			t.Errorf("hello result = %s", a.env.Result)
		}
		expect(t, call(t, "GET", s.URL()+p+"/ready", nil, ""), 200, "Service is ready.")
	}
	a := call(t, "GET", s.URL()+"/v3/oauth2/.well-known/oauth-authorization-server", nil, "")
	expect(t, a, 200, "OAuth server metadata retrieved successfully.")
	var wk map[string]any
	json.Unmarshal(a.env.Result, &wk)
	if wk["token_endpoint"] != s.URL()+"/v3/oauth2/token" {
		t.Errorf("token_endpoint = %v", wk["token_endpoint"])
	}
}

func TestUnknownPathAndWrongMethod(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	for _, p := range []string{"/v3/oauth2/nope", "/v3/oauth2/token", "/foo", "/v3/oauth2/tokens/", "/v3/oauth2/clients/a/b"} {
		t.Run("unknown"+p, func(t *testing.T) {
			a := call(t, "GET", s.URL()+p, nil, "")
			if a.status != 500 || a.ctype != "text/html; charset=utf-8" || !strings.Contains(string(a.raw), "Internal Server Error") {
				t.Errorf("GET %s = %d %q %q; want 500 text/html", p, a.status, a.ctype, a.raw)
			}
		})
	}
	for _, m := range []struct{ method, path string }{
		{"GET", "/v3/oauth2/tokens"}, {"PUT", "/v3/oauth2/tokens/revoke"}, {"DELETE", "/v3/oauth2/clients"},
		{"POST", "/v3/oauth2/userinfo"}, {"GET", "/v3/oauth2/device/code"}, {"POST", "/v3/tenants"}, {"PATCH", "/v3/oauth2/clients/x"},
	} {
		t.Run(m.method+m.path, func(t *testing.T) {
			expect(t, call(t, m.method, s.URL()+m.path, nil, ""), 400, "The endpoint and HTTP method combination are not available from this service.")
		})
	}
}

func TestDeviceFlow(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 11, 19, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	js := map[string]string{"Content-Type": "application/json"}
	type code struct {
		ClientID        string `json:"client_id"`
		DeviceCode      string `json:"device_code"`
		ExpiresIn       string `json:"expires_in"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
	}
	start := func(client string) code {
		t.Helper()
		a := call(t, "POST", s.URL()+"/v3/oauth2/device/code", js, fmt.Sprintf(`{"client_id":%q}`, client))
		expect(t, a, 200, "Token created successfully.")
		var c code
		if err := json.Unmarshal(a.env.Result, &c); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(a.env.Result), "interval") {
			t.Errorf("device code result has an interval: %s", a.env.Result)
		}
		return c
	}
	poll := func(client, dc string) answer {
		return call(t, "POST", s.URL()+"/v3/oauth2/tokens", js, fmt.Sprintf(`{"grant_type":"device_code","client_id":%q,"device_code":%q}`, client, dc))
	}

	expect(t, call(t, "POST", s.URL()+"/v3/oauth2/device/code", js, `{"client_id":"ghost"}`), 400, "Invalid client: ghost")

	c := start("myclient1")
	if got := s.UserCodes(); len(got) != 1 || got[0] != c.UserCode {
		t.Errorf("UserCodes() = %q; want [%s]", got, c.UserCode)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{40}$`).MatchString(c.DeviceCode) || !regexp.MustCompile(`^[A-Za-z]{8}$`).MatchString(c.UserCode) {
		t.Errorf("codes = %q, %q", c.DeviceCode, c.UserCode)
	}
	if c.ExpiresIn != "Sun, 22 Nov 2026 14:21:19 GMT" || c.ClientID != "myclient1" || c.VerificationURI != s.URL()+"/v3/oauth2/device?client_id=myclient1" {
		t.Errorf("device code = %+v", c)
	}
	expect(t, poll("myclient1", c.DeviceCode), 400, "device code not ready.")
	if err := s.ApproveDevice("nope"); err == nil {
		t.Errorf("ApproveDevice(unknown) = nil; want an error")
	}
	if err := s.ApproveDevice(c.UserCode); err != nil {
		t.Fatal(err)
	}
	expect(t, poll("myclient2", c.DeviceCode), 400, "Client IDs do not match between device code and passed in client_id")
	r := mustTokens(t, poll("myclient1", c.DeviceCode))
	if r.RefreshToken == nil || r.AccessToken.ExpiresIn != 2592000 {
		t.Errorf("device tokens: refresh %v, access expires_in %d; want a refresh token and 2592000", r.RefreshToken != nil, r.AccessToken.ExpiresIn)
	}
	ac := claimsOf(t, r.AccessToken.AccessToken)
	if ac["tapis/grant_type"] != "device_code" || ac["tapis/client_id"] != "myclient1" || ac["tapis/username"] != "testuser1" || ac["tapis/refresh_count"] != json.Number("0") {
		t.Errorf("device claims = %v", ac)
	}
	expect(t, poll("myclient1", c.DeviceCode), 400, "device code not valid.")
	if got := s.UserCodes(); len(got) != 0 {
		t.Errorf("UserCodes() after use = %q; want none", got)
	}
	// The pair refreshes with the client, to the tenant's default TTL.
	rr := mustTokens(t, refresh(t, s, basic("myclient1", "mykey1"), r.RefreshToken.RefreshToken))
	if rr.AccessToken.ExpiresIn != 14400 {
		t.Errorf("refreshed device token expires_in = %d; want 14400", rr.AccessToken.ExpiresIn)
	}

	// Readiness is checked before expiry.
	c = start("myclient1")
	clk.t = clk.t.Add(time.Hour)
	expect(t, poll("myclient1", c.DeviceCode), 400, "device code not ready.")
	if err := s.ApproveDevice(c.UserCode); err == nil {
		t.Errorf("ApproveDevice(expired) = nil; want an error")
	}

	// An approved code expires after 600 s plus 6 s of grace.
	c = start("myclient1")
	if err := s.ApproveDeviceTTL(c.UserCode, 0); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(606 * time.Second)
	r = mustTokens(t, poll("myclient1", c.DeviceCode))
	if r.AccessToken.ExpiresIn != 14400 {
		t.Errorf("ApproveDeviceTTL(0) expires_in = %d; want the tenant default 14400", r.AccessToken.ExpiresIn)
	}
	c = start("myclient1")
	s.ApproveDevice(c.UserCode)
	clk.t = clk.t.Add(607 * time.Second)
	expect(t, poll("myclient1", c.DeviceCode), 400, "device code has expired and is now deleted.")
	expect(t, poll("myclient1", c.DeviceCode), 400, "device code not valid.")
}

func TestDeviceApproveAfter(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now, DeviceApproveAfter: 10 * time.Second})
	a := call(t, "POST", s.URL()+"/v3/oauth2/device/code", map[string]string{"Content-Type": "application/json"}, `{"client_id":"myclient2"}`)
	var c struct {
		DeviceCode string `json:"device_code"`
	}
	json.Unmarshal(a.env.Result, &c)
	body := fmt.Sprintf(`{"grant_type":"device_code","client_id":"myclient2","device_code":%q}`, c.DeviceCode)
	clk.t = clk.t.Add(9 * time.Second)
	expect(t, postTokens(t, s, "", body), 400, "device code not ready.")
	clk.t = clk.t.Add(time.Second)
	r := mustTokens(t, postTokens(t, s, "", body))
	if u := claimsOf(t, r.AccessToken.AccessToken)["tapis/username"]; u != "testuser2" || r.AccessToken.ExpiresIn != 14400 {
		t.Errorf("auto-approved tokens: user %v, expires_in %d", u, r.AccessToken.ExpiresIn)
	}
	expect(t, postTokens(t, s, "", body), 400, "device code not valid.")
}

func TestConcurrentRefresh(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	c1 := basic("myclient1", "mykey1")
	first := password(t, s, c1, "testuser1", "pw1")
	body, _ := json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": first.RefreshToken.RefreshToken})
	const n = 300 // enough to race; 1000 outlasted the client timeout on a loaded machine
	errs := make(chan string, n)
	for range n {
		go func() {
			a, err := tryCall("POST", s.URL()+"/v3/oauth2/tokens",
				map[string]string{"Content-Type": "application/json", "Authorization": c1}, string(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			if a.status != http.StatusOK {
				errs <- fmt.Sprintf("%d %s", a.status, a.env.Message)
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Errorf("concurrent refresh: %s", e)
		}
	}
	if got := s.GrantCalls("refresh_token"); got != n {
		t.Errorf("GrantCalls(refresh_token) = %d; want %d", got, n)
	}
}
