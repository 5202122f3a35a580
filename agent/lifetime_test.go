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

// deviceSession logs dev in with a device code the fake approves with an
// access TTL of ttl, as a user typing that many days would. The agent and
// the fake share clk.
func deviceSession(t *testing.T, clk *clock, ttl time.Duration) (*Agent, *tapistest.Server) {
	t.Helper()
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "pw"}, Now: clk.Now})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Config: &config.Config{Tenants: map[string]*config.Tenant{"dev": {
		Name: "dev", BaseURL: fake.URL(), ClientID: "c1", ClientKey: "k1"}}},
		Logger: slog.New(slog.DiscardHandler), Now: clk.Now, DevicePoll: 10 * time.Millisecond, DeviceWait: 5 * time.Second})
	t.Cleanup(a.Close)
	ctx := context.Background()
	resp, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.ApproveDeviceTTL(resp.Device.UserCode, ttl); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r, err := a.Login(ctx, &ipc.LoginRequest{Tenant: "dev", Device: true, Wait: true})
		if err != nil {
			t.Fatalf("waiting for the device login: %v", err)
		}
		if r.Device == nil {
			return a, fake
		}
	}
	t.Fatal("the device login never ended")
	return nil, nil
}

// TestDeviceTokenNeverReplacedByShorter: a device-code token of a day,
// asked for 23h59m59s a few seconds later. A refresh gives only the
// tenant's 4 h, so the agent keeps serving the day-long token (and the
// rotated refresh token), and refuses the same question again without
// asking upstream.
func TestDeviceTokenNeverReplacedByShorter(t *testing.T) {
	clk := &clock{}
	a, fake := deviceSession(t, clk, 24*time.Hour)
	ctx := context.Background()
	first, err := a.Token(ctx, "dev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if life := time.Until(first.ExpiresAt); life < 23*time.Hour {
		t.Fatalf("device token lives %v; want a day", life)
	}
	clk.Advance(10 * time.Second)

	ask := 24*time.Hour - time.Second
	if _, err := a.Token(ctx, "dev", ask); code(err) != ipc.CodeUnsatisfiable {
		t.Fatalf("Token(%v) = %v; want %s", ask, err, ipc.CodeUnsatisfiable)
	}
	refreshes := fake.GrantCalls("refresh_token")
	if refreshes != 1 {
		t.Errorf("refreshes = %d; want 1: the device token does not tell what a refresh gives", refreshes)
	}
	got, err := a.Token(ctx, "dev", 23*time.Hour)
	if err != nil {
		t.Fatalf("Token(23h) after the refresh: %v; want the day-long token still", err)
	}
	if got.AccessToken != first.AccessToken || !got.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("the refresh replaced the day-long token (expiring %v) by one expiring %v", first.ExpiresAt, got.ExpiresAt)
	}
	_, err = a.Token(ctx, "dev", ask)
	if code(err) != ipc.CodeUnsatisfiable || !strings.Contains(err.Error(), "issues tokens that live 4h") {
		t.Errorf("Token(%v) again = %v; want %s naming the 4h refreshes", ask, err, ipc.CodeUnsatisfiable)
	}
	if n := fake.GrantCalls("refresh_token"); n != refreshes {
		t.Errorf("refreshes after asking again = %d; want %d: no refresh can satisfy it", n, refreshes)
	}
	// The refresh rotated the refresh token, which the session keeps.
	st := a.tenantStatus("dev")
	if st.State != ipc.StateReady || st.RefreshCount != 1 {
		t.Errorf("status = %s with refresh count %d; want ready with 1", st.State, st.RefreshCount)
	}
	// Once a refresh gives a longer token, it replaces the old one.
	clk.Advance(22 * time.Hour)
	late, err := a.Token(ctx, "dev", 3*time.Hour)
	if err != nil {
		t.Fatalf("Token(3h) with 2 h left: %v", err)
	}
	if late.AccessToken == first.AccessToken || !late.ExpiresAt.After(first.ExpiresAt) {
		t.Errorf("with 2 h left, a refresh to 4 h did not replace the token")
	}
}

// TestFirstTokenTellsTheLifetime: a password login's token has the
// tenant's lifetime, so asking more than that is refused at once, without
// a refresh.
func TestFirstTokenTellsTheLifetime(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	fake := w.fakes["alpha"]
	_, err := w.a.Token(context.Background(), "alpha", 5*time.Hour)
	if code(err) != ipc.CodeUnsatisfiable {
		t.Fatalf("Token(5h) of 4h tokens = %v; want %s", err, ipc.CodeUnsatisfiable)
	}
	if n := fake.GrantCalls("refresh_token"); n != 0 {
		t.Errorf("refreshes = %d; want 0", n)
	}
}

func TestUnsatisfiableSaysWhy(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	s := &session{name: "dev"}
	cases := []struct {
		name     string
		t        *tokenSet
		minValid time.Duration
		has      []string
		hasNot   string
	}{
		{"beyond the lifetime", &tokenSet{upstream: 4 * time.Hour, issuedAt: now.Add(-3 * time.Hour), expiresAt: now.Add(time.Hour)}, 5 * time.Hour,
			[]string{"dev issues tokens that live 4h", "--min-valid 3h36m"}, "current one"},
		{"beyond a longer current token", &tokenSet{upstream: 4 * time.Hour, issuedAt: now.Add(-time.Hour), expiresAt: now.Add(23 * time.Hour)}, 24 * time.Hour,
			[]string{"issues tokens that live 4h", "the current one is valid for 23h", "--min-valid 20h42m"}, ""},
		{"aged on the way", &tokenSet{upstream: 30 * time.Second, issuedAt: now.Add(-2 * time.Second), expiresAt: now.Add(28 * time.Second)}, 29 * time.Second,
			[]string{"even the token just refreshed is valid for only 28s", "live 30s"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.unsatisfiable(tc.t, now, tc.minValid)
			if code(err) != ipc.CodeUnsatisfiable {
				t.Fatalf("unsatisfiable = %v; want %s", err, ipc.CodeUnsatisfiable)
			}
			text := err.Error() + " " + err.(*ipc.Error).Hint
			for _, h := range tc.has {
				if !strings.Contains(text, h) {
					t.Errorf("%q lacks %q", text, h)
				}
			}
			if tc.hasNot != "" && strings.Contains(text, tc.hasNot) {
				t.Errorf("%q has %q", text, tc.hasNot)
			}
		})
	}
}
