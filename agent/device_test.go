package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// deviceWorld is an agent whose tenant "dev" has client c1 (key k1) owned
// by jdoe; the fake approves device codes after approveAfter on its clock,
// which runs offset from the wall clock.
func deviceWorld(t *testing.T, approveAfter, fakeOffset time.Duration, withClient bool) (*Agent, *tapistest.Server) {
	t.Helper()
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "pw"},
		DeviceApproveAfter: approveAfter, Now: func() time.Time { return time.Now().Add(fakeOffset) }})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	tn := &config.Tenant{Name: "dev", BaseURL: fake.URL()}
	if withClient {
		tn.ClientID, tn.ClientKey = "c1", "k1"
	}
	a := New(Options{Config: &config.Config{Tenants: map[string]*config.Tenant{"dev": tn}},
		Logger: slog.New(slog.DiscardHandler), DevicePoll: 20 * time.Millisecond, DeviceWait: 5 * time.Second})
	t.Cleanup(a.Close)
	return a, fake
}

func TestDeviceLoginApproved(t *testing.T) {
	a, _ := deviceWorld(t, 100*time.Millisecond, 0, true)
	ctx := context.Background()
	resp, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Device == nil || resp.Device.UserCode == "" || !strings.Contains(resp.Device.VerificationURI, "/v3/oauth2/device") {
		t.Fatalf("device answer = %+v", resp.Device)
	}
	if resp.Tenant.State != ipc.StateDevicePending || resp.Tenant.Device == nil {
		t.Errorf("tenant while pending = %+v; want device_pending with the code", resp.Tenant)
	}
	var done *ipc.LoginResponse
	for range 10 {
		r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Wait: true})
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if r.Device == nil {
			done = r
			break
		}
	}
	if done == nil || done.Tenant.State != ipc.StateReady || done.Tenant.Username != "jdoe" || done.Tenant.ClientID != "c1" {
		t.Fatalf("after approval: %+v; want ready for jdoe with client c1", done)
	}
	// The session refreshes with the client's key.
	if _, err := a.Token(ctx, "dev", 5*time.Hour); err == nil {
		t.Errorf("asking beyond the lifetime succeeded")
	}
	tok1, err := a.Token(ctx, "dev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s := a.session("dev")
	if _, err := s.refresh(ctx); err != nil {
		t.Fatalf("refresh of a device-login session: %v", err)
	}
	if tok2, _ := a.Token(ctx, "dev", time.Minute); tok2.AccessToken == tok1.AccessToken {
		t.Errorf("refresh did not replace the token")
	}
}

func TestDeviceLoginExpires(t *testing.T) {
	// The fake's clock runs 599 s behind: its 600 s codes expire a second
	// from now, and it keeps answering "not ready" as the real one does.
	a, _ := deviceWorld(t, 0, -599*time.Second, true)
	ctx := context.Background()
	if _, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true}); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 10 {
		var r *ipc.LoginResponse
		r, err = a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Wait: true})
		if err != nil || r.Device == nil {
			break
		}
	}
	if code(err) != ipc.CodeDeviceExpired || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("wait on an unapproved code: %v; want device_code_expired", err)
	}
	st := a.tenantStatus("dev")
	if st.State != ipc.StateLoginRequired || !strings.Contains(st.LastError, "expired") {
		t.Errorf("status after expiry = %+v; want login_required with the reason", st)
	}
}

func TestDeviceLoginCancel(t *testing.T) {
	a, fake := deviceWorld(t, 0, 0, true)
	ctx := context.Background()
	if _, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true}); err != nil {
		t.Fatal(err)
	}
	r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Cancel: true})
	if err != nil || r.Tenant.State != ipc.StateLoginRequired {
		t.Fatalf("cancel: %+v, %v; want login_required", r, err)
	}
	// Approving now changes nothing: the agent stopped polling.
	for _, c := range fake.UserCodes() {
		_ = fake.ApproveDevice(c)
	}
	if _, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Wait: true}); code(err) != ipc.CodeLoginRequired {
		t.Errorf("wait after cancel: %v; want login_required (abandoned)", err)
	}
	if st := a.tenantStatus("dev"); st.State != ipc.StateLoginRequired {
		t.Errorf("state after cancel = %s", st.State)
	}
}

func TestDeviceLoginNeedsClient(t *testing.T) {
	a, _ := deviceWorld(t, 0, 0, false)
	ctx := context.Background()
	cases := []struct {
		name string
		req  ipc.LoginRequest
		code string
		want []string
	}{
		{"no client", ipc.LoginRequest{Tenant: "dev", Device: true}, ipc.CodeClientNeeded, []string{"no OAuth client", "/v3/oauth2/webapp", "--token-stdin", "client_id"}},
		{"bad bootstrap token", ipc.LoginRequest{Tenant: "dev", Device: true, BootstrapToken: "garbage"}, ipc.CodeBadRequest, []string{"not a Tapis access token"}},
		{"no key", ipc.LoginRequest{Tenant: "dev", Device: true, ClientID: "c1"}, ipc.CodeBadRequest, []string{"key of client c1", "refresh", "--client-key-stdin"}},
		// A client Tapis refuses is not the user's password: bad_client.
		{"unknown client", ipc.LoginRequest{Tenant: "dev", Device: true, ClientID: "nope", ClientKey: "k"}, ipc.CodeBadClient, []string{"refused", "nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Login(ctx, &tc.req)
			ie, ok := err.(*ipc.Error)
			if !ok {
				t.Fatalf("Login = %v; want an *ipc.Error", err)
			}
			if ie.Code != tc.code {
				t.Errorf("Login error code = %s; want %s", ie.Code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(ie.Message+" "+ie.Hint, w) {
					t.Errorf("error %q (hint %q) lacks %q", ie.Message, ie.Hint, w)
				}
			}
		})
	}
	// With the key given in the request, the flow starts.
	r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, ClientID: "c1", ClientKey: "k1"})
	if err != nil || r.Device == nil {
		t.Fatalf("start with --client-id and key: %+v, %v", r, err)
	}
	// Logout abandons a pending flow.
	if _, err := a.Logout(ctx, "dev"); err != nil {
		t.Fatalf("logout of a pending flow: %v", err)
	}
	if st := a.tenantStatus("dev"); st.State != ipc.StateLoginRequired || st.Device != nil {
		t.Errorf("after logout: %+v", st)
	}
}

// Without a client, a token pasted from the Token Web App registers the
// host's client once; the device login then ends in a refreshable session
// whose logout deletes that client, and a second login reuses it.
func TestDeviceBootstrap(t *testing.T) {
	a, fake := deviceWorld(t, 0, 0, false)
	a.opts.Hostname = "login1"
	ctx := context.Background()
	webapp, _ := fake.IssueTokens("jdoe", "")
	login := func() {
		t.Helper()
		r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, BootstrapToken: webapp})
		if err != nil || r.Device == nil {
			t.Fatalf("bootstrap login: %+v, %v", r, err)
		}
		if err := fake.ApproveDeviceTTL(r.Device.UserCode, 48*time.Hour); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			r, err = a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Wait: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.Device == nil {
				break
			}
		}
		if r.Tenant.State != ipc.StateReady || !strings.HasPrefix(r.Tenant.ClientID, "tapis-agent-login1-") {
			t.Fatalf("after approval: %+v", r.Tenant)
		}
	}
	login()
	first := a.tenantStatus("dev").ClientID
	login()
	if got := a.tenantStatus("dev").ClientID; got != first {
		t.Errorf("second login uses client %s; want %s again", got, first)
	}
	if _, err := a.Token(ctx, "dev", 47*time.Hour); err != nil {
		t.Errorf("token of the 2-day login: %v", err)
	}
	st, err := a.Logout(ctx, "dev")
	if err != nil || st.ClientDeleted != first {
		t.Fatalf("logout = %+v, %v; want client %s deleted", st, err, first)
	}
	for _, c := range fake.Clients() {
		if c.Active && strings.HasPrefix(c.ClientID, "tapis-agent-") {
			t.Errorf("active agent client %s left after logout", c.ClientID)
		}
	}
}
