package tapis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// Upstream paths.
const (
	pathTokens     = "/v3/oauth2/tokens"
	pathRevoke     = "/v3/oauth2/tokens/revoke"
	pathDeviceCode = "/v3/oauth2/device/code"
	pathClients    = "/v3/oauth2/clients"
)

// ClientCredentials identify an OAuth client registered with the tenant.
// Without them the password grant yields no refresh token.
type ClientCredentials struct {
	ID  string
	Key secret.Value
}

// Token is the pair a grant returns. Expiry instants are the earlier of
// upstream's expires_at and the JWT's exp claim (exp is what services
// check, and it is expires_at truncated to whole seconds); TTLs are upstream's
// expires_in, the lifetime at issue, not the time remaining. The refresh
// fields are zero when no refresh token was issued (password grant
// without a client).
type Token struct {
	AccessToken     secret.Value
	AccessJTI       string
	AccessExpiresAt time.Time
	AccessTTL       time.Duration

	RefreshToken     secret.Value
	RefreshJTI       string
	RefreshExpiresAt time.Time
	RefreshTTL       time.Duration
}

// tokenObject is one of the two objects of a token grant's result.
type tokenObject struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresAt    string          `json:"expires_at"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	JTI          string          `json:"jti"`
}

type tokenResult struct {
	AccessToken  *tokenObject `json:"access_token"`
	RefreshToken *tokenObject `json:"refresh_token"`
}

// PasswordGrant exchanges username and password for tokens. With a
// client (sent as HTTP Basic) the answer includes a refresh token; with
// client nil it holds an access token only.
func (c *Client) PasswordGrant(ctx context.Context, username string, password secret.Value, client *ClientCredentials) (*Token, error) {
	r := request{
		op: "password grant", method: http.MethodPost, path: pathTokens,
		body:    map[string]string{"grant_type": "password", "username": username, "password": password.Reveal()},
		basic:   client,
		secrets: []secret.Value{password},
	}
	if client != nil {
		r.secrets = append(r.secrets, client.Key)
	}
	return c.grant(ctx, r, false)
}

// Refresh exchanges a refresh token for a new access and refresh token
// pair. client must be the client the refresh token was issued to.
// Upstream rotates the refresh token on every call; the caller must keep
// the new one (the old one stays valid upstream, but stop using it).
func (c *Client) Refresh(ctx context.Context, refreshToken secret.Value, client ClientCredentials) (*Token, error) {
	r := request{
		op: "refresh", method: http.MethodPost, path: pathTokens,
		body:    map[string]string{"grant_type": "refresh_token", "refresh_token": refreshToken.Reveal()},
		basic:   &client,
		secrets: []secret.Value{refreshToken, client.Key},
	}
	return c.grant(ctx, r, true)
}

// ExchangeCode exchanges an authorization code for tokens. redirectURI
// must equal the client's callback_url at this moment, byte for byte. A
// failed exchange leaves the code usable; a successful one burns it.
func (c *Client) ExchangeCode(ctx context.Context, code secret.Value, redirectURI string, client ClientCredentials) (*Token, error) {
	r := request{
		op: "code exchange", method: http.MethodPost, path: pathTokens,
		body:    map[string]string{"grant_type": "authorization_code", "code": code.Reveal(), "redirect_uri": redirectURI},
		basic:   &client,
		secrets: []secret.Value{code, client.Key},
	}
	return c.grant(ctx, r, true)
}

// grant performs a token grant and parses its result. needRefresh makes
// a missing refresh token an error.
func (c *Client) grant(ctx context.Context, r request, needRefresh bool) (*Token, error) {
	var res tokenResult
	if err := c.do(ctx, r, &res); err != nil {
		return nil, err
	}
	tok, err := parseTokenResult(&res, needRefresh)
	if err != nil {
		return nil, &Error{Op: r.op, StatusCode: http.StatusOK, Reason: ReasonUpstream, Transient: true, Err: err}
	}
	return tok, nil
}

// parseTokenResult converts a grant's result into a Token.
func parseTokenResult(res *tokenResult, needRefresh bool) (*Token, error) {
	if res.AccessToken == nil || res.AccessToken.AccessToken == "" {
		return nil, errors.New("result has no access token")
	}
	var t Token
	var err error
	t.AccessToken = secret.Value(res.AccessToken.AccessToken)
	t.AccessJTI, t.AccessExpiresAt, t.AccessTTL, err = parseTokenObject(res.AccessToken.AccessToken, res.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	if res.RefreshToken == nil || res.RefreshToken.RefreshToken == "" {
		if needRefresh {
			return nil, errors.New("result has no refresh token")
		}
		return &t, nil
	}
	t.RefreshToken = secret.Value(res.RefreshToken.RefreshToken)
	t.RefreshJTI, t.RefreshExpiresAt, t.RefreshTTL, err = parseTokenObject(res.RefreshToken.RefreshToken, res.RefreshToken)
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	return &t, nil
}

// parseTokenObject returns the jti, expiry and TTL of one token object,
// falling back to the JWT's claims where upstream leaves a field out.
func parseTokenObject(raw string, o *tokenObject) (jti string, exp time.Time, ttl time.Duration, err error) {
	claims, _ := jwt.Decode(raw) // nil when the token is opaque
	jti = o.JTI
	if jti == "" {
		jti = claims.JTI()
	}
	claimExp, hasClaim := claims.Expiry()
	switch {
	case o.ExpiresAt != "":
		// Python isoformat: +00:00 offset, 6 or 0 fraction digits.
		exp, err = time.Parse(time.RFC3339Nano, o.ExpiresAt)
		if err != nil {
			return "", time.Time{}, 0, fmt.Errorf("parsing expires_at %q: %w", truncate(o.ExpiresAt, 40), err)
		}
		// Services check the JWT's exp, which is expires_at truncated to
		// whole seconds: trust the earlier, so a token is never thought
		// valid for up to a second after services reject it.
		if hasClaim && claimExp.Before(exp) {
			exp = claimExp
		}
	case hasClaim:
		exp = claimExp
	default:
		return "", time.Time{}, 0, errors.New("no expires_at and no exp claim")
	}
	if len(o.ExpiresIn) > 0 && string(o.ExpiresIn) != "null" {
		n, err := strconv.ParseInt(string(o.ExpiresIn), 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return "", time.Time{}, 0, fmt.Errorf("expires_in %.40s is not a number of seconds", o.ExpiresIn)
		}
		ttl = time.Duration(n) * time.Second
	}
	return jti, exp.UTC(), ttl, nil
}

// DeviceCode is a started device-code login. Show the user
// VerificationURI and UserCode, then PollDevice until it succeeds or
// ExpiresAt passes.
type DeviceCode struct {
	ClientID        string
	DeviceCode      secret.Value
	UserCode        string
	VerificationURI string
	ExpiresAt       time.Time
}

// StartDevice starts a device-code login for the OAuth client clientID.
func (c *Client) StartDevice(ctx context.Context, clientID string) (*DeviceCode, error) {
	var res struct {
		ClientID        string          `json:"client_id"`
		DeviceCode      string          `json:"device_code"`
		ExpiresIn       json.RawMessage `json:"expires_in"`
		UserCode        string          `json:"user_code"`
		VerificationURI string          `json:"verification_uri"`
	}
	r := request{op: "start device", method: http.MethodPost, path: pathDeviceCode, body: map[string]string{"client_id": clientID}}
	if err := c.do(ctx, r, &res); err != nil {
		return nil, err
	}
	bad := func(err error) error {
		return &Error{Op: r.op, StatusCode: http.StatusOK, Reason: ReasonUpstream, Transient: true, Err: err}
	}
	if res.DeviceCode == "" || res.UserCode == "" {
		return nil, bad(errors.New("result has no device or user code"))
	}
	exp, err := parseDeviceExpiry(res.ExpiresIn, time.Now())
	if err != nil {
		return nil, bad(err)
	}
	id := res.ClientID
	if id == "" {
		id = clientID
	}
	return &DeviceCode{
		ClientID:        id,
		DeviceCode:      secret.Value(res.DeviceCode),
		UserCode:        res.UserCode,
		VerificationURI: res.VerificationURI,
		ExpiresAt:       exp,
	}, nil
}

// parseDeviceExpiry reads the device code's expires_in: an HTTP-date (the
// expiry instant) on Tapis, or, tolerated, a number of seconds from now.
func parseDeviceExpiry(raw json.RawMessage, now time.Time) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		t, err := http.ParseTime(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("parsing expires_in %q: %w", truncate(s, 40), err)
		}
		return t.UTC(), nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 && n < 1<<31 {
		return now.Add(time.Duration(n) * time.Second), nil
	}
	return time.Time{}, fmt.Errorf("expires_in %.40s is neither an HTTP date nor seconds", raw)
}

// PollDevice asks once whether the user has approved dc. While they have
// not, it returns an *Error matching ErrDeviceNotReady (Kind KindPending);
// poll again after a few seconds. Upstream keeps answering "not ready"
// for a code that was never entered even after it expired, so once
// dc.ExpiresAt has passed a not-ready answer becomes a definitive
// ReasonDeviceExpired. Approval succeeds once: later polls are
// ReasonDeviceInvalid.
func (c *Client) PollDevice(ctx context.Context, dc *DeviceCode) (*Token, error) {
	r := request{
		op: "poll device", method: http.MethodPost, path: pathTokens,
		body:    map[string]string{"grant_type": "device_code", "client_id": dc.ClientID, "device_code": dc.DeviceCode.Reveal()},
		secrets: []secret.Value{dc.DeviceCode},
	}
	tok, err := c.grant(ctx, r, false)
	var e *Error
	if errors.As(err, &e) && e.Reason == ReasonDeviceNotReady && !dc.ExpiresAt.IsZero() && time.Now().After(dc.ExpiresAt) {
		e.Reason = ReasonDeviceExpired
		e.Err = fmt.Errorf("device code expired at %s before approval", dc.ExpiresAt.Format(time.RFC3339))
	}
	return tok, err
}
