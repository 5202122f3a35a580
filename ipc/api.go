package ipc

import (
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/wire"
)

// Version is the API version prefix of every path the agent serves.
const Version = "v1"

// Paths of the socket API. Every path is versioned.
const (
	PathToken  = wire.PathToken // GET  ?tenant=T&min_valid=S
	PathStatus = "/v1/status"   // GET
	PathLogin  = "/v1/login"    // POST LoginRequest
	PathLogout = "/v1/logout"   // POST LogoutRequest
	PathImport = "/v1/import"   // POST ImportRequest
	PathReload = "/v1/reload"   // POST
)

// Error codes carried in ErrorBody.Code. Clients branch on codes, never on
// messages.
const (
	CodeLoginRequired       = wire.CodeLoginRequired
	CodeUnknownTenant       = wire.CodeUnknownTenant
	CodeUpstreamUnavailable = wire.CodeUpstreamUnavailable
	CodeBadRequest          = wire.CodeBadRequest
	CodeForbidden           = wire.CodeForbidden
	CodeNotFound            = wire.CodeNotFound
	CodeMethodNotAllowed    = wire.CodeMethodNotAllowed
	CodeTooLarge            = wire.CodeTooLarge
	CodeBadCredentials      = wire.CodeBadCredentials
	CodeBadClient           = wire.CodeBadClient
	CodeUnsatisfiable       = wire.CodeUnsatisfiable
	CodeDeviceExpired       = wire.CodeDeviceExpired
	CodeInternal            = wire.CodeInternal
)

// ErrorBody is the JSON body of every non-2xx answer:
// {"error":{"code":"…","message":"…","hint":"…"}}.
type ErrorBody = wire.ErrorBody

// ErrorDetail describes one failure. Hint names the command to run next.
type ErrorDetail = wire.ErrorDetail

// TokenResponse answers GET /v1/token.
type TokenResponse = wire.TokenResponse

// Session states of a tenant.
const (
	StateLoginRequired = "login_required"
	StateReady         = "ready"
	StateAccessOnly    = "access_only"
	StateExpired       = "expired"
	StateRefreshing    = "refreshing"
	StateRetrying      = "retrying"
	StateDevicePending = "device_pending"
)

// StatusResponse answers GET /v1/status.
type StatusResponse struct {
	Version     string         `json:"version"`
	PID         int            `json:"pid"`
	Socket      string         `json:"socket"`
	Config      string         `json:"config,omitempty"`
	ConfigError string         `json:"config_error,omitempty"`
	StartedAt   time.Time      `json:"started_at"`
	Tenants     []TenantStatus `json:"tenants"`
}

// TenantStatus describes one tenant's session. It never holds a secret.
type TenantStatus struct {
	Tenant           string     `json:"tenant"`
	BaseURL          string     `json:"base_url"`
	Username         string     `json:"username,omitempty"`
	ClientID         string     `json:"client_id,omitempty"`
	State            string     `json:"state"`
	Default          bool       `json:"default,omitempty"`
	AccessExpiresAt  *time.Time `json:"access_expires_at,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_expires_at,omitempty"`
	LastRefresh      *time.Time `json:"last_refresh,omitempty"`
	NextRefresh      *time.Time `json:"next_refresh,omitempty"`
	RefreshCount     int        `json:"refresh_count"`
	LastError        string     `json:"last_error,omitempty"`
	Warnings         []string   `json:"warnings,omitempty"`
	// Device is set while a device-code login waits for the user.
	Device *DeviceCode `json:"device,omitempty"`
}

// LoginRequest is the body of POST /v1/login. With Device set the agent
// starts a device-code flow and answers with LoginResponse.Device; otherwise
// it performs the password grant with Username and Password.
type LoginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Device   bool   `json:"device,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// ClientKey is the key of ClientID, needed to refresh the tokens a
	// device-code login obtains; empty means the key from the config.
	ClientKey string `json:"client_key,omitempty"`
	// Wait, with Device, starts nothing: it waits a while for the
	// tenant's device-code login in progress to end, and answers with its
	// outcome, or with LoginResponse.Device set while it is still pending.
	Wait bool `json:"wait,omitempty"`
	// Cancel, with Device, abandons the tenant's device-code login in
	// progress; a session the tenant already had is kept.
	Cancel bool `json:"cancel,omitempty"`
}

// LoginResponse answers POST /v1/login.
type LoginResponse struct {
	Tenant TenantStatus `json:"tenant"`
	Device *DeviceCode  `json:"device,omitempty"`
}

// DeviceCode is what a user needs to approve a device-code login.
type DeviceCode struct {
	VerificationURI string    `json:"verification_uri"`
	UserCode        string    `json:"user_code"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// LogoutRequest is the body of POST /v1/logout.
type LogoutRequest struct {
	Tenant string `json:"tenant"`
}

// ImportRequest is the body of POST /v1/import.
type ImportRequest struct {
	Tenant       string `json:"tenant"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientKey    string `json:"client_key,omitempty"`
}

// Error is a failure the agent answered, or an answer the client could not
// use (Status 0).
type Error = wire.Error

// HTTPStatus returns the HTTP status the agent answers for an error code.
func HTTPStatus(code string) int {
	switch code {
	case CodeBadRequest, CodeUnsatisfiable:
		return 400
	case CodeBadCredentials, CodeBadClient:
		return 401
	case CodeForbidden:
		return 403
	case CodeNotFound, CodeUnknownTenant:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeLoginRequired, CodeDeviceExpired:
		return 409
	case CodeTooLarge:
		return 413
	case CodeUpstreamUnavailable:
		return 503
	default:
		return 500
	}
}
