package tapis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// fakeClock is a settable clock for the fake server.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newFake starts a fake tenant with user jdoe/pw and client cid/ckey owned
// by jdoe, and a Client for it.
func newFake(t *testing.T, opts ...tapis.Option) (*tapistest.Server, *tapis.Client, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	s := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "pw", "asmith": "pw2"}, Now: clock.Now})
	if err := s.AddClient("jdoe", "cid", "ckey"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClient("asmith", "cid2", "ckey2"); err != nil {
		t.Fatal(err)
	}
	c, err := tapis.New(s.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, clock
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var cred = tapis.ClientCredentials{ID: "cid", Key: "ckey"}

func claimsOf(t *testing.T, s secret.Value) jwt.Claims {
	t.Helper()
	c, err := jwt.Decode(s.Reveal())
	if err != nil {
		t.Fatalf("jwt.Decode: %v", err)
	}
	return c
}

func TestFakePasswordGrant(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)

	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
	if err != nil {
		t.Fatalf("PasswordGrant without client: %v", err)
	}
	if !tok.RefreshToken.IsZero() || tok.RefreshJTI != "" || !tok.RefreshExpiresAt.IsZero() {
		t.Errorf("without client: got a refresh token %+v; want none", tok)
	}
	ac := claimsOf(t, tok.AccessToken)
	if ac.Username() != "jdoe" || ac.String("tapis/tenant_id") != "dev" || ac.TokenType() != "access" || ac.JTI() != tok.AccessJTI {
		t.Errorf("access claims %v do not match jdoe@dev, jti %s", ac, tok.AccessJTI)
	}
	if v, present := ac["tapis/client_id"]; !present || v != nil {
		t.Errorf("tapis/client_id = %v (present %v); want null", v, present)
	}
	if _, ok := ac.RefreshCount(); ok {
		t.Error("client-less access token has tapis/refresh_count")
	}
	if tok.AccessTTL != tapistest.DefaultAccessTTL {
		t.Errorf("AccessTTL = %v; want %v", tok.AccessTTL, tapistest.DefaultAccessTTL)
	}
	exp, _ := ac.Expiry()
	if !tok.AccessExpiresAt.Equal(exp) {
		t.Errorf("AccessExpiresAt = %v; want the JWT exp %v, which services check", tok.AccessExpiresAt, exp)
	}
	if h := s.LastHeader(tapistest.RouteTokens); h.Get("Authorization") != "" || h.Get("X-Tapis-Token") != "" {
		t.Errorf("client-less grant sent Authorization %q, X-Tapis-Token %q", h.Get("Authorization"), h.Get("X-Tapis-Token"))
	}

	tok, err = c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatalf("PasswordGrant with client: %v", err)
	}
	rc := claimsOf(t, tok.RefreshToken)
	if rc.TokenType() != "refresh" || rc.JTI() != tok.RefreshJTI || tok.RefreshTTL != tapistest.DefaultRefreshTTL {
		t.Errorf("refresh token claims %v, TTL %v; want type refresh, jti %s, TTL %v", rc, tok.RefreshTTL, tok.RefreshJTI, tapistest.DefaultRefreshTTL)
	}
	if n, ok := claimsOf(t, tok.AccessToken).RefreshCount(); !ok || n != 0 {
		t.Errorf("refresh_count = %d, %v; want 0, true", n, ok)
	}
}

func TestFakeRefreshRotates(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatal(err)
	}
	first := tok
	s.SetTTLs(time.Hour, 48*time.Hour)
	for i := int64(1); i <= 3; i++ {
		next, err := c.Refresh(ctx, tok.RefreshToken, cred)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if next.RefreshToken == tok.RefreshToken || next.RefreshJTI == tok.RefreshJTI || next.AccessJTI == tok.AccessJTI {
			t.Errorf("refresh %d did not rotate both tokens", i)
		}
		ac := claimsOf(t, next.AccessToken)
		if n, ok := ac.RefreshCount(); !ok || n != i {
			t.Errorf("refresh %d: refresh_count = %d, %v; want %d", i, n, ok, i)
		}
		if ac.String("tapis/grant_type") != "refresh_token" || ac.String("tapis/client_id") != "cid" {
			t.Errorf("refresh %d: grant_type %q, client %q", i, ac.String("tapis/grant_type"), ac.String("tapis/client_id"))
		}
		if next.AccessTTL != time.Hour || next.RefreshTTL != 48*time.Hour {
			t.Errorf("refresh %d: TTLs %v, %v; want the tenant's new defaults 1h, 48h", i, next.AccessTTL, next.RefreshTTL)
		}
		tok = next
	}
	// Old refresh tokens stay valid upstream and restart from their count.
	again, err := c.Refresh(ctx, first.RefreshToken, cred)
	if err != nil {
		t.Fatalf("replaying the first refresh token: %v", err)
	}
	if n, _ := claimsOf(t, again.AccessToken).RefreshCount(); n != 1 {
		t.Errorf("replayed refresh_count = %d; want 1", n)
	}
	if got := s.GrantCalls("refresh_token"); got != 4 {
		t.Errorf("fake saw %d refresh grants; want 4", got)
	}
}

func TestFakeConcurrentRefresh(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Refresh(ctx, tok.RefreshToken, cred)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent refresh: %v", err)
		}
	}
	if s.MaxInFlight(tapistest.RouteTokens) < 1 {
		t.Error("fake saw no token requests")
	}
}

// TestFakeGrantErrors runs every §2.6 row the fake can produce through the
// client and checks the classification. Rows it cannot produce (1, 2, 3, 14,
// 22, and the AUTH25 wordings) are covered by TestMessageClassification.
func TestFakeGrantErrors(t *testing.T) {
	s, c, clock := newFake(t)
	ctx := ctxT(t)
	good, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatal(err)
	}
	// The fake keeps one key per tenant id, so another tenant's key signs
	// a token that claims tenant dev.
	other := tapistest.New(t, tapistest.Config{TenantID: "other"})
	foreignRefresh := other.SignClaims(map[string]any{"jti": "x0", "tapis/tenant_id": "dev", "tapis/token_type": "refresh",
		"exp": clock.Now().Add(time.Hour).Unix(), "tapis/access_token": map[string]any{"tapis/client_id": "cid", "tapis/refresh_count": 0}})
	noAccessClaim := s.SignClaims(map[string]any{"jti": "x1", "tapis/tenant_id": "dev", "tapis/token_type": "refresh",
		"exp": clock.Now().Add(time.Hour).Unix()})
	noCount := s.SignClaims(map[string]any{"jti": "x2", "tapis/tenant_id": "dev", "tapis/token_type": "refresh",
		"exp": clock.Now().Add(time.Hour).Unix(), "tapis/access_token": map[string]any{"tapis/client_id": "cid", "tapis/username": "jdoe"}})
	expiredRefresh := s.SignClaims(map[string]any{"jti": "x3", "tapis/tenant_id": "dev", "tapis/token_type": "refresh",
		"exp": clock.Now().Add(-time.Second).Unix(), "tapis/access_token": map[string]any{"tapis/client_id": "cid", "tapis/refresh_count": 0}})

	// A tenant with the same id and key that allows only the device flow,
	// for row 4.
	deviceOnly := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "pw"}, Now: clock.Now, GrantTypes: []string{"device_code"}})
	if err := deviceOnly.AddClient("jdoe", "cid", "ckey"); err != nil {
		t.Fatal(err)
	}
	dc, err := tapis.New(deviceOnly.URL())
	if err != nil {
		t.Fatal(err)
	}

	password := func(user string, pw secret.Value, cl *tapis.ClientCredentials) func() error {
		return func() error { _, err := c.PasswordGrant(ctx, user, pw, cl); return err }
	}
	refresh := func(rt secret.Value, cl tapis.ClientCredentials) func() error {
		return func() error { _, err := c.Refresh(ctx, rt, cl); return err }
	}
	const notAllowed = "; this grant type is not allowed for this tenant. Allowable grant types: ['device_code']"
	cases := []struct {
		row    string
		call   func() error
		reason tapis.Reason
		trans  bool
		status int
		msg    string // prefix of the sanitised message
	}{
		{"4 password not allowed", func() error { _, err := dc.PasswordGrant(ctx, "jdoe", "pw", &cred); return err }, tapis.ReasonGrantNotAllowed, false, 400, "Invalid grant_type (password)" + notAllowed},
		{"4 refresh not allowed", func() error { _, err := dc.Refresh(ctx, good.RefreshToken, cred); return err }, tapis.ReasonGrantNotAllowed, false, 400, "Invalid grant_type (refresh_token)" + notAllowed},
		{"11 wrong key", password("jdoe", "pw", &tapis.ClientCredentials{ID: "cid", Key: "wrong-key"}), tapis.ReasonBadClient, false, 400, "Invalid client credentials: cid, REDACTED."},
		{"11 unknown client", refresh(good.RefreshToken, tapis.ClientCredentials{ID: "nope", Key: "k3y"}), tapis.ReasonBadClient, false, 400, "Invalid client credentials: nope, REDACTED."},
		{"11 before password", password("jdoe", "bad", &tapis.ClientCredentials{ID: "cid", Key: "wrong-key"}), tapis.ReasonBadClient, false, 400, "Invalid client credentials"},
		{"12 empty password", password("jdoe", "", nil), tapis.ReasonBadRequest, false, 400, "Missing required payload data"},
		{"13 wrong password", password("jdoe", "bad", nil), tapis.ReasonBadCredentials, false, 400, "Invalid username/password combination."},
		{"13 unknown user", password("nobody", "pw", &cred), tapis.ReasonBadCredentials, false, 400, "Invalid username/password combination."},
		{"17 garbage", refresh("garbage", cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid refresh_token."},
		{"17 empty", refresh("", cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid refresh_token."},
		{"17 bad signature", refresh(secret.Value(foreignRefresh), cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid refresh_token."},
		{"17 expired", refresh(secret.Value(expiredRefresh), cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid refresh_token."},
		{"18 access token", refresh(good.AccessToken, cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid token type."},
		{"19 no access claim", refresh(secret.Value(noAccessClaim), cred), tapis.ReasonInvalidRefreshToken, false, 400, "Invalid refresh_token format"},
		{"20 other client", refresh(good.RefreshToken, tapis.ClientCredentials{ID: "cid2", Key: "ckey2"}), tapis.ReasonBadClient, false, 400, "client_id from header (cid2)"},
		{"21 no refresh_count", refresh(secret.Value(noCount), cred), tapis.ReasonUpstream, true, 500, "Unrecognized exception type"},
	}
	for _, tc := range cases {
		t.Run(tc.row, func(t *testing.T) {
			err := tc.call()
			e := asError(t, err)
			if e.Reason != tc.reason || e.Transient != tc.trans || e.StatusCode != tc.status {
				t.Errorf("%v: Reason %q, Transient %v, Status %d; want %q, %v, %d", err, e.Reason, e.Transient, e.StatusCode, tc.reason, tc.trans, tc.status)
			}
			if tapis.IsDefinitive(err) == tc.trans {
				t.Errorf("IsDefinitive(%v) = %v; want %v", err, !tc.trans, !tc.trans)
			}
			if !strings.HasPrefix(e.Message, tc.msg) {
				t.Errorf("Message = %q; want prefix %q", e.Message, tc.msg)
			}
			for _, secret := range []string{"wrong-key", "k3y", "ckey", good.RefreshToken.Reveal()} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}

	// Row 23 and other faults: transient.
	s.Inject(tapistest.RouteTokens, tapistest.FaultTryLater(1))
	if err := refresh(good.RefreshToken, cred)(); !tapis.IsTransient(err) || asError(t, err).StatusCode != 400 {
		t.Errorf("try again later: %v; want transient 400", err)
	}
	s.Inject(tapistest.RouteTokens, tapistest.Fault500(1))
	if err := refresh(good.RefreshToken, cred)(); !tapis.IsTransient(err) || asError(t, err).StatusCode != 500 {
		t.Errorf("HTML 500: %v; want transient 500", err)
	}
	s.Inject(tapistest.RouteTokens, tapistest.Fault{Status: 503, Times: 1})
	if err := refresh(good.RefreshToken, cred)(); !tapis.IsTransient(err) {
		t.Errorf("503: %v; want transient", err)
	}
	s.Inject(tapistest.RouteTokens, tapistest.Fault{Drop: true, Times: 1})
	if err := refresh(good.RefreshToken, cred)(); !tapis.IsTransient(err) {
		t.Errorf("dropped connection: %v; want transient", err)
	}
	// The fault only hits the password grant; refresh still works.
	s.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "password", Status: 500, Times: 1})
	if err := refresh(good.RefreshToken, cred)(); err != nil {
		t.Errorf("refresh with a password-grant fault queued: %v", err)
	}
	if err := password("jdoe", "pw", nil)(); !tapis.IsTransient(err) {
		t.Errorf("password grant under a 500 fault: %v; want transient", err)
	}
	s.SetSingleUseRefresh(true)
	rt := good.RefreshToken
	if err := refresh(rt, cred)(); err != nil {
		t.Fatalf("first single-use refresh: %v", err)
	}
	if err := refresh(rt, cred)(); !tapis.IsDefinitive(err) || asError(t, err).Reason != tapis.ReasonInvalidRefreshToken {
		t.Errorf("replayed single-use refresh: %v; want definitive invalid_refresh_token", err)
	}
}

func TestFakeTimeouts(t *testing.T) {
	s, c, _ := newFake(t, tapis.WithTimeout(200*time.Millisecond))
	ctx := ctxT(t)
	cases := []struct {
		name  string
		fault tapistest.Fault
	}{
		{"hang", tapistest.Fault{Hang: true, Times: 1}},
		{"delay", tapistest.Fault{Delay: 10 * time.Second, Times: 1}},
		{"drip", tapistest.Fault{DripEvery: 50 * time.Millisecond, Times: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Inject(tapistest.RouteTokens, tc.fault)
			start := time.Now()
			_, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
			if !errors.Is(err, tapis.ErrTimeout) || !tapis.IsTransient(err) {
				t.Errorf("err = %v; want a transient ErrTimeout", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("call took %v despite a 200ms timeout", d)
			}
		})
	}
	if _, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred); err != nil {
		t.Errorf("after the faults: %v", err)
	}
}

func TestFakeDeviceFlow(t *testing.T) {
	s, c, clock := newFake(t)
	ctx := ctxT(t)
	dc, err := c.StartDevice(ctx, "cid")
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	if dc.ClientID != "cid" || dc.UserCode == "" || dc.DeviceCode.IsZero() || !strings.Contains(dc.VerificationURI, "client_id=cid") {
		t.Errorf("DeviceCode = %+v", dc)
	}
	if d := dc.ExpiresAt.Sub(clock.Now()); d < 590*time.Second || d > 610*time.Second {
		t.Errorf("ExpiresAt is %v from now; want about 600s", d)
	}
	_, err = c.PollDevice(ctx, dc)
	if !errors.Is(err, tapis.ErrDeviceNotReady) || tapis.IsTransient(err) || tapis.IsDefinitive(err) {
		t.Fatalf("poll before approval: %v; want ErrDeviceNotReady, pending", err)
	}
	if codes := s.UserCodes(); len(codes) != 1 || codes[0] != dc.UserCode {
		t.Errorf("fake's user codes %v; want [%s]", codes, dc.UserCode)
	}
	if err := s.ApproveDevice(dc.UserCode); err != nil {
		t.Fatal(err)
	}
	// Row 10: another client id for this code (checked after readiness).
	_, err = c.PollDevice(ctx, &tapis.DeviceCode{ClientID: "cid2", DeviceCode: dc.DeviceCode})
	if e := asError(t, err); e.Reason != tapis.ReasonDeviceInvalid || !tapis.IsDefinitive(err) {
		t.Errorf("poll with another client: %v; want definitive device_invalid", err)
	}
	tok, err := c.PollDevice(ctx, dc)
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	if tok.RefreshToken.IsZero() || tok.AccessTTL != tapistest.DeviceTTL {
		t.Errorf("device token: refresh %v, AccessTTL %v; want a refresh token and %v", !tok.RefreshToken.IsZero(), tok.AccessTTL, tapistest.DeviceTTL)
	}
	if ac := claimsOf(t, tok.AccessToken); ac.Username() != "jdoe" || ac.String("tapis/grant_type") != "device_code" {
		t.Errorf("device access claims %v", ac)
	}
	// Row 7: single use.
	_, err = c.PollDevice(ctx, dc)
	if e := asError(t, err); e.Reason != tapis.ReasonDeviceInvalid || !tapis.IsDefinitive(err) {
		t.Errorf("second poll: %v; want definitive device_invalid", err)
	}
	// Rows 5 and 6: missing fields.
	for _, bad := range []*tapis.DeviceCode{{DeviceCode: "x"}, {ClientID: "cid"}} {
		_, err = c.PollDevice(ctx, bad)
		if e := asError(t, err); e.Reason != tapis.ReasonBadRequest || !tapis.IsDefinitive(err) {
			t.Errorf("poll %+v: %v; want definitive bad_request", bad, err)
		}
	}
	// Row 9: approved, then expired before the poll.
	dc2, err := c.StartDevice(ctx, "cid")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveDevice(dc2.UserCode); err != nil {
		t.Fatal(err)
	}
	clock.Add(607 * time.Second)
	_, err = c.PollDevice(ctx, dc2)
	if e := asError(t, err); e.Reason != tapis.ReasonDeviceExpired || !tapis.IsDefinitive(err) {
		t.Errorf("poll after expiry: %v; want definitive device_expired", err)
	}
	// Unknown client.
	_, err = c.StartDevice(ctx, "nope")
	if e := asError(t, err); e.Reason != tapis.ReasonBadClient || !tapis.IsDefinitive(err) {
		t.Errorf("StartDevice(nope): %v; want definitive bad_client", err)
	}
}

func TestFakeClients(t *testing.T) {
	s, c, clock := newFake(t)
	ctx := ctxT(t)
	// Agent bootstrap: access token, create a client, grant with it.
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{ID: "tapis-agent-host-abc", DisplayName: "agent", Description: "token agent"})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	want := tapis.OAuthClient{ID: "tapis-agent-host-abc", Key: oc.Key, DisplayName: "agent", Description: "token agent", Owner: "jdoe", Active: true}
	if *oc != want || oc.Key.IsZero() {
		t.Errorf("created %+v; want %+v with a key", *oc, want)
	}
	h := s.LastHeader(tapistest.RouteClients)
	if h.Get("Authorization") != "" || h.Get("X-Tapis-Token") != tok.AccessToken.Reveal() {
		t.Errorf("create client headers: Authorization %q, token set %v", h.Get("Authorization"), h.Get("X-Tapis-Token") != "")
	}
	full, err := c.PasswordGrant(ctx, "jdoe", "pw", &tapis.ClientCredentials{ID: oc.ID, Key: oc.Key})
	if err != nil || full.RefreshToken.IsZero() {
		t.Fatalf("grant with the new client: %v", err)
	}
	gen, err := c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{})
	if err != nil || gen.ID == "" || gen.Key.IsZero() {
		t.Fatalf("CreateClient with generated id: %+v, %v", gen, err)
	}

	_, err = c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{ID: "tapis-agent-host-abc"})
	if e := asError(t, err); e.Reason != tapis.ReasonClientExists || !tapis.IsDefinitive(err) {
		t.Errorf("duplicate client: %v; want definitive client_exists", err)
	}
	if err := c.DeleteClient(ctx, tok.AccessToken, oc.ID); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	for _, cl := range s.Clients() {
		if cl.ClientID == oc.ID && cl.Active {
			t.Errorf("client %s still active after delete", oc.ID)
		}
	}
	err = c.DeleteClient(ctx, tok.AccessToken, "no-such-client")
	if e := asError(t, err); e.Reason != tapis.ReasonNotFound {
		t.Errorf("delete unknown: %v; want not_found", err)
	}
	err = c.DeleteClient(ctx, tok.AccessToken, "cid2") // asmith's
	if e := asError(t, err); e.Reason != tapis.ReasonForbidden {
		t.Errorf("delete another user's client: %v; want forbidden", err)
	}
	clock.Add(5 * time.Hour)
	_, err = c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{})
	if e := asError(t, err); e.Reason != tapis.ReasonInvalidAccessToken || !tapis.IsDefinitive(err) {
		t.Errorf("create with an expired token: %v; want definitive invalid_access_token", err)
	}
}

// TestFakeAccessTokenErrors runs the §7.2 rows the fake can produce
// through CreateClient, which sends an access token.
func TestFakeAccessTokenErrors(t *testing.T) {
	s, c, clock := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := c.CreateClient(ctx, tok.AccessToken, tapis.NewClient{})
	if err != nil || oc.Owner != "jdoe" {
		t.Fatalf("CreateClient = %+v, %v; want a client of jdoe", oc, err)
	}
	exp := clock.Now().Add(time.Hour).Unix()
	other := tapistest.New(t, tapistest.Config{TenantID: "other"})
	foreign := other.SignClaims(map[string]any{"jti": "a", "exp": exp, "tapis/tenant_id": "dev", "tapis/token_type": "access", "tapis/username": "jdoe"})
	cases := []struct {
		name  string
		token secret.Value
		msg   string
	}{
		{"missing", "", "No Tapis access token found in the request."},
		{"garbage", "garbage", "Could not parse the Tapis access token."},
		{"no tenant claim", secret.Value(s.SignClaims(map[string]any{"jti": "a", "exp": exp, "tapis/token_type": "access"})), "Unable to process Tapis token; could not parse the tenant_id."},
		{"unknown tenant", secret.Value(s.SignClaims(map[string]any{"jti": "a", "exp": exp, "tapis/tenant_id": "mars"})), "Unable to process Tapis token; unexpected tenant_id."},
		{"bad signature", secret.Value(foreign), "Invalid Tapis token."},
		{"expired", tok.AccessToken, "Invalid Tapis token."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "expired" {
				clock.Add(5 * time.Hour)
			}
			_, err := c.CreateClient(ctx, tc.token, tapis.NewClient{})
			e := asError(t, err)
			if e.Reason != tapis.ReasonInvalidAccessToken || !tapis.IsDefinitive(err) || !strings.HasPrefix(e.Message, tc.msg) {
				t.Errorf("%v: Reason %q; want definitive invalid_access_token with %q", err, e.Reason, tc.msg)
			}
		})
	}
}

func TestFakeRevoke(t *testing.T) {
	s, c, clock := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // revoking twice succeeds
		for _, v := range []secret.Value{tok.AccessToken, tok.RefreshToken} {
			if err := c.Revoke(ctx, v); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
		}
	}
	if !s.Revoked(tok.AccessJTI) || !s.Revoked(tok.RefreshJTI) {
		t.Error("fake did not record the revocations")
	}
	if h := s.LastHeader(tapistest.RouteRevoke); h.Get("X-Tapis-Token") != "" || h.Get("Authorization") != "" {
		t.Error("revoke sent credentials in headers")
	}
	// Revocation does not stop refresh (§6.2).
	if _, err := c.Refresh(ctx, tok.RefreshToken, cred); err != nil {
		t.Errorf("refresh after revoke: %v", err)
	}
	err = c.Revoke(ctx, "garbage")
	if e := asError(t, err); e.Reason != tapis.ReasonInvalidToken || !tapis.IsDefinitive(err) {
		t.Errorf("revoke garbage: %v; want definitive invalid_token", err)
	}
	clock.Add(5 * time.Hour)
	err = c.Revoke(ctx, tok.AccessToken)
	if e := asError(t, err); e.Reason != tapis.ReasonInvalidToken {
		t.Errorf("revoke expired: %v; want invalid_token", err)
	}
}
