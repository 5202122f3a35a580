package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// checkAccess runs once, when upstream has rejected the refresh token of
// generation t for good: it asks whether upstream still accepts t's access
// token. Tapis rejects a refresh token for the same reasons it rejects an
// access token (a signing key that changed, a token from a reset
// deployment), so serving the access token on could hand every caller a
// token each service refuses. The check is GET /v3/oauth2/userinfo, or,
// when that cannot answer, the token's signature against the tenant's
// public key from the Tenants API. A token upstream rejects is dropped
// (its token file too) and the reason shown; one it accepts is served
// until it expires, and status says why beside login_required.
func (s *session) checkAccess(ctx context.Context, t *tokenSet) {
	if t.access.IsZero() || !s.now().Before(t.expiresAt) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var note, dead string
	_, err := s.api.UserInfo(ctx, t.access)
	var te *tapis.Error
	switch {
	case err == nil:
		note = "Tapis rejected the refresh token but still accepts the access token"
	case errors.As(err, &te) && te.Reason == tapis.ReasonInvalidAccessToken:
		dead = fmt.Sprintf("Tapis rejected the refresh token, and the access token too (%s): the tenant's signing key may have changed", te.Message)
	default:
		s.log.Warn("access_check_failed", "check", "userinfo", "err", err)
		switch ok, serr := s.checkSignature(ctx, t); {
		case serr != nil:
			s.log.Warn("access_check_failed", "check", "signature", "err", serr)
			note = "Tapis rejected the refresh token, and the agent could not check the access token (Tapis did not answer)"
		case ok:
			note = "Tapis rejected the refresh token; the access token's signature still matches the tenant's public key"
		default:
			dead = "Tapis rejected the refresh token, and the access token's signature no longer matches the tenant's public key: the tenant's signing key changed"
		}
	}
	if dead == "" {
		s.log.Info("access_token_still_accepted", "jti", t.accessJTI, "expires_at", t.expiresAt.UTC().Format(time.RFC3339))
		s.mu.Lock()
		s.accessNote = note
		s.mu.Unlock()
		return
	}
	// Keep the refresh fields for status; drop the access token.
	d := &tokenSet{refreshJTI: t.refreshJTI, refreshCount: t.refreshCount, upstream: t.upstream, dead: dead}
	if !s.tok.CompareAndSwap(t, d) {
		return // logged out or replaced meanwhile
	}
	s.log.Warn("access_token_dropped", "jti", t.accessJTI, "reason", dead)
	s.removeSink()
}

// checkSignature reports whether t's access token is signed by the key the
// Tenants API publishes for its tenant now.
func (s *session) checkSignature(ctx context.Context, t *tokenSet) (bool, error) {
	c, err := jwt.Decode(t.access.Reveal())
	if err != nil {
		return false, fmt.Errorf("decoding the access token: %w", err)
	}
	tenant := c.String("tapis/tenant_id")
	if tenant == "" {
		return false, errors.New("the access token names no tenant")
	}
	key, err := s.api.TenantPublicKey(ctx, tenant)
	if err != nil {
		return false, err
	}
	switch err := tapis.VerifySignature(t.access, key); {
	case err == nil:
		return true, nil
	case errors.Is(err, tapis.ErrBadSignature):
		return false, nil
	default:
		return false, err
	}
}
