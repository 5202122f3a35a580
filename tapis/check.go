package tapis

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tapis-agent/tapis-agent/secret"
)

// Paths of the token checks.
const (
	pathUserinfo = "/v3/oauth2/userinfo"
	pathTenants  = "/v3/tenants"
)

// UserInfo asks upstream whether it accepts accessToken, with GET
// /v3/oauth2/userinfo (X-Tapis-Token), and returns the username the
// token belongs to. A token upstream rejects (expired, signed with a key
// the tenant no longer has, for another tenant) fails with
// ReasonInvalidAccessToken. Upstream does not consult revocations here: a
// revoked token still passes.
func (c *Client) UserInfo(ctx context.Context, accessToken secret.Value) (string, error) {
	var res struct {
		Username string `json:"username"`
	}
	r := request{op: "userinfo", method: http.MethodGet, path: pathUserinfo, token: accessToken}
	if err := c.do(ctx, r, &res); err != nil {
		return "", err
	}
	return res.Username, nil
}

// TenantPublicKey returns the PEM public key that tenantID's tokens are
// signed with, from the Tenants API. It sends no token: the Tenants API
// rejects a request whose token does not validate.
func (c *Client) TenantPublicKey(ctx context.Context, tenantID string) (string, error) {
	var res struct {
		PublicKey string `json:"public_key"`
	}
	r := request{op: "get tenant", method: http.MethodGet, path: pathTenants + "/" + url.PathEscape(tenantID)}
	if tenantID == "" {
		return "", &Error{Op: r.op, Reason: ReasonBadRequest, Err: errors.New("empty tenant id")}
	}
	if err := c.do(ctx, r, &res); err != nil {
		return "", err
	}
	if res.PublicKey == "" {
		return "", &Error{Op: r.op, StatusCode: http.StatusOK, Reason: ReasonUpstream, Transient: true,
			Err: errors.New("tenant record has no public_key")}
	}
	return res.PublicKey, nil
}

// ErrBadSignature is returned by VerifySignature for a token that the key
// did not sign.
var ErrBadSignature = errors.New("tapis: token signature does not match the tenant's public key")

// VerifySignature checks that token is an RS256 JWT signed by the RSA key
// in publicKeyPEM (a "BEGIN PUBLIC KEY" PEM, as the Tenants API publishes
// it). It checks nothing else: not the expiry, not the claims. A token
// the key did not sign gives ErrBadSignature; a malformed token or key
// another error. Errors never contain the token.
func VerifySignature(token secret.Value, publicKeyPEM string) error {
	block, _ := pem.Decode([]byte(publicKeyPEM))
	if block == nil {
		return errors.New("tapis: public key is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("tapis: parsing public key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("tapis: public key is %T, not RSA", k)
	}
	parts := strings.Split(token.Reveal(), ".")
	if len(parts) != 3 {
		return errors.New("tapis: token is not a JWT")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return errors.New("tapis: token header is not base64url")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return errors.New("tapis: token header is not JSON")
	}
	if hdr.Alg != "RS256" {
		return fmt.Errorf("tapis: token algorithm %q is not RS256", truncate(hdr.Alg, 16))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("tapis: token signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return ErrBadSignature
	}
	return nil
}
