package tapistest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestStatusFaults(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	c1 := basic("myclient1", "mykey1")
	first := password(t, s, c1, "testuser1", "pw1")

	// Only the refresh grant fails, once, with the "try again later" row.
	s.Inject(tapistest.RouteTokens, func() tapistest.Fault {
		f := tapistest.FaultTryLater(1)
		f.GrantType = "refresh_token"
		return f
	}())
	password(t, s, c1, "testuser1", "pw1")
	a := refresh(t, s, c1, first.RefreshToken.RefreshToken)
	expect(t, a, 400, "Failure to generate an access token; please try again later.")
	if a.env.Status != "error" || string(a.env.Result) != "null" {
		t.Errorf("try-later envelope = %s", a.raw)
	}
	mustTokens(t, refresh(t, s, c1, first.RefreshToken.RefreshToken))

	cases := []struct {
		name      string
		fault     tapistest.Fault
		status    int
		ctype     string
		bodyHas   string
		bodyEqual string
	}{
		{"flask 500", tapistest.Fault500(1), 500, "text/html; charset=utf-8", "Internal Server Error", tapistest.FlaskHTML500},
		{"json 503", tapistest.Fault{Status: 503, Times: 1}, 503, "application/json", "", tapistest.EnvelopeError("Service Unavailable")},
		{"custom body", tapistest.Fault{Status: 502, Body: "<html>bad gateway</html>", ContentType: "text/html", Times: 1}, 502, "text/html", "", "<html>bad gateway</html>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Inject(tapistest.RouteUserinfo, tc.fault)
			a := call(t, "GET", s.URL()+"/v3/oauth2/userinfo", nil, "")
			if a.status != tc.status || a.ctype != tc.ctype || string(a.raw) != tc.bodyEqual {
				t.Errorf("answer = %d %q %q; want %d %q %q", a.status, a.ctype, a.raw, tc.status, tc.ctype, tc.bodyEqual)
			}
			// Consumed after one use.
			expect(t, call(t, "GET", s.URL()+"/v3/oauth2/userinfo", nil, ""), 400, "No Tapis access token found in the request.")
		})
	}
}

func TestDropFault(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	s.Inject(tapistest.RouteTenants, tapistest.Fault{Drop: true})
	resp, err := httpClient.Get(s.URL() + "/v3/tenants")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request answered %d", resp.StatusCode)
	}
	if s.Calls(tapistest.RouteTenants) < 1 {
		t.Errorf("Calls(RouteTenants) = %d; want at least 1", s.Calls(tapistest.RouteTenants))
	}
	s.ClearFaults()
	expect(t, call(t, "GET", s.URL()+"/v3/tenants", nil, ""), 200, "Tenants retrieved successfully.")
}

func TestHangFaultOverNetwork(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	s.Inject(tapistest.RouteTokens, tapistest.Fault{Hang: true, GrantType: "refresh_token"})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/v3/oauth2/tokens", strings.NewReader(`{"grant_type":"refresh_token"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := httpClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("hanging request answered %d", resp.StatusCode)
	}
	// Other grants pass.
	password(t, s, "", "testuser1", "pw1")
}

func TestDripOverNetwork(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	want := call(t, "GET", s.URL()+"/v3/oauth2/hello", nil, "").raw
	s.Inject("/v3/oauth2/hello", tapistest.Fault{DripEvery: 5 * time.Millisecond, Times: 1})
	resp, err := httpClient.Get(s.URL() + "/v3/oauth2/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first read gets less than the whole body.
	buf := make([]byte, len(want))
	n, err := resp.Body.Read(buf)
	if err != nil || n >= len(want) {
		t.Errorf("first read = %d bytes, %v; want a partial body", n, err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]) + string(rest); got != string(want) {
		t.Errorf("dripped body = %q; want %q", got, want)
	}
}

func TestLastHeaderAndCalls(t *testing.T) {
	s := newTenant(t, tapistest.Config{})
	if h := s.LastHeader(tapistest.RouteUserinfo); h != nil {
		t.Errorf("LastHeader before any request = %v; want nil", h)
	}
	call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Tracking-ID": "one"}, "")
	call(t, "GET", s.URL()+"/v3/oauth2/userinfo", map[string]string{"X-Tapis-Tracking-ID": "two"}, "")
	if got := s.LastHeader(tapistest.RouteUserinfo).Get("X-Tapis-Tracking-ID"); got != "two" {
		t.Errorf("LastHeader tracking id = %q; want two", got)
	}
	call(t, "GET", s.URL()+"/v3/oauth2/clients/x", nil, "")
	call(t, "GET", s.URL()+"/v3/oauth2/clients", nil, "")
	if got := s.Calls(tapistest.RouteClients); got != 2 {
		t.Errorf("Calls(RouteClients) = %d; want 2", got)
	}
	if got := s.Calls(tapistest.RouteUserinfo); got != 2 {
		t.Errorf("Calls(RouteUserinfo) = %d; want 2", got)
	}
	if got := s.MaxInFlight(tapistest.RouteUserinfo); got != 1 {
		t.Errorf("MaxInFlight(RouteUserinfo) = %d; want 1 for sequential calls", got)
	}
}
