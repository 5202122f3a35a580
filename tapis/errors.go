package tapis

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
)

// Reason says why an upstream call failed, finer than Kind. Callers branch
// on Reason (or on IsTransient/IsDefinitive), never on message text.
type Reason string

// Reasons of an *Error. The messages they stand for are listed in
// tapis-protocol.md §2.6 and §7.2.
const (
	// ReasonBadCredentials: wrong password, unknown user, or a user outside
	// the tenant.
	ReasonBadCredentials Reason = "bad_credentials"
	// ReasonBadClient: the OAuth client id or key is wrong or unknown, or
	// the client does not match the refresh token's client.
	ReasonBadClient Reason = "bad_client"
	// ReasonInvalidRefreshToken: the refresh token is garbage, expired,
	// badly signed, of the wrong type or format. Log in again.
	ReasonInvalidRefreshToken Reason = "invalid_refresh_token"
	// ReasonInvalidAccessToken: the X-Tapis-Token was missing, unparsable,
	// expired, badly signed or for another tenant.
	ReasonInvalidAccessToken Reason = "invalid_access_token"
	// ReasonInvalidToken: the token given to Revoke does not validate
	// (expired or garbage); there is nothing left to revoke.
	ReasonInvalidToken Reason = "invalid_token"
	// ReasonDeviceNotReady: the user has not entered the device user code
	// yet; poll again. errors.Is(err, ErrDeviceNotReady) holds.
	ReasonDeviceNotReady Reason = "device_not_ready"
	// ReasonDeviceInvalid: the device code is unknown, already used, or
	// belongs to another client.
	ReasonDeviceInvalid Reason = "device_invalid"
	// ReasonDeviceExpired: the device code expired before approval.
	ReasonDeviceExpired Reason = "device_expired"
	// ReasonNotFound: no such client, or a tenant this authenticator does
	// not serve.
	ReasonNotFound Reason = "not_found"
	// ReasonForbidden: the object belongs to another user.
	ReasonForbidden Reason = "forbidden"
	// ReasonClientExists: an OAuth client with that id already exists
	// (ids are unique across all tenants); pick another id.
	ReasonClientExists Reason = "client_exists"
	// ReasonGrantNotAllowed: the tenant does not allow this grant type
	// (the message lists those it does).
	ReasonGrantNotAllowed Reason = "grant_not_allowed"
	// ReasonBadRequest: any other rejection of the request itself
	// (validation, grant type not allowed, wrong method).
	ReasonBadRequest Reason = "bad_request"
	// ReasonUpstream: the service is unavailable or misbehaving: network
	// error, timeout, 5xx, an unparsable or oversized body, the wrong
	// content type, or a "please try again later" message. Transient.
	ReasonUpstream Reason = "upstream"
	// ReasonCanceled: the caller's own context was canceled.
	ReasonCanceled Reason = "canceled"
)

// Kind is the coarse class of an *Error: what a caller should do next.
type Kind int

// Kinds of an *Error.
const (
	// KindTransient: retry later with backoff; keep serving valid tokens.
	KindTransient Kind = iota
	// KindDefinitive: upstream rejected the request; repeating it will
	// fail the same way. See Reason for what to fix.
	KindDefinitive
	// KindPending: the device code is not approved yet; poll again.
	KindPending
	// KindCanceled: the caller canceled the call; nothing is known about
	// upstream.
	KindCanceled
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindDefinitive:
		return "definitive"
	case KindPending:
		return "pending"
	case KindCanceled:
		return "canceled"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ErrDeviceNotReady is matched (errors.Is) by the *Error PollDevice returns
// while the user has not yet entered the user code.
var ErrDeviceNotReady = errors.New("tapis: device code not ready")

// ErrTimeout is wrapped by the *Error of a call that exceeded the
// client's per-call timeout (WithTimeout).
var ErrTimeout = errors.New("upstream call timed out")

// Error is the error of every Client method that talks to upstream. Its
// text never contains a secret: the client key echoed by upstream is
// replaced by REDACTED, and request bodies are never included.
type Error struct {
	// Op names the call: "password grant", "refresh", "create client", ….
	Op string
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// Status is the status line's code and reason phrase as sent
	// ("502 Bad Gateway", "400 BAD REQUEST"); "" without a response.
	Status string
	// BaseURL is the tenant's base URL the call went to.
	BaseURL string
	// ContentType and Body describe an answer that was not a Tapis
	// envelope: its content type and the start of its body, printable
	// and without any value sent with the request.
	ContentType, Body string
	// Message is upstream's envelope message, sanitised; "" when there
	// was no parsable envelope.
	Message string
	// Reason classifies the failure.
	Reason Reason
	// Transient reports whether retrying later may succeed.
	Transient bool
	// Err is the underlying error (network, timeout, parse), or nil.
	Err error

	timeout time.Duration // the per-call timeout that passed, if one did
}

// Error returns e.g. "tapis: refresh: 400: Invalid refresh_token.".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tapis: ")
	b.WriteString(e.Op)
	if e.StatusCode != 0 {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches target; a not-ready device poll matches
// ErrDeviceNotReady.
func (e *Error) Is(target error) bool {
	return target == ErrDeviceNotReady && e.Reason == ReasonDeviceNotReady
}

// Kind returns e's coarse class.
func (e *Error) Kind() Kind {
	switch {
	case e.Transient:
		return KindTransient
	case e.Reason == ReasonDeviceNotReady:
		return KindPending
	case e.Reason == ReasonCanceled:
		return KindCanceled
	}
	return KindDefinitive
}

// IsTransient reports whether err is an *Error worth retrying with
// backoff: network errors, the per-call timeout or the caller's own
// deadline, 5xx (JSON or not), a body that is not JSON, has the wrong
// content type, is truncated or over 1 MiB, and upstream's "Failure to …
// please try again later." messages. A caller's cancellation
// (context.Canceled) is neither transient nor definitive: the caller is
// going away and should not retry.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind() == KindTransient
}

// IsDefinitive reports whether err is an *Error for which upstream
// rejected the request in a way that repeating it will not change: a bad
// password, a bad client, an invalid refresh or access token, an expired
// or invalid device code, a missing object or any other 4xx. Its Reason
// says which. A refresh that fails definitively means the session must
// log in again.
func IsDefinitive(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind() == KindDefinitive
}

// maxMessage bounds the length of an upstream message kept in an *Error.
const maxMessage = 512

// classify sets e.Reason and e.Transient from e.StatusCode and e.Message,
// after sanitising the message. secrets are values sent with the request;
// any that upstream echoes are replaced by REDACTED.
func classify(e *Error, secrets []secret.Value) {
	reason, known := reasonFor(e.Message)
	e.Message = sanitize(e.Message, secrets)
	switch {
	case e.StatusCode >= 500:
		e.Reason, e.Transient = ReasonUpstream, true
	case known:
		e.Reason, e.Transient = reason, reason == ReasonUpstream
	case e.StatusCode >= 400:
		e.Reason = ReasonBadRequest
	default:
		// A 2xx/3xx envelope with status "error" and an unknown message:
		// upstream is confused, not rejecting us.
		e.Reason, e.Transient = ReasonUpstream, true
	}
}

// messageReasons maps message prefixes (tapis-protocol.md §2.1, §2.6, §4,
// §6, §7.2) to reasons. Order matters: longer prefixes first where one
// is a prefix of another.
var messageReasons = []struct {
	prefix string
	reason Reason
}{
	// §2.6 row 11 and §6.3: client checks.
	{"Invalid client credentials:", ReasonBadClient},
	{"Invalid client:", ReasonBadClient},
	{"client_id from header (", ReasonBadClient}, // row 20
	// Rows 13 and 14.
	{"Invalid username/password combination.", ReasonBadCredentials},
	{"Invalid username; user ", ReasonBadCredentials},
	// Rows 17, 18 and 19 (1.6.0 and AUTH25 wording).
	{"Invalid refresh_token", ReasonInvalidRefreshToken},
	{"Invalid token type. The refresh_token grant type required", ReasonInvalidRefreshToken},
	{"Refresh token did NOT have an access_token claim.", ReasonInvalidRefreshToken},
	// Rows 7–10.
	{"device code not ready.", ReasonDeviceNotReady},
	{"device code not valid.", ReasonDeviceInvalid},
	{"device code has expired", ReasonDeviceExpired},
	{"Client IDs do not match between device code", ReasonDeviceInvalid},
	{"Device code client id and passed in client id do not match", ReasonDeviceInvalid},
	// §7.2 token validation.
	{"No Tapis access token found in the request.", ReasonInvalidAccessToken},
	{"Could not parse the Tapis access token.", ReasonInvalidAccessToken},
	{"Unable to process Tapis token;", ReasonInvalidAccessToken},
	{"Invalid Tapis token.", ReasonInvalidAccessToken},
	{"The tenant_id claim in the token,", ReasonInvalidAccessToken},
	// §6.2 revoke of a token that no longer validates.
	{"Invalid POST data; could not validate the token", ReasonInvalidToken},
	// §2.6 row 4.
	{"Invalid grant_type (", ReasonGrantNotAllowed},
	// §4 clients.
	{"Invalid POST data; This change would violate uniqueness constraints.", ReasonClientExists},
	{"No client found with id", ReasonNotFound},
	{"Not authorized for this client.", ReasonForbidden},
	// §2.1 tenant not served here.
	{"The request is for a tenant (", ReasonNotFound},
}

// reasonFor returns the reason for an upstream message and reports
// whether the message is recognised.
func reasonFor(msg string) (Reason, bool) {
	// Row 23: "Failure to generate/parse an access token …; please try
	// again later."
	if strings.HasPrefix(msg, "Failure to ") && strings.HasSuffix(msg, "please try again later.") {
		return ReasonUpstream, true
	}
	for _, m := range messageReasons {
		if strings.HasPrefix(msg, m.prefix) {
			return m.reason, true
		}
	}
	return "", false
}

// sanitize removes secrets from an upstream message: the client key that
// row 11 of §2.6 echoes, any value sent with the request, and the
// validator detail of "Invalid POST data: …" (which may repeat the body).
func sanitize(msg string, secrets []secret.Value) string {
	const cc = "Invalid client credentials: "
	if rest, ok := strings.CutPrefix(msg, cc); ok {
		// "<id>, <key>. session: …": keep the id, drop everything after the
		// first ", ". An id containing ", " is cut short, never the key
		// kept.
		id, _, _ := strings.Cut(rest, ", ")
		msg = cc + id + ", " + secret.Redacted + "."
	}
	for _, p := range []string{"Invalid POST data: ", "Invalid PUT data: "} {
		if strings.HasPrefix(msg, p) {
			msg = p + "<detail withheld>."
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s.Reveal(), secret.Redacted)
		}
	}
	return truncate(msg, maxMessage)
}
