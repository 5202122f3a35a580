package tapis_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestGrantTypes(t *testing.T) {
	s, c, _ := newFake(t)
	got, err := c.GrantTypes(ctxT(t))
	if err != nil || !slices.Equal(got, []string{"password", "implicit", "authorization_code", "refresh_token", "device_code"}) {
		t.Fatalf("GrantTypes = %v, %v; want the five defaults", got, err)
	}
	s.SetGrantTypes([]string{"authorization_code", "refresh_token", "device_code"})
	// Without the metadata document, the bogus grant's error lists them.
	s.Inject(tapistest.RouteWellKnown, tapistest.Fault500(1))
	got, err = c.GrantTypes(ctxT(t))
	if err != nil || !slices.Equal(got, []string{"authorization_code", "refresh_token", "device_code"}) {
		t.Fatalf("GrantTypes without .well-known = %v, %v", got, err)
	}
}

func TestClientsAndCodeExchange(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu = make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu <- r.URL.RawQuery
		w.Write([]byte("ok"))
	}))
	defer cb.Close()
	oc, err := c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{ID: "host-client", CallbackURL: "http://127.0.0.1:1/callback"})
	if err != nil || oc.CallbackURL != "http://127.0.0.1:1/callback" {
		t.Fatalf("CreateClient = %+v, %v", oc, err)
	}
	if err := c.SetCallback(ctx, tok.AccessToken, "host-client", cb.URL+"/callback"); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListClients(ctx, tok.AccessToken, false)
	if err != nil {
		t.Fatal(err)
	}
	var found *tapis.OAuthClient
	for _, o := range list {
		if o.ID == "host-client" {
			found = o
		}
	}
	if found == nil || found.Key != oc.Key || found.CallbackURL != cb.URL+"/callback" || !found.Active {
		t.Fatalf("ListClients = %+v; want host-client with its key and new callback", list)
	}
	if err := c.DeleteClient(ctx, tok.AccessToken, "host-client"); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.ListClients(ctx, tok.AccessToken, false); slices.ContainsFunc(list, func(o *tapis.OAuthClient) bool { return o.ID == "host-client" }) {
		t.Errorf("a deleted client is listed without show_inactive")
	}
	list, _ = c.ListClients(ctx, tok.AccessToken, true)
	if !slices.ContainsFunc(list, func(o *tapis.OAuthClient) bool { return o.ID == "host-client" && !o.Active && o.Key == oc.Key }) {
		t.Errorf("show_inactive lists %+v; want the deleted client with its key", list)
	}

	// A deleted client still runs the whole browser flow.
	b := tapistest.NewBrowser("jdoe", "pw")
	if _, err := b.Visit(s.URL() + "/v3/oauth2/authorize?client_id=host-client&response_type=code&state=s1&redirect_uri=" + url.QueryEscape(cb.URL+"/callback")); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(<-mu)
	creds := tapis.ClientCredentials{ID: "host-client", Key: oc.Key}
	if _, err := c.ExchangeCode(ctx, secret.Value(q.Get("code")), cb.URL+"/callback/", creds); !tapis.IsDefinitive(err) {
		t.Fatalf("exchange with another redirect_uri = %v; want a definitive error", err)
	}
	got, err := c.ExchangeCode(ctx, secret.Value(q.Get("code")), cb.URL+"/callback", creds)
	if err != nil || got.RefreshToken.IsZero() {
		t.Fatalf("ExchangeCode = %+v, %v", got, err)
	}
}

// dialer makes every connection fail with err, as the network would.
func dialerClient(err error) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) { return nil, err }
	return &http.Client{Transport: tr}
}

func TestDescribe(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)

	s.Inject(tapistest.RouteTokens, tapistest.Fault{Status: 502, ContentType: "text/plain", Body: "upstream connect error or disconnect/reset before headers\n", Times: 1})
	_, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
	want := s.URL() + " answered 502 BAD GATEWAY with text/plain, not a Tapis answer: upstream connect error or disconnect/reset before headers"
	if got := tapis.Describe(err); got != want {
		t.Errorf("Describe(502) = %q; want %q", got, want)
	}
	_, err = c.PasswordGrant(ctx, "jdoe", "wrong", nil)
	if got, want := tapis.Describe(err), s.URL()+" answered 400 BAD REQUEST: Invalid username/password combination."; got != want {
		t.Errorf("Describe(400) = %q; want %q", got, want)
	}

	// Refused: a port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	refused, _ := tapis.New("http://" + addr)
	_, err = refused.GrantTypes(ctx)
	if tapis.Fault(err) != tapis.FaultRefused || tapis.Describe(err) != "nothing answers at http://"+addr+": the connection was refused" {
		t.Errorf("refused: Fault %v, Describe %q", tapis.Fault(err), tapis.Describe(err))
	}

	// Black-holed: connects, never answers.
	hole, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	slow, _ := tapis.New("http://"+hole.Addr().String(), tapis.WithTimeout(300*time.Millisecond))
	_, err = slow.GrantTypes(ctx)
	if tapis.Fault(err) != tapis.FaultTimeout || !strings.HasSuffix(tapis.Describe(err), "did not answer within 300ms") {
		t.Errorf("black hole: Fault %v, Describe %q", tapis.Fault(err), tapis.Describe(err))
	}

	cases := []struct {
		name  string
		err   error
		fault tapis.NetFault
		want  string
	}{
		{"unknown host", &net.DNSError{Err: "no such host", Name: "desginsafe.tapis.io", IsNotFound: true}, tapis.FaultUnknownHost,
			"no tenant answers at https://desginsafe.tapis.io: its host name is not known"},
		{"no route", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "x"}}, tapis.FaultNoRoute,
			"https://desginsafe.tapis.io cannot be reached from here: no route to it (is the network up?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := tapis.New("https://desginsafe.tapis.io", tapis.WithHTTPClient(dialerClient(tc.err)))
			_, err := c.GrantTypes(ctx)
			if f := tapis.Fault(err); f != tc.fault {
				t.Errorf("Fault = %v; want %v (%v)", f, tc.fault, err)
			}
			if got := tapis.Describe(err); got != tc.want {
				t.Errorf("Describe = %q; want %q", got, tc.want)
			}
		})
	}
}
