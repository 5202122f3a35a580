package agent

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// browserLogin runs one browser login to its end with a scripted browser
// and returns the page the agent's listener showed.
func browserLogin(t *testing.T, a *Agent, req ipc.LoginRequest) (*tapistest.Page, *ipc.LoginResponse) {
	t.Helper()
	ctx := context.Background()
	r, err := a.Login(ctx, &req)
	if err != nil || r.Browser == nil {
		t.Fatalf("browser login: %+v, %v", r, err)
	}
	if r.Tenant.State != ipc.StateBrowserPending || r.Tenant.Browser == nil {
		t.Errorf("tenant while pending = %+v", r.Tenant)
	}
	if !strings.Contains(r.Browser.URL, "redirect_uri=http%3A%2F%2F127.0.0.1%3A"+strconv.Itoa(r.Browser.Port)+"%2Fcallback") {
		t.Errorf("URL %s does not redirect to port %d", r.Browser.URL, r.Browser.Port)
	}
	p, err := tapistest.NewBrowser("jdoe", "pw").Visit(r.Browser.URL)
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Login(ctx, &ipc.LoginRequest{Tenant: req.Tenant, Browser: true, Wait: true, Flow: r.Browser.Flow})
	if err != nil {
		t.Fatalf("wait: %v (page %s)", err, p.Body)
	}
	return p, w
}

func TestBrowserLogin(t *testing.T) {
	a, fake := deviceWorld(t, 0, 0, false)
	a.opts.Hostname = "laptop"
	webapp, _ := fake.IssueTokens("jdoe", "")
	p, w := browserLogin(t, a, ipc.LoginRequest{Tenant: "dev", Browser: true, BootstrapToken: webapp})
	if p.Status != 200 || !strings.Contains(p.Body, "logged in to dev") {
		t.Errorf("callback page = %d %s", p.Status, p.Body)
	}
	if w.Tenant.State != ipc.StateReady || w.Tenant.Username != "jdoe" || w.Tenant.Browser != nil {
		t.Fatalf("after the browser: %+v", w.Tenant)
	}
	client := w.Tenant.ClientID
	// A refresh keeps it ready.
	if _, err := a.Token(context.Background(), "dev", 14399*time.Second); err != nil {
		t.Fatalf("token after a forced refresh: %v", err)
	}

	// Another program takes the client's port: the next login moves the
	// client's callback_url (with the session's token) and still works.
	var port int
	for _, c := range fake.Clients() {
		if c.ClientID == client {
			port = loopbackPort(c.CallbackURL)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("taking port %d: %v", port, err)
	}
	defer ln.Close()
	_, w = browserLogin(t, a, ipc.LoginRequest{Tenant: "dev", Browser: true})
	if w.Tenant.State != ipc.StateReady || w.Tenant.ClientID != client {
		t.Fatalf("login with the port taken: %+v", w.Tenant)
	}
	for _, c := range fake.Clients() {
		if c.ClientID == client && loopbackPort(c.CallbackURL) == port {
			t.Errorf("callback_url still on the taken port %d", port)
		}
	}

	// Two logins at once, on one listener, each finish.
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	ctx := context.Background()
	rs := make([]*ipc.LoginResponse, 2)
	for i := range rs {
		r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Browser: true})
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	if rs[0].Browser.Port != rs[1].Browser.Port {
		t.Errorf("concurrent logins on ports %d and %d; want one", rs[0].Browser.Port, rs[1].Browser.Port)
	}
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := tapistest.NewBrowser("jdoe", "pw").Visit(r.Browser.URL)
			if err != nil || p.Status != 200 {
				errs <- "visit: " + p.Body
				return
			}
			if _, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Browser: true, Wait: true, Flow: r.Browser.Flow}); err != nil {
				errs <- err.Error()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A redirect with a state of no login in progress gets nothing.
func TestBrowserStateChecked(t *testing.T) {
	a, fake := deviceWorld(t, 0, 0, false)
	webapp, _ := fake.IssueTokens("jdoe", "")
	r, err := a.Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Browser: true, BootstrapToken: webapp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := tapistest.NewBrowser("jdoe", "pw").Visit("http://127.0.0.1:" + strconv.Itoa(r.Browser.Port) + "/callback?code=abc&state=0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 400 || !strings.Contains(p.Body, "does not belong to a login in progress") {
		t.Errorf("forged callback = %d %s", p.Status, p.Body)
	}
	if st := a.tenantStatus("dev"); st.State != ipc.StateBrowserPending {
		t.Errorf("state after a forged callback = %s; want browser_pending", st.State)
	}
	if _, err := a.Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Browser: true, Cancel: true, Flow: r.Browser.Flow}); err != nil {
		t.Fatal(err)
	}
	if st := a.tenantStatus("dev"); st.State != ipc.StateLoginRequired {
		t.Errorf("state after cancel = %s", st.State)
	}
}

// Agents on two login nodes each keep their own client; logging out on
// one never deletes the other's, and a login deletes only leftovers of
// its own host.
func TestHostClientsPerHost(t *testing.T) {
	_, fake := deviceWorld(t, 0, 0, false)
	ctx := context.Background()
	newAgent := func(host string) *Agent {
		a := New(Options{Config: &config.Config{Tenants: map[string]*config.Tenant{"dev": {Name: "dev", BaseURL: fake.URL(), Username: "jdoe"}}},
			Hostname: host})
		t.Cleanup(a.Close)
		return a
	}
	// A leftover of login1 from an agent that crashed.
	if err := fake.AddClient("jdoe", "tapis-agent-login1-0badc0de", "k"); err != nil {
		t.Fatal(err)
	}
	a1, a2 := newAgent("login1"), newAgent("login1-2")
	for _, a := range []*Agent{a1, a2} {
		if _, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Password: "pw"}); err != nil {
			t.Fatal(err)
		}
	}
	active := func() map[string]bool {
		m := map[string]bool{}
		for _, c := range fake.Clients() {
			if c.Active && strings.HasPrefix(c.ClientID, "tapis-agent-") {
				m[c.ClientID] = true
			}
		}
		return m
	}
	c1, c2 := a1.tenantStatus("dev").ClientID, a2.tenantStatus("dev").ClientID
	if got := active(); len(got) != 2 || !got[c1] || !got[c2] || c1 == c2 {
		t.Fatalf("active clients %v; want %s and %s", got, c1, c2)
	}
	if !strings.HasPrefix(c2, "tapis-agent-login1-2-") {
		t.Errorf("login1-2's client is %s", c2)
	}
	if st, err := a1.Logout(ctx, "dev"); err != nil || st.ClientDeleted != c1 {
		t.Fatalf("logout on login1 = %+v, %v", st, err)
	}
	if got := active(); len(got) != 1 || !got[c2] {
		t.Errorf("after login1's logout: %v; want only %s", got, c2)
	}
}
