// Package wire is the part of the agent's socket API that tapis-token
// runs on every call: where the socket is, the connection, the HTTP/1.1
// exchange, and the token call, whose answers it decodes by hand. It
// imports neither net nor encoding/json: each package tapis-token links
// is initialised at each of its starts. Package ipc builds the full client
// on it, and re-exports its types.
package wire

import (
	"bufio"
	"errors"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// PathToken is the path of the token call.
const PathToken = "/v1/token" // GET  ?tenant=T&min_valid=S

// Error codes carried in ErrorBody.Code. Clients branch on codes, never on
// messages.
const (
	CodeLoginRequired       = "login_required"          // no usable session; log in
	CodeUnknownTenant       = "unknown_tenant"          // tenant not configured and not logged in
	CodeUpstreamUnavailable = "upstream_unavailable"    // upstream failed transiently and no token is valid long enough
	CodeBadRequest          = "bad_request"             // malformed request
	CodeForbidden           = "forbidden"               // peer is another user
	CodeNotFound            = "not_found"               // no such path
	CodeMethodNotAllowed    = "method_not_allowed"      // wrong method for a path
	CodeTooLarge            = "too_large"               // request body over the limit
	CodeBadCredentials      = "bad_credentials"         // upstream rejected the username or password
	CodeBadClient           = "bad_client"              // upstream rejected the OAuth client id or key
	CodeUnsatisfiable       = "min_valid_unsatisfiable" // even a fresh token would not live min_valid
	CodeDeviceExpired       = "device_code_expired"     // device code expired before approval
	CodeInternal            = "internal"                // anything else
)

// ErrorBody is the JSON body of every non-2xx answer:
// {"error":{"code":"…","message":"…","hint":"…"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one failure. Hint names the command to run next.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// TokenResponse answers GET /v1/token.
type TokenResponse struct {
	Tenant      string    `json:"tenant"`
	BaseURL     string    `json:"base_url"`
	Username    string    `json:"username"`
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"` // RFC 3339
	ExpiresIn   int64     `json:"expires_in"` // seconds remaining when answered
}

// Error is an error answered by the agent, or produced by the client for
// an answer it could not use. Callers branch on Code.
type Error struct {
	Status  int // HTTP status of the answer; 0 when produced locally
	Code    string
	Message string
	Hint    string
}

func (e *Error) Error() string { return e.Message }

// ErrAgentUnreachable is wrapped by the errors of a Client call when no
// agent could be reached: the socket is missing or refuses connections,
// the socket directory fails CheckDir, or the connection broke before an
// answer arrived. Callers test it with errors.Is.
var ErrAgentUnreachable = errors.New("agent not reachable")

// DefaultTokenTimeout bounds a token call whose timeout is zero. The
// agent bounds its own work a little below it, so a slow call ends with the
// agent's answer rather than the client's timeout.
const DefaultTokenTimeout = 60 * time.Second

// Token asks the agent at the socket path for an access token for tenant
// that stays valid for at least minValid; a negative minValid leaves the
// choice to the agent (60 s, or less for tokens that live less than two
// minutes). An empty tenant asks for the agent's default tenant. timeout
// bounds the whole call; zero means DefaultTokenTimeout.
func Token(path string, timeout time.Duration, tenant string, minValid time.Duration) (*TokenResponse, error) {
	status, body, err := tokenCall(path, timeout, tenant, minValid, false)
	if err != nil {
		return nil, err
	}
	var out TokenResponse
	if decodeToken(body, &out) != nil {
		return nil, MalformedBody(status)
	}
	return &out, nil
}

// AccessToken is Token for tapis-token, a process that makes this one
// call and prints the access token. It leaves expires_at unparsed, which
// keeps time's date parser out of tapis-token (every byte of code a
// program links adds to its start), and it polls for the answer before it
// sleeps on it (see conn.poll), which a program making many calls at once
// should not do.
func AccessToken(path string, timeout time.Duration, tenant string, minValid time.Duration) (string, error) {
	status, body, err := tokenCall(path, timeout, tenant, minValid, true)
	if err != nil {
		return "", err
	}
	tok, err := decodeAccessToken(body)
	if err != nil {
		return "", MalformedBody(status)
	}
	return tok, nil
}

// tokenCall makes a token call and returns a 2xx answer's status and body,
// or the error an answer carries; poll as for roundTrip.
func tokenCall(path string, timeout time.Duration, tenant string, minValid time.Duration, poll bool) (int, []byte, error) {
	// Built by hand: net/url would add its package initialisation to
	// every start of tapis-token.
	q := ""
	if tenant != "" {
		q = "tenant=" + queryEscape(tenant)
	}
	if minValid >= 0 {
		secs := int64((minValid + time.Second - 1) / time.Second) // round up: never less than asked
		if q != "" {
			q += "&"
		}
		q += "min_valid=" + strconv.FormatInt(secs, 10)
	}
	if timeout <= 0 {
		timeout = DefaultTokenTimeout
	}
	status, body, err := roundTrip(path, "GET", PathToken+"?"+q, nil, timeout, poll)
	if err == nil {
		err = ErrorAnswer(status, body)
	}
	return status, body, err
}

// RoundTrip sends one request to the agent at the socket path on a fresh
// connection, with body (nil: none) as its JSON body, and returns the
// answer's status and body; timeout bounds the whole call. Its errors wrap
// ErrAgentUnreachable when no agent could be reached.
func RoundTrip(path, method, target string, body []byte, timeout time.Duration) (int, []byte, error) {
	return roundTrip(path, method, target, body, timeout, false)
}

// roundTrip is RoundTrip; with poll, the first read of the answer polls
// for it before it sleeps (conn.poll).
func roundTrip(path, method, target string, body []byte, timeout time.Duration, poll bool) (int, []byte, error) {
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return 0, nil, unreachable(err)
	}
	// The request is ready before connecting: the agent wakes at the
	// connect and answers at once if the request is there by then.
	req := appendRequest(make([]byte, 0, 160+len(target)+len(body)), method, target, body)
	conn, err := dial(path, timeout, poll)
	if err != nil {
		return 0, nil, unreachable(err) // err names the path
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return 0, nil, ioError("sending request to agent", path, err)
	}
	status, respBody, err := readResponse(bufio.NewReaderSize(conn, maxLineBytes))
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return 0, nil, e
		}
		return 0, nil, ioError("reading answer from agent", path, err)
	}
	return status, respBody, nil
}

// ioError wraps a failure on an established connection. A broken
// connection means the agent went away: ErrAgentUnreachable. A timeout
// keeps os.ErrDeadlineExceeded in the chain.
func ioError(action, path string, err error) error {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return wrap(action+": "+ErrAgentUnreachable.Error()+" at "+path+": "+err.Error(), ErrAgentUnreachable, err)
	}
	return wrap(action+" at "+path+": "+err.Error(), err)
}

// unreachable wraps err, which kept the call from reaching the agent.
func unreachable(err error) error {
	return wrap(ErrAgentUnreachable.Error()+": "+err.Error(), ErrAgentUnreachable, err)
}

// queryEscape percent-encodes s for a query value, as url.QueryEscape
// does but with %20 for a space, which every server decodes alike.
func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; Unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// Unreserved reports whether c is a URL character that stands for itself
// in a query: a letter, a digit, '-', '.', '_' or '~'. The client escapes
// every other byte; the agent reads queries of these alone the short way.
func Unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
