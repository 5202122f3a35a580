package e2e

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// activeAgentClients returns the ids of the active OAuth clients the
// agent registered (any host).
func activeAgentClients(e *env) []string {
	var ids []string
	for _, c := range e.fake.Clients() {
		if c.Active && strings.HasPrefix(c.ClientID, "tapis-agent-") {
			ids = append(ids, c.ClientID)
		}
	}
	return ids
}

// TestClientCycles: logins, stops, restarts and logouts never leave more
// than one active client of the agent for this host upstream, and the
// last logout leaves none.
func TestClientCycles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	for i := range 20 {
		e.startAgent()
		e.login()
		if i%3 == 2 {
			r := e.mustToken("", "logout", "dev")
			if !strings.Contains(r.stderr, "deleted the OAuth client tapis-agent-") {
				t.Errorf("cycle %d: logout says %q; want it to name the deleted client", i, r.stderr)
			}
		}
		e.stopAgent()
		if ids := activeAgentClients(e); len(ids) > 1 {
			t.Fatalf("cycle %d: active agent clients %v; want at most one", i, ids)
		}
	}
	e.startAgent()
	e.login()
	e.mustToken("", "logout", "dev")
	e.stopAgent()
	if ids := activeAgentClients(e); len(ids) != 0 {
		t.Errorf("after the last logout: active agent clients %v; want none", ids)
	}
	if n := len(e.fake.Clients()); n > 8 {
		t.Errorf("%d clients registered in 21 logins with 7 logouts; want one per logout and one more", n)
	}
}

var authorizeRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/v3/oauth2/authorize\?\S+`)

// startBrowserLogin starts tapis-token login dev --browser in an SSH
// session without a display, with the Token Web App's token on stdin,
// and returns it with the address it shows.
func startBrowserLogin(t *testing.T, e *env) (*bg, string) {
	t.Helper()
	webapp, _ := e.fake.IssueTokens("jdoe", "")
	b := e.tokenBgEnv(webapp+"\n", []string{"SSH_CONNECTION=10.0.0.1 50000 10.0.0.2 22", "USER=jdoe"},
		"login", "dev", "--browser", "--token-stdin")
	var url string
	e.waitFor("the login address", 20*time.Second, func() bool {
		url = authorizeRE.FindString(e.out(b))
		return url != ""
	})
	return b, url
}

// TestBrowserLoginEndToEnd: a browser login with a scripted browser that
// follows the redirects with its own cookie jar; then with the client's
// port taken by another program; then two at once. Each ends ready and
// survives a refresh.
func TestBrowserLoginEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{AccessTTL: 3 * time.Second})
	e.startAgent()

	b, url := startBrowserLogin(t, e)
	p, err := tapistest.NewBrowser("jdoe", "secret").Visit(url)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || !strings.Contains(p.Body, "logged in to dev") {
		t.Errorf("the agent's page = %d %s", p.Status, p.Body)
	}
	code, stderr := e.wait(b, 30*time.Second)
	if code != 0 || !strings.Contains(stderr, "logged in to dev as jdoe with the browser") {
		t.Fatalf("login --browser = %d\n%s", code, stderr)
	}
	m := regexp.MustCompile(`ssh -L (\d+):127\.0\.0\.1:(\d+) jdoe@`).FindStringSubmatch(stderr)
	if m == nil || m[1] != m[2] || !strings.Contains(url, "127.0.0.1%3A"+m[1]+"%2Fcallback") {
		t.Errorf("no ssh -L line for the redirect's port in:\n%s", stderr)
	}
	waitRefreshed(t, e)

	// Another program holds the client's port: the agent moves the
	// client's callback_url to a new port and the login still works.
	port, _ := strconv.Atoi(m[1])
	ln, err := net.Listen("tcp", "127.0.0.1:"+m[1])
	if err != nil {
		t.Fatalf("taking port %d: %v", port, err)
	}
	defer ln.Close()
	b, url = startBrowserLogin(t, e)
	if strings.Contains(url, "127.0.0.1%3A"+m[1]+"%2F") {
		t.Fatalf("second login still redirects to the taken port %d: %s", port, url)
	}
	if _, err := tapistest.NewBrowser("jdoe", "secret").Visit(url); err != nil {
		t.Fatal(err)
	}
	if code, stderr := e.wait(b, 30*time.Second); code != 0 {
		t.Fatalf("login with the port taken = %d\n%s", code, stderr)
	}
	waitRefreshed(t, e)

	// Two logins at once.
	b1, url1 := startBrowserLogin(t, e)
	b2, url2 := startBrowserLogin(t, e)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, u := range []string{url2, url1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := tapistest.NewBrowser("jdoe", "secret").Visit(u)
			if err == nil && p.Status != 200 {
				err = fmt.Errorf("page %d %s", p.Status, p.Body)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, b := range []*bg{b1, b2} {
		if code, stderr := e.wait(b, 30*time.Second); code != 0 {
			t.Errorf("concurrent login = %d\n%s", code, stderr)
		}
	}
	waitRefreshed(t, e)
	if ids := activeAgentClients(e); len(ids) != 1 {
		t.Errorf("active agent clients %v; want one", ids)
	}
}

// waitRefreshed waits until the session of dev is ready after one more
// refresh than now, and a token is served.
func waitRefreshed(t *testing.T, e *env) {
	t.Helper()
	before := e.status("dev")
	if before.State != ipc.StateReady {
		t.Fatalf("state after login = %s; want ready", before.State)
	}
	e.waitFor("a refresh", 20*time.Second, func() bool {
		s := e.status("dev")
		return s.State == ipc.StateReady && s.RefreshCount > before.RefreshCount
	})
	e.mustToken("", "dev")
}

// TestDeviceBootstrap: without any client, the device login asks for a
// token from the Token Web App, registers the host's client with it, and
// ends ready; a refresh keeps it so; logout deletes the client.
func TestDeviceBootstrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{AccessTTL: 3 * time.Second})
	e.startAgent()
	webapp, _ := e.fake.IssueTokens("jdoe", "")
	b := e.tokenBgEnv(webapp+"\n", nil, "login", "dev", "--device", "--token-stdin")
	e.waitFor("a device code", 20*time.Second, func() bool { return len(e.fake.UserCodes()) == 1 })
	codes := e.fake.UserCodes()
	// The user chose 0 days: the tenant's default, so that the first
	// refresh comes soon.
	if err := e.fake.ApproveDeviceTTL(codes[0], 0); err != nil {
		t.Fatal(err)
	}
	code, stderr := e.wait(b, 30*time.Second)
	if code != 0 {
		t.Fatalf("login --device = %d\n%s", code, stderr)
	}
	for _, want := range []string{"/v3/oauth2/webapp", codes[0], "how many days", "logged in to dev as jdoe with the device code"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("login --device said nothing of %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, webapp) {
		t.Error("the pasted token was echoed")
	}
	waitRefreshed(t, e)
	ids := activeAgentClients(e)
	if len(ids) != 1 {
		t.Fatalf("active agent clients %v; want one", ids)
	}
	r := e.mustToken("", "logout", "dev")
	if !strings.Contains(r.stderr, ids[0]) {
		t.Errorf("logout says %q; want it to name client %s", r.stderr, ids[0])
	}
	if ids := activeAgentClients(e); len(ids) != 0 {
		t.Errorf("after logout: %v", ids)
	}
}

// TestLoginUnreachable: a name DNS does not know, a refused port and an
// address that never answers are each reported before any prompt, within
// 10 s, with what to check.
func TestLoginUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	refusedAddr := refused.Addr().String()
	refused.Close()
	hole, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hole.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	e.writeConfig(fmt.Sprintf(`[tenants.designsafe]
base_url = "https://designsafe.tapis.io"
[tenants.desginsafe]
base_url = "https://desginsafe.invalid"
username = "jdoe"
[tenants.refused]
base_url = "http://%s"
username = "jdoe"
[tenants.hole]
base_url = "http://%s"
username = "jdoe"
`, refusedAddr, hole.Addr()))
	e.startAgent()
	_, dnsErr := net.LookupHost("desginsafe.invalid")
	var de *net.DNSError
	dnsWorks := errors.As(dnsErr, &de) && de.IsNotFound
	cases := []struct {
		tenant string
		code   int
		want   string
	}{
		{"refused", 5, "nothing answers at http://" + refusedAddr + ": the connection was refused"},
		{"hole", 5, "http://" + hole.Addr().String() + " did not answer within 7s"},
	}
	if dnsWorks {
		cases = append(cases, struct {
			tenant string
			code   int
			want   string
		}{"desginsafe", 1, "no tenant answers at https://desginsafe.invalid: check the name (did you mean designsafe?)"})
	}
	for _, tc := range cases {
		t.Run(tc.tenant, func(t *testing.T) {
			start := time.Now()
			// No --password-stdin: a prompt would need a terminal, and
			// the answer must come before any.
			r := e.token("", "login", tc.tenant)
			took := time.Since(start)
			if took > 10*time.Second {
				t.Errorf("login %s took %s; want the answer within 10s", tc.tenant, took)
			}
			if r.code != tc.code || !strings.Contains(r.stderr, "tapis-token: "+tc.want+"\n") {
				t.Errorf("login %s = %d\n%s\nwant exit %d and %q", tc.tenant, r.code, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stderr, "Password") || strings.Contains(r.stderr, "terminal") {
				t.Errorf("login %s asked for a secret first:\n%s", tc.tenant, r.stderr)
			}
			if tc.tenant == "hole" && !strings.Contains(r.stderr, "waiting for http://"+hole.Addr().String()+" to answer") {
				t.Errorf("the wait was not shown:\n%s", r.stderr)
			}
		})
	}
}

// TestLoginOffersAllowedFlows: a tenant without the password grant is
// told so before any prompt, with the logins it allows.
func TestLoginOffersAllowedFlows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{GrantTypes: []string{"authorization_code", "refresh_token", "device_code"}})
	e.startAgent()
	r := e.token("secret\n", "login", "dev", "--password-stdin")
	if r.code != 1 || !strings.Contains(r.stderr, "tapis-token: dev does not allow logging in with a password here\n") ||
		!strings.Contains(r.stderr, "tapis-token login dev --browser (the browser), or tapis-token login dev --device (a device code)") {
		t.Errorf("password login on a tenant without the grant = %d\n%s", r.code, r.stderr)
	}
	if n := e.fake.GrantCalls("password"); n != 0 {
		t.Errorf("password grants sent = %d; want none", n)
	}
}
