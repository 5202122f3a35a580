// Package jwt decodes the claims of a JSON Web Token without verifying it.
//
// The agent reads a token's expiry, identity and refresh count with it, and
// `tapis-token claims` prints a token's claims. Nothing here decides
// whether to trust a token: the agent holds only tokens upstream issued to
// it, and upstream's services check the signatures. The package imports no
// cryptography and no networking, so that it stays a decoder.
package jwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Decode, wrapped with detail; test with errors.Is.
var (
	// ErrMalformed means the token is not three dot-separated parts.
	ErrMalformed = errors.New("jwt: token is not three dot-separated parts")
	// ErrBase64 means the payload is not base64url.
	ErrBase64 = errors.New("jwt: payload is not base64url")
	// ErrNotObject means the payload is not a JSON object.
	ErrNotObject = errors.New("jwt: payload is not a JSON object")
)

// Claims are the decoded, unverified claims of a JWT. Numbers are
// json.Number values, so large integers survive exactly. A nil Claims is
// an empty set: every accessor reports absence. Claims is safe for
// concurrent reads.
type Claims map[string]any

// Decode splits token into its three parts and decodes the payload's
// claims. It accepts base64url with or without padding. It does not check
// the signature, the header or the expiry. Errors never contain the token.
func Decode(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := decodeObject(payload, &c); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeSegment decodes one base64url part of a JWT, with or without
// padding.
func decodeSegment(seg string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return nil, ErrBase64
	}
	return b, nil
}

// decodeObject decodes b into *v, which must be a map, requiring exactly
// one JSON object and nothing after it.
func decodeObject[M ~map[string]any](b []byte, v *M) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	// UseNumber keeps integers such as exp and refresh counts exact.
	dec.UseNumber()
	if err := dec.Decode(v); err != nil || *v == nil {
		return ErrNotObject
	}
	if strings.TrimSpace(string(b[dec.InputOffset():])) != "" {
		return ErrNotObject
	}
	return nil
}

// Expiry returns the "exp" claim as a time and reports whether it is
// present and numeric. Fractional seconds are kept.
func (c Claims) Expiry() (time.Time, bool) {
	switch v := c["exp"].(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return time.Unix(i, 0), true
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f != f || f > 1e15 || f < -1e15 {
			return time.Time{}, false
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), true
	case float64:
		if v != v || v > 1e15 || v < -1e15 {
			return time.Time{}, false
		}
		sec := int64(v)
		return time.Unix(sec, int64((v-float64(sec))*1e9)), true
	}
	return time.Time{}, false
}

// String returns the claim key as a string, or "" when it is absent or
// not a string.
func (c Claims) String(key string) string {
	s, _ := c[key].(string)
	return s
}

// Int returns the claim key as an integer and reports whether it is
// present and an integral number, e.g. Int("tapis/refresh_count").
func (c Claims) Int(key string) (int64, bool) {
	switch v := c[key].(type) {
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			return 0, false
		}
		return i, true
	case float64:
		if v != float64(int64(v)) {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

// JTI returns the "jti" claim, the token's unique id.
func (c Claims) JTI() string { return c.String("jti") }

// Issuer returns the "iss" claim.
func (c Claims) Issuer() string { return c.String("iss") }

// Username returns the "tapis/username" claim. Refresh tokens have none.
func (c Claims) Username() string { return c.String("tapis/username") }

// TokenType returns the "tapis/token_type" claim: "access" or "refresh".
func (c Claims) TokenType() string { return c.String("tapis/token_type") }

// RefreshCount returns the "tapis/refresh_count" claim and reports whether
// it is present.
func (c Claims) RefreshCount() (int64, bool) { return c.Int("tapis/refresh_count") }
