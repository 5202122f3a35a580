package tapis

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// ErrBadSignature is wrapped by VerifyRS256 when the signature does not
// match the key, or the token is not signed with RS256.
var ErrBadSignature = errors.New("tapis: jwt signature invalid")

// VerifyRS256 checks token's RS256 signature against publicKeyPEM (a
// "PUBLIC KEY" or "RSA PUBLIC KEY" PEM block, as in the tenant record)
// and returns its claims. The header's alg must be RS256; "none" and
// every other algorithm are rejected. It does not check exp or any other
// claim.
func VerifyRS256(token string, publicKeyPEM string) (jwt.Claims, error) {
	key, err := parseRSAPublicKey(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, jwt.ErrMalformed
	}
	hdr, err := jwt.DecodeHeader(token)
	if err != nil {
		return nil, fmt.Errorf("tapis: jwt header: %w", err)
	}
	if alg, _ := hdr["alg"].(string); alg != "RS256" {
		return nil, fmt.Errorf("%w: alg %q is not RS256", ErrBadSignature, truncate(alg, 16))
	}
	sig, err := jwt.DecodeSegment(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrBadSignature)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, ErrBadSignature
	}
	return jwt.Decode(token)
}

// parseRSAPublicKey decodes the first PEM block of s as an RSA public key.
func parseRSAPublicKey(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("tapis: public key: no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tapis: public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("tapis: public key is %T, not RSA", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tapis: public key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("tapis: public key: unexpected PEM block %q", block.Type)
}
