package tapis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestTokenChecks: userinfo and the signature check agree with the fake
// before and after the tenant's signing key changes.
func TestTokenChecks(t *testing.T) {
	s, c, _ := newFake(t)
	ctx := ctxT(t)
	tok, err := c.PasswordGrant(ctx, "jdoe", "pw", &cred)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.UserInfo(ctx, tok.AccessToken); err != nil || u != "jdoe" {
		t.Fatalf("UserInfo = %q, %v; want jdoe", u, err)
	}
	pemKey, err := c.TenantPublicKey(ctx, "dev")
	if err != nil || pemKey != s.PublicKeyPEM() {
		t.Fatalf("TenantPublicKey = %.30q, %v; want the fake's key", pemKey, err)
	}
	if err := tapis.VerifySignature(tok.AccessToken, pemKey); err != nil {
		t.Errorf("VerifySignature with the signing key = %v", err)
	}
	if h := s.LastHeader(tapistest.RouteTenants); h == nil || h.Get("X-Tapis-Token") != "" || h.Get("Authorization") != "" {
		t.Errorf("the tenants call sent credentials: %v", h)
	}

	if err := s.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	_, err = c.UserInfo(ctx, tok.AccessToken)
	var te *tapis.Error
	if !errors.As(err, &te) || te.Reason != tapis.ReasonInvalidAccessToken || !tapis.IsDefinitive(err) {
		t.Errorf("UserInfo after the key changed = %v; want %s", err, tapis.ReasonInvalidAccessToken)
	}
	if strings.Contains(err.Error(), tok.AccessToken.Reveal()) {
		t.Errorf("the error holds the token")
	}
	newKey, err := c.TenantPublicKey(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if err := tapis.VerifySignature(tok.AccessToken, newKey); !errors.Is(err, tapis.ErrBadSignature) {
		t.Errorf("VerifySignature with the new key = %v; want ErrBadSignature", err)
	}
	if _, err := c.TenantPublicKey(ctx, "nope"); !tapis.IsDefinitive(err) {
		t.Errorf("TenantPublicKey(unknown) = %v; want a definitive error", err)
	}
}

func TestVerifySignatureRefusesMalformed(t *testing.T) {
	s, _, _ := newFake(t)
	good := s.SignClaims(map[string]any{"sub": "x"})
	parts := strings.Split(good, ".")
	cases := []struct {
		name, token, key string
	}{
		{"not a JWT", "abc", s.PublicKeyPEM()},
		{"bad header", "!!." + parts[1] + "." + parts[2], s.PublicKeyPEM()},
		{"alg none", "eyJhbGciOiJub25lIn0." + parts[1] + ".", s.PublicKeyPEM()},
		{"tampered payload", parts[0] + ".eyJzdWIiOiJ5In0." + parts[2], s.PublicKeyPEM()},
		{"bad signature encoding", parts[0] + "." + parts[1] + ".***", s.PublicKeyPEM()},
		{"key not PEM", good, "not a key"},
		{"key garbage PEM", good, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tapis.VerifySignature(secret.Value(tc.token), tc.key); err == nil {
				t.Errorf("VerifySignature = nil; want an error")
			}
		})
	}
}
