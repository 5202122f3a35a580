package tapistest_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestTokenErrors(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	access, rt := s.IssueTokens("testuser1", "myclient1")
	far := time.Now().Add(time.Hour).Unix()
	noAccessClaim := s.SignClaims(map[string]any{"jti": "x", "tapis/tenant_id": "dev", "tapis/token_type": "refresh", "exp": far})
	noCount := s.SignClaims(map[string]any{"jti": "y", "tapis/tenant_id": "dev", "tapis/token_type": "refresh", "exp": far,
		"tapis/access_token": map[string]any{"tapis/client_id": "myclient1", "tapis/username": "testuser1"}})
	expired := s.SignClaims(map[string]any{"jti": "z", "tapis/tenant_id": "dev", "tapis/token_type": "refresh",
		"exp": time.Now().Add(-time.Second).Unix(), "tapis/access_token": map[string]any{"tapis/client_id": "myclient1", "tapis/refresh_count": 0}})
	c1 := basic("myclient1", "mykey1")
	const jsonCT = "application/json"
	const formCT = "application/x-www-form-urlencoded"
	refreshBody := func(tok string) string {
		return fmt.Sprintf(`{"grant_type":"refresh_token","refresh_token":%q}`, tok)
	}

	cases := []struct {
		name    string
		ctype   string // "" sends no Content-Type
		auth    string
		body    string
		status  int
		msg     string
		prefix  bool // msg is a prefix only
		refresh bool // a successful answer carries a refresh token
	}{
		{name: "no content type", body: `{"grant_type":"password"}`, status: 500, msg: "Unrecognized exception type: <class 'AttributeError'>. Exception: 'NoneType' object has no attribute 'startswith'"},
		{name: "other content type", ctype: "text/plain", body: "x", status: 400, msg: "Invalid POST data: [MediaTypeNotFound(", prefix: true},
		{name: "malformed json", ctype: jsonCT, body: "{", status: 400, msg: "Invalid POST data: [MediaTypeDeserializeError(", prefix: true},
		{name: "empty json body", ctype: jsonCT, status: 400, msg: "Invalid POST data: [MissingRequiredRequestBody(", prefix: true},
		{name: "non-string field", ctype: jsonCT, body: `{"grant_type":5}`, status: 400, msg: "Invalid POST data: [InvalidSchemaValue(", prefix: true},
		{name: "json array", ctype: jsonCT, body: `[]`, status: 400, msg: "Invalid POST data: [InvalidSchemaValue(", prefix: true},
		{name: "no grant type", ctype: jsonCT, body: `{}`, status: 400, msg: "Missing the required grant_type parameter."},
		{name: "empty grant type", ctype: formCT, body: "grant_type=", status: 400, msg: "Missing the required grant_type parameter."},
		{name: "grant not allowed", ctype: jsonCT, body: `{"grant_type":"client_credentials"}`, status: 400,
			msg: "Invalid grant_type (client_credentials); this grant type is not allowed for this tenant. Allowable grant types: ['password', 'implicit', 'authorization_code', 'refresh_token', 'device_code']"},
		{name: "device no client_id", ctype: jsonCT, body: `{"grant_type":"device_code","device_code":"abc"}`, status: 400, msg: "Required client_id parameter missing."},
		{name: "device form ignores client_id", ctype: formCT, body: "grant_type=device_code&client_id=myclient1&device_code=abc", status: 400, msg: "Required client_id parameter missing."},
		{name: "device no device_code", ctype: jsonCT, body: `{"grant_type":"device_code","client_id":"myclient1"}`, status: 400, msg: "Required device_code parameter missing."},
		{name: "device unknown code", ctype: jsonCT, body: `{"grant_type":"device_code","client_id":"myclient1","device_code":"abc"}`, status: 400, msg: "device code not valid."},
		{name: "device ignores basic", ctype: jsonCT, auth: basic("nope", "nope"), body: `{"grant_type":"device_code","client_id":"myclient1","device_code":"abc"}`, status: 400, msg: "device code not valid."},
		{name: "wrong client key", ctype: jsonCT, auth: basic("myclient1", "wrong"), body: `{"grant_type":"password","username":"testuser1","password":"pw1"}`, status: 400,
			msg: "Invalid client credentials: myclient1, wrong. session: <SecureCookieSession {}>"},
		{name: "unknown client before missing fields", ctype: jsonCT, auth: basic("ghost", "k"), body: `{"grant_type":"password"}`, status: 400,
			msg: "Invalid client credentials: ghost, k. session: <SecureCookieSession {}>"},
		{name: "refresh without client", ctype: jsonCT, body: refreshBody(rt), status: 400, msg: "Invalid client credentials: None, None. session: <SecureCookieSession {}>"},
		{name: "refresh with bearer is no client", ctype: jsonCT, auth: "Bearer " + access, body: refreshBody(rt), status: 400, msg: "Invalid client credentials: None, None. session: <SecureCookieSession {}>"},
		{name: "refresh with malformed basic", ctype: jsonCT, auth: "Basic !!!", body: refreshBody(rt), status: 400, msg: "Invalid client credentials: None, None. session: <SecureCookieSession {}>"},
		{name: "refresh with body credentials", ctype: jsonCT, body: `{"grant_type":"refresh_token","client_id":"myclient1","client_key":"mykey1","refresh_token":"` + rt + `"}`, status: 400,
			msg: "Invalid client credentials: None, None. session: <SecureCookieSession {}>"},
		{name: "authorization_code without client", ctype: jsonCT, body: `{"grant_type":"authorization_code"}`, status: 400, msg: "Invalid client credentials: None, None. session: <SecureCookieSession {}>"},
		{name: "password missing username", ctype: jsonCT, body: `{"grant_type":"password","password":"pw1"}`, status: 400,
			msg: "Missing required payload data; username and password are required for the password grant type."},
		{name: "password wrong", ctype: jsonCT, body: `{"grant_type":"password","username":"testuser1","password":"nope"}`, status: 400, msg: "Invalid username/password combination."},
		{name: "password unknown user", ctype: jsonCT, body: `{"grant_type":"password","username":"ghost","password":"pw1"}`, status: 400, msg: "Invalid username/password combination."},
		{name: "authorization_code no redirect", ctype: jsonCT, auth: c1, body: `{"grant_type":"authorization_code","code":"x"}`, status: 400, msg: "Required redirect_uri parameter missing."},
		{name: "authorization_code bad redirect", ctype: jsonCT, auth: c1, body: `{"grant_type":"authorization_code","redirect_uri":"https://x","code":"x"}`, status: 400,
			msg: "Invalid redirect_uri parameter: does not match callback URL registered with client."},
		{name: "authorization_code no code", ctype: jsonCT, auth: c1, body: `{"grant_type":"authorization_code","redirect_uri":""}`, status: 400, msg: "Required authorization_code parameter missing."},
		{name: "authorization_code bad code", ctype: jsonCT, auth: c1, body: `{"grant_type":"authorization_code","redirect_uri":"","code":"x"}`, status: 400, msg: "authorization code not valid."},
		{name: "refresh missing token", ctype: jsonCT, auth: c1, body: `{"grant_type":"refresh_token"}`, status: 400, msg: "Required refresh_token parameter missing."},
		{name: "refresh garbage", ctype: jsonCT, auth: c1, body: refreshBody("garbage"), status: 400, msg: "Invalid refresh_token."},
		{name: "refresh expired", ctype: jsonCT, auth: c1, body: refreshBody(expired), status: 400, msg: "Invalid refresh_token."},
		{name: "refresh bad signature", ctype: jsonCT, auth: c1, body: refreshBody(rt[:len(rt)-4] + "AAAA"), status: 400, msg: "Invalid refresh_token."},
		{name: "refresh with access token", ctype: jsonCT, auth: c1, body: refreshBody(access), status: 400,
			msg: "Invalid token type. The refresh_token grant type required a token of type refresh. Instead a token of type access was passed."},
		{name: "refresh without access claim", ctype: jsonCT, auth: c1, body: refreshBody(noAccessClaim), status: 400,
			msg: "Invalid refresh_token format; this token was missing the access_token claim."},
		{name: "refresh other client", ctype: jsonCT, auth: basic("myclient2", "mykey2"), body: refreshBody(rt), status: 400,
			msg: "client_id from header (myclient2) does not match the client_id in the token claim (myclient1)."},
		{name: "refresh without refresh_count", ctype: jsonCT, auth: c1, body: refreshBody(noCount), status: 500,
			msg: "Unrecognized exception type: <class 'TypeError'>. Exception: unsupported operand type(s) for +: 'NoneType' and 'int'"},
		{name: "implicit with client", ctype: jsonCT, auth: c1, body: `{"grant_type":"implicit"}`, status: 400, msg: "Invalid grant_type"},
		{name: "refresh form", ctype: formCT, auth: c1, body: "grant_type=refresh_token&refresh_token=" + rt, status: 200, msg: "Token created successfully.", refresh: true},
		{name: "password form with charset", ctype: formCT + "; charset=utf-8", body: "grant_type=password&username=testuser1&password=pw1", status: 200, msg: "Token created successfully."},
		{name: "password json with charset and client", ctype: "application/json; charset=utf-8", auth: c1, body: `{"grant_type":"password","username":"testuser1","password":"pw1"}`, status: 200,
			msg: "Token created successfully.", refresh: true},
		{name: "body credentials are no client", ctype: jsonCT, body: `{"grant_type":"password","username":"testuser1","password":"pw1","client_id":"myclient1","client_key":"mykey1"}`, status: 200,
			msg: "Token created successfully."},
		{name: "bearer is no client", ctype: jsonCT, auth: "Bearer " + access, body: `{"grant_type":"password","username":"testuser1","password":"pw1"}`, status: 200, msg: "Token created successfully."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.ctype != "" {
				hdr["Content-Type"] = tc.ctype
			}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			a := call(t, "POST", s.URL()+"/v3/oauth2/tokens", hdr, tc.body)
			if a.status != tc.status {
				t.Errorf("status = %d; want %d (body %q)", a.status, tc.status, a.raw)
			}
			if a.ctype != "application/json" {
				t.Fatalf("Content-Type = %q; want application/json", a.ctype)
			}
			got := a.env.Message
			if tc.prefix && !strings.HasPrefix(got, tc.msg) || !tc.prefix && got != tc.msg {
				t.Errorf("message = %q; want %q (prefix %v)", got, tc.msg, tc.prefix)
			}
			wantStatus, wantResult := "error", "null"
			if tc.status == 200 {
				wantStatus = "success"
				r := mustTokens(t, a)
				if (r.RefreshToken != nil) != tc.refresh {
					t.Errorf("refresh token present = %v; want %v", r.RefreshToken != nil, tc.refresh)
				}
				wantResult = string(a.env.Result)
			}
			if a.env.Status != wantStatus || string(a.env.Result) != wantResult || a.env.Version != "dev" || a.env.Metadata == nil || len(a.env.Metadata) != 0 {
				t.Errorf("envelope = %q; want status %s, result %s, metadata {}", a.raw, wantStatus, wantResult)
			}
		})
	}
}

func TestTokensIgnoresXTapisToken(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	for _, tok := range []string{"garbage", s.SignClaims(map[string]any{"tapis/tenant_id": "dev", "exp": 1})} {
		a := call(t, "POST", s.URL()+"/v3/oauth2/tokens", map[string]string{"Content-Type": "application/json", "X-Tapis-Token": tok},
			`{"grant_type":"password","username":"testuser1","password":"pw1"}`)
		mustTokens(t, a)
	}
}

var (
	// A success answer, byte for byte up to the tokens: sorted compact keys.
	successRE = regexp.MustCompile(`^\{"message":"Token created successfully\.","metadata":\{\},"result":\{` +
		`"access_token":\{"access_token":"[\w-]+\.[\w-]+\.[\w-]+","expires_at":"[^"]+","expires_in":\d+,"jti":"[0-9a-f-]{36}"\},` +
		`"refresh_token":\{"expires_at":"[^"]+","expires_in":\d+,"jti":"[0-9a-f-]{36}","refresh_token":"[\w-]+\.[\w-]+\.[\w-]+"\}\},` +
		`"status":"success","version":"dev"\}\n$`)
	uuid4RE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestSuccessWireFormat(t *testing.T) {
	cases := []struct {
		name      string
		now       time.Time
		accessAt  string
		refreshAt string
	}{
		{"microseconds", time.Date(2026, 11, 22, 14, 11, 19, 676197123, time.UTC), "2026-11-22T18:11:19.676197+00:00", "2027-11-22T14:11:19.676197+00:00"},
		{"whole second", time.Date(2026, 11, 22, 14, 11, 19, 0, time.UTC), "2026-11-22T18:11:19+00:00", "2027-11-22T14:11:19+00:00"},
		{"sub-microsecond only", time.Date(2026, 11, 22, 14, 11, 19, 999, time.UTC), "2026-11-22T18:11:19+00:00", "2027-11-22T14:11:19+00:00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fixedClock{tc.now}
			s := newTenant(t, tapistest.Config{Now: clk.now})
			a := postTokens(t, s, basic("myclient1", "mykey1"), `{"grant_type":"password","username":"testuser1","password":"pw1"}`)
			if a.ctype != "application/json" {
				t.Errorf("Content-Type = %q; want exactly application/json", a.ctype)
			}
			if !successRE.Match(a.raw) {
				t.Fatalf("body does not have the wire format:\n%s", a.raw)
			}
			r := mustTokens(t, a)
			if r.AccessToken.ExpiresAt != tc.accessAt || r.RefreshToken.ExpiresAt != tc.refreshAt {
				t.Errorf("expires_at = %s, %s; want %s, %s", r.AccessToken.ExpiresAt, r.RefreshToken.ExpiresAt, tc.accessAt, tc.refreshAt)
			}
			if r.AccessToken.ExpiresIn != 14400 || r.RefreshToken.ExpiresIn != 31536000 {
				t.Errorf("expires_in = %d, %d; want 14400, 31536000", r.AccessToken.ExpiresIn, r.RefreshToken.ExpiresIn)
			}
			for _, at := range []string{r.AccessToken.ExpiresAt, r.RefreshToken.ExpiresAt} {
				if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
					t.Errorf("expires_at %q does not parse as RFC 3339: %v", at, err)
				}
			}
			if !uuid4RE.MatchString(r.AccessToken.JTI) || !uuid4RE.MatchString(r.RefreshToken.JTI) {
				t.Errorf("jti = %q, %q; want UUID4s", r.AccessToken.JTI, r.RefreshToken.JTI)
			}
			ac := claimsOf(t, r.AccessToken.AccessToken)
			if got, want := ac["exp"], json.Number(fmt.Sprint(tc.now.Add(4*time.Hour).Unix())); got != want {
				t.Errorf("access exp = %v; want %v (expires_at truncated)", got, want)
			}
			if ac["jti"] != r.AccessToken.JTI || claimsOf(t, r.RefreshToken.RefreshToken)["jti"] != r.RefreshToken.JTI {
				t.Errorf("claim jti differs from the response jti")
			}
		})
	}
}

func TestEnvelopeEscaping(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	// The unknown grant type is echoed: <, > and & stay literal, non-ASCII
	// is escaped as Python does.
	a := postTokens(t, s, "", `{"grant_type":"<a&b>é😀"}`)
	want := `{"message":"Invalid grant_type (<a&b>\u00e9\ud83d\ude00); this grant type is not allowed for this tenant. Allowable grant types: ['password', 'implicit', 'authorization_code', 'refresh_token', 'device_code']","metadata":{},"result":null,"status":"error","version":"dev"}` + "\n"
	if string(a.raw) != want {
		t.Errorf("body =\n%s\nwant\n%s", a.raw, want)
	}
}

func TestJWTClaims(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 11, 19, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	iss := s.URL() + "/v3/tokens"
	exp := clk.t.Add(4 * time.Hour).Unix()

	t.Run("without client", func(t *testing.T) {
		r := password(t, s, "", "testuser1", "pw1")
		if r.RefreshToken != nil {
			t.Fatalf("refresh token issued without a client")
		}
		hdr, payload := verifyJWT(t, s.PublicKeyPEM(), r.AccessToken.AccessToken)
		if string(hdr) != `{"alg":"RS256","typ":"JWT"}` {
			t.Errorf("header = %s", hdr)
		}
		want := fmt.Sprintf(`{"jti":%q,"iss":%q,"sub":"testuser1@dev","tapis/tenant_id":"dev","tapis/token_type":"access","tapis/delegation":false,`+
			`"tapis/delegation_sub":null,"tapis/username":"testuser1","tapis/account_type":"user","exp":%d,"tapis/client_id":null,"tapis/grant_type":"password"}`,
			r.AccessToken.JTI, iss, exp)
		if string(payload) != want {
			t.Errorf("payload =\n%s\nwant\n%s", payload, want)
		}
	})
	t.Run("with client", func(t *testing.T) {
		r := password(t, s, basic("myclient1", "mykey1"), "testuser1", "pw1")
		_, payload := verifyJWT(t, s.PublicKeyPEM(), r.AccessToken.AccessToken)
		want := fmt.Sprintf(`{"jti":%q,"iss":%q,"sub":"testuser1@dev","tapis/tenant_id":"dev","tapis/token_type":"access","tapis/delegation":false,`+
			`"tapis/delegation_sub":null,"tapis/username":"testuser1","tapis/account_type":"user","exp":%d,"tapis/client_id":"myclient1","tapis/grant_type":"password","tapis/refresh_count":0}`,
			r.AccessToken.JTI, iss, exp)
		if string(payload) != want {
			t.Errorf("access payload =\n%s\nwant\n%s", payload, want)
		}
		_, payload = verifyJWT(t, s.PublicKeyPEM(), r.RefreshToken.RefreshToken)
		want = fmt.Sprintf(`{"jti":%q,"iss":%q,"sub":"testuser1@dev","tapis/tenant_id":"dev","tapis/token_type":"refresh","tapis/initial_ttl":31536000,`+
			`"tapis/access_token":{"jti":%q,"iss":%q,"sub":"testuser1@dev","tapis/tenant_id":"dev","tapis/token_type":"access","tapis/delegation":false,`+
			`"tapis/delegation_sub":null,"tapis/username":"testuser1","tapis/account_type":"user","tapis/client_id":"myclient1","tapis/grant_type":"password","tapis/refresh_count":0,"ttl":14400},`+
			`"exp":%d}`, r.RefreshToken.JTI, iss, r.AccessToken.JTI, iss, clk.t.Add(8760*time.Hour).Unix())
		if string(payload) != want {
			t.Errorf("refresh payload =\n%s\nwant\n%s", payload, want)
		}
	})
	t.Run("tenant record key", func(t *testing.T) {
		a := call(t, "GET", s.URL()+"/v3/tenants/dev", nil, "")
		var rec struct {
			PublicKey    string `json:"public_key"`
			TokenService string `json:"token_service"`
		}
		if err := json.Unmarshal(a.env.Result, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.PublicKey != s.PublicKeyPEM() || !strings.HasPrefix(rec.PublicKey, "-----BEGIN PUBLIC KEY-----\n") || rec.TokenService != iss {
			t.Errorf("tenant record public_key/token_service = %q, %q", rec.PublicKey, rec.TokenService)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	clk := &fixedClock{time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)}
	s := newTenant(t, tapistest.Config{Now: clk.now})
	c1 := basic("myclient1", "mykey1")
	first := password(t, s, c1, "testuser1", "pw1")

	countOf := func(r tokenResult) json.Number {
		return claimsOf(t, r.AccessToken.AccessToken)["tapis/refresh_count"].(json.Number)
	}
	second := mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))
	third := mustTokens(t, refresh(t, s, c1, second.RefreshToken.RefreshToken))
	if countOf(second) != "1" || countOf(third) != "2" {
		t.Errorf("refresh_count = %s, %s; want 1, 2", countOf(second), countOf(third))
	}
	if second.RefreshToken.RefreshToken == first.RefreshToken.RefreshToken || third.RefreshToken.JTI == second.RefreshToken.JTI {
		t.Errorf("refresh did not rotate the refresh token")
	}
	ac := claimsOf(t, third.AccessToken.AccessToken)
	if ac["tapis/grant_type"] != "refresh_token" || ac["tapis/client_id"] != "myclient1" || ac["tapis/username"] != "testuser1" {
		t.Errorf("refreshed claims = %v", ac)
	}
	rc := claimsOf(t, third.RefreshToken.RefreshToken)["tapis/access_token"].(map[string]any)
	if rc["tapis/refresh_count"] != json.Number("2") || rc["tapis/grant_type"] != "refresh_token" {
		t.Errorf("embedded claims = %v", rc)
	}

	// The old token still works and restarts from its own count.
	replay := mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))
	if countOf(replay) != "1" {
		t.Errorf("replayed refresh_count = %s; want 1", countOf(replay))
	}

	// Revocation does not stop refresh.
	if a := call(t, "POST", s.URL()+"/v3/oauth2/tokens/revoke", map[string]string{"Content-Type": "application/json"},
		fmt.Sprintf(`{"token":%q}`, first.RefreshToken.RefreshToken)); a.status != 200 {
		t.Fatalf("revoke = %d %s", a.status, a.raw)
	}
	mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))

	// Refresh applies the tenant's current TTLs, with a sliding window.
	s.SetTTLs(10*time.Minute, 2*time.Hour)
	clk.t = clk.t.Add(time.Hour)
	r := mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))
	if r.AccessToken.ExpiresIn != 600 || r.RefreshToken.ExpiresIn != 7200 || r.AccessToken.ExpiresAt != "2026-11-22T15:10:00+00:00" {
		t.Errorf("after SetTTLs: expires_in %d/%d, expires_at %s", r.AccessToken.ExpiresIn, r.RefreshToken.ExpiresIn, r.AccessToken.ExpiresAt)
	}
	if ttl := claimsOf(t, r.RefreshToken.RefreshToken)["tapis/access_token"].(map[string]any)["ttl"]; ttl != json.Number("600") {
		t.Errorf("embedded ttl = %v; want 600", ttl)
	}

	// The refresh token dies at its exp, with no leeway.
	clk.t = clk.t.Add(2*time.Hour - time.Second)
	mustTokens(t, refresh(t, s, c1, r.RefreshToken.RefreshToken))
	clk.t = clk.t.Add(time.Second)
	if a := refresh(t, s, c1, r.RefreshToken.RefreshToken); a.env.Message != "Invalid refresh_token." {
		t.Errorf("refresh at exp = %d %q; want Invalid refresh_token.", a.status, a.env.Message)
	}
}

func TestSingleUseRefresh(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	c1 := basic("myclient1", "mykey1")
	first := password(t, s, c1, "testuser1", "pw1")
	s.SetSingleUseRefresh(true)
	second := mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))
	if a := refresh(t, s, c1, first.RefreshToken.RefreshToken); a.status != 400 || a.env.Message != "Invalid refresh_token." {
		t.Errorf("second use = %d %q; want 400 Invalid refresh_token.", a.status, a.env.Message)
	}
	mustTokens(t, refresh(t, s, c1, second.RefreshToken.RefreshToken))
	s.SetSingleUseRefresh(false)
	mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))
}

func TestDeactivatedClientStillGrants(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	user := password(t, s, "", "testuser1", "pw1")
	a := call(t, "DELETE", s.URL()+"/v3/oauth2/clients/myclient1", map[string]string{"X-Tapis-Token": user.AccessToken.AccessToken}, "")
	if a.status != 200 {
		t.Fatalf("delete = %d %s", a.status, a.raw)
	}
	r := password(t, s, basic("myclient1", "mykey1"), "testuser1", "pw1")
	if r.RefreshToken == nil {
		t.Fatal("no refresh token for a deactivated client")
	}
	mustTokens(t, refresh(t, s, basic("myclient1", "mykey1"), r.RefreshToken.RefreshToken))
}

func TestIssueTokens(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	at, rt := s.IssueTokens("testuser1", "")
	if rt != "" {
		t.Errorf("refresh token issued without a client")
	}
	verifyJWT(t, s.PublicKeyPEM(), at)
	at, rt = s.IssueTokens("testuser1", "myclient1")
	if claimsOf(t, at)["tapis/client_id"] != "myclient1" {
		t.Errorf("client_id claim = %v", claimsOf(t, at)["tapis/client_id"])
	}
	r := mustTokens(t, refresh(t, s, basic("myclient1", "mykey1"), rt))
	if got := claimsOf(t, r.AccessToken.AccessToken)["tapis/refresh_count"]; got != json.Number("1") {
		t.Errorf("refresh_count = %v; want 1", got)
	}
}

// TestRotateSigningKey: a new tenant key makes every token signed with the
// old one invalid, for services and for the refresh grant, and the tenant
// record publishes the new public key.
func TestRotateSigningKey(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	c1 := basic("myclient1", "mykey1")
	old := password(t, s, c1, "testuser1", "pw1")
	oldPEM := s.PublicKeyPEM()
	userinfo := func(tok string) answer {
		return call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Token": tok}, "")
	}
	expect(t, userinfo(old.AccessToken.AccessToken), 200, "User profile retrieved successfully.")

	if err := s.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	if s.PublicKeyPEM() == oldPEM {
		t.Fatal("RotateSigningKey kept the public key")
	}
	expect(t, userinfo(old.AccessToken.AccessToken), 400, "Invalid Tapis token.")
	expect(t, refresh(t, s, c1, old.RefreshToken.RefreshToken), 400, "Invalid refresh_token.")

	a := call(t, "GET", s.URL()+"/v3/tenants/"+s.TenantID(), nil, "")
	var rec struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(a.env.Result, &rec); err != nil || rec.PublicKey != s.PublicKeyPEM() {
		t.Errorf("tenant record's public_key = %.40q (%v); want the new key", rec.PublicKey, err)
	}
	fresh := password(t, s, c1, "testuser1", "pw1")
	verifyJWT(t, s.PublicKeyPEM(), fresh.AccessToken.AccessToken)
	expect(t, userinfo(fresh.AccessToken.AccessToken), 200, "User profile retrieved successfully.")
	mustTokens(t, refresh(t, s, c1, fresh.RefreshToken.RefreshToken))
}
