package tapistest_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// callbackServer records the query of every request it gets, as a CLI's
// loopback listener would.
type callbackServer struct {
	*httptest.Server
	mu      sync.Mutex
	queries []string
}

func newCallback(t *testing.T) *callbackServer {
	cb := &callbackServer{}
	cb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.queries = append(cb.queries, r.URL.RawQuery)
		cb.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<p>logged in</p>"))
	}))
	t.Cleanup(cb.Close)
	return cb
}

func (cb *callbackServer) last(t *testing.T) string {
	t.Helper()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.queries) == 0 {
		t.Fatal("the callback was never called")
	}
	return cb.queries[len(cb.queries)-1]
}

func exchange(t *testing.T, s *tapistest.Server, auth, code, redirectURI string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI})
	return postTokens(t, s, auth, string(body))
}

func TestAuthorizationCodeFlow(t *testing.T) {
	clk := &fixedClock{time.Now()}
	s := newTenant(t, tapistest.Config{Now: func() time.Time { return clk.t }})
	cb := newCallback(t)
	redirect := cb.URL + "/callback"
	if err := s.SetClientCallback("myclient1", redirect); err != nil {
		t.Fatal(err)
	}
	b := tapistest.NewBrowser("testuser1", "pw1")
	authURL := s.URL() + "/v3/oauth2/authorize?client_id=myclient1&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code&state=st-8f3a1c"
	p, err := b.Visit(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Body != "<p>logged in</p>" {
		t.Fatalf("last page = %+v; want the callback's", p)
	}
	q, _ := url.ParseQuery(cb.last(t))
	code := q.Get("code")
	if len(code) != 40 || q.Get("state") != "st-8f3a1c" {
		t.Fatalf("callback query = %v", q)
	}

	// Failed exchanges do not burn the code.
	expect(t, exchange(t, s, "", code, redirect), 400, "Invalid client credentials: None, None. session: <SecureCookieSession {}>")
	expect(t, exchange(t, s, basic("myclient1", "mykey1"), code, redirect+"/"), 400,
		"Invalid redirect_uri parameter: does not match callback URL registered with client.")
	expect(t, exchange(t, s, basic("myclient2", "mykey2"), code, "x"), 400,
		"Invalid redirect_uri parameter: does not match callback URL registered with client.")
	if err := s.SetClientCallback("myclient2", redirect); err != nil {
		t.Fatal(err)
	}
	expect(t, exchange(t, s, basic("myclient2", "mykey2"), code, redirect), 400, "authorization code not valid.")

	tr := mustTokens(t, exchange(t, s, basic("myclient1", "mykey1"), code, redirect))
	if tr.RefreshToken == nil || tr.AccessToken.ExpiresIn != 14400 {
		t.Fatalf("exchange = %+v; want a refresh token and 14400 s", tr)
	}
	c := claimsOf(t, tr.AccessToken.AccessToken)
	if c["tapis/grant_type"] != "authorization_code" || c["tapis/redirect_uri"] != redirect || c["tapis/username"] != "testuser1" {
		t.Errorf("claims = %v", c)
	}
	expect(t, exchange(t, s, basic("myclient1", "mykey1"), code, redirect), 400, "authorization code not valid.")

	// A logged-in browser skips the login page, not the consent page; an
	// absent state comes back as None, a state with a space and an &
	// comes back raw.
	if _, err := b.Visit(s.URL() + "/v3/oauth2/authorize?client_id=myclient1&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code"); err != nil {
		t.Fatal(err)
	}
	if raw := cb.last(t); !strings.HasSuffix(raw, "&state=None") {
		t.Errorf("callback without state = %q; want state=None", raw)
	}
	if _, err := b.Visit(s.URL() + "/v3/oauth2/authorize?client_id=myclient1&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code&state=" + url.QueryEscape("a b&c=d/+")); err != nil {
		t.Fatal(err)
	}
	raw := cb.last(t)
	if !strings.HasSuffix(raw, "&state=a%20b&c=d/+") {
		t.Errorf("callback = %q; want the state raw", raw)
	}

	// Codes live 600 s and 6 s of grace.
	q, _ = url.ParseQuery(raw)
	clk.t = clk.t.Add(607 * time.Second)
	expect(t, exchange(t, s, basic("myclient1", "mykey1"), q.Get("code"), redirect), 400, "authorization code has expired.")
}

func TestAuthorizeErrors(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	if err := s.SetClientCallback("myclient1", "http://localhost:8765/callback"); err != nil {
		t.Fatal(err)
	}
	base := s.URL() + "/v3/oauth2/authorize?"
	cases := []struct{ name, query, msg string }{
		{"no client", "redirect_uri=x&response_type=code", "Required query parameter client_id missing."},
		{"unknown client", "client_id=nope&redirect_uri=x&response_type=code", "Invalid client."},
		{"no redirect", "client_id=myclient1&response_type=code", "Required query parameter redirect_uri missing."},
		{"other port", "client_id=myclient1&redirect_uri=" + url.QueryEscape("http://localhost:8766/callback") + "&response_type=code",
			"redirect_uri query parameter does not match the registered callback_url for the client."},
		{"127.0.0.1", "client_id=myclient1&redirect_uri=" + url.QueryEscape("http://127.0.0.1:8765/callback") + "&response_type=code",
			"redirect_uri query parameter does not match the registered callback_url for the client."},
		{"bad response type", "client_id=myclient1&redirect_uri=" + url.QueryEscape("http://localhost:8765/callback") + "&response_type=id_token",
			"Required query parameter response_type missing or not supported."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, "GET", base+tc.query, nil, "")
			expect(t, a, 400, tc.msg)
			if sc := a.header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
				t.Errorf("Set-Cookie = %q; want the session cleared", sc)
			}
		})
	}
	s.SetGrantTypes([]string{"password", "refresh_token"})
	expect(t, call(t, "GET", base+"client_id=myclient1&redirect_uri="+url.QueryEscape("http://localhost:8765/callback")+"&response_type=code", nil, ""), 400,
		"The authorization_code grant type is not allowed for this tenant. Allowable grant types: ['password', 'refresh_token']")
	expect(t, call(t, "POST", base, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "approve=true"), 400,
		"username missing from session. Please login to continue.")
}

func TestWrongPasswordOnLoginPage(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	cb := newCallback(t)
	if err := s.SetClientCallback("myclient1", cb.URL+"/callback"); err != nil {
		t.Fatal(err)
	}
	b := tapistest.NewBrowser("testuser1", "wrong")
	p, err := b.Visit(s.URL() + "/v3/oauth2/authorize?client_id=myclient1&redirect_uri=" + url.QueryEscape(cb.URL+"/callback") + "&response_type=code&state=x")
	if err != nil {
		t.Fatal(err)
	}
	if p.PageError() != "Error: Invalid username/password combination." {
		t.Errorf("page error = %q (%s)", p.PageError(), p.Body)
	}
	if !strings.Contains(p.Body, `name="client_response_type" value=""`) {
		t.Errorf("re-rendered form keeps the response type: %s", p.Body)
	}
}

func TestDevicePages(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	start := call(t, "POST", s.URL()+"/v3/oauth2/device/code", map[string]string{"Content-Type": "application/json"}, `{"client_id":"myclient1"}`)
	var dc struct {
		DeviceCode, UserCode, VerificationURI string
	}
	var res map[string]string
	json.Unmarshal(start.env.Result, &res)
	dc.DeviceCode, dc.UserCode, dc.VerificationURI = res["device_code"], res["user_code"], res["verification_uri"]
	poll := func() answer {
		body, _ := json.Marshal(map[string]string{"grant_type": "device_code", "client_id": "myclient1", "device_code": dc.DeviceCode})
		return postTokens(t, s, "", string(body))
	}
	expect(t, poll(), 400, "device code not ready.")

	b := tapistest.NewBrowser("testuser2", "pw2")
	b.UserCode = strings.ToUpper(dc.UserCode[:1]) + strings.ToLower(dc.UserCode[1:])
	if b.UserCode == dc.UserCode {
		b.UserCode = strings.ToLower(dc.UserCode)
	}
	if b.UserCode != dc.UserCode {
		p, err := b.Visit(dc.VerificationURI)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != 400 || !strings.Contains(p.Body, "Invalid code.") {
			t.Errorf("wrong-case code = %d %s", p.Status, p.Body)
		}
	}
	b.UserCode, b.TTLDays = dc.UserCode, "2"
	p, err := b.Visit(dc.VerificationURI)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Body, "Device Code entered successfully") {
		t.Fatalf("last page = %d %s", p.Status, p.Body)
	}
	tr := mustTokens(t, poll())
	if tr.AccessToken.ExpiresIn != 172800 || tr.RefreshToken == nil {
		t.Errorf("device token = %+v; want 2 days and a refresh token", tr)
	}
	if u := claimsOf(t, tr.AccessToken.AccessToken)["tapis/username"]; u != "testuser2" {
		t.Errorf("username = %v; want the user who typed the code", u)
	}
	expect(t, poll(), 400, "device code not valid.")
	// The first refresh falls back to the tenant's default.
	if r := mustTokens(t, refresh(t, s, basic("myclient1", "mykey1"), tr.RefreshToken.RefreshToken)); r.AccessToken.ExpiresIn != 14400 {
		t.Errorf("refreshed expires_in = %d; want 14400", r.AccessToken.ExpiresIn)
	}
}

func TestBrowserUser(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	cb := newCallback(t)
	if err := s.SetClientCallback("myclient1", cb.URL+"/callback"); err != nil {
		t.Fatal(err)
	}
	s.SetBrowserUser("testuser1")
	resp, err := http.Get(s.URL() + "/v3/oauth2/authorize?client_id=myclient1&redirect_uri=" + url.QueryEscape(cb.URL+"/callback") + "&response_type=code&state=s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q, _ := url.ParseQuery(cb.last(t))
	mustTokens(t, exchange(t, s, basic("myclient1", "mykey1"), q.Get("code"), cb.URL+"/callback"))
}

func TestReasonPhrases(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET /v3/oauth2/tokens HTTP/1.1\r\nHost: x\r\n\r\nGET /v3/oauth2/hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var all []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			break
		}
	}
	for _, want := range []string{"HTTP/1.1 400 BAD REQUEST\r\n", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 500 INTERNAL SERVER ERROR\r\n"} {
		if !strings.Contains(string(all), want) {
			t.Errorf("answers lack %q:\n%s", want, all)
		}
	}
}

func TestWellKnownIsLive(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	s.SetGrantTypes([]string{"authorization_code", "refresh_token"})
	a := call(t, "GET", s.URL()+"/v3/oauth2/.well-known/oauth-authorization-server", nil, "")
	expect(t, a, 200, "OAuth server metadata retrieved successfully.")
	if !strings.Contains(string(a.env.Result), `"grant_types_supported":["authorization_code","refresh_token"]`) {
		t.Errorf("result = %s", a.env.Result)
	}
}
