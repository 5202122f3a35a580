package ipc

import "time"

// Paths of the HTTP API. Every path is versioned.
const (
	PathToken  = "/v1/token"  // GET  ?tenant=T&min_valid=S
	PathStatus = "/v1/status" // GET
	PathLogin  = "/v1/login"  // POST LoginRequest
	PathLogout = "/v1/logout" // POST LogoutRequest
	PathImport = "/v1/import" // POST ImportRequest
	PathReload = "/v1/reload" // POST
	PathLease  = "/v1/lease"  // POST LeaseRequest
)

// Error codes, carried by error answers of both exchanges. Clients branch
// on codes, never on messages.
const (
	CodeLoginRequired       = "login_required"          // no usable session; log in
	CodeUnknownTenant       = "unknown_tenant"          // tenant not configured and not logged in
	CodeUpstreamUnavailable = "upstream_unavailable"    // upstream failed transiently and no token is valid long enough
	CodeBadRequest          = "bad_request"             // malformed request
	CodeForbidden           = "forbidden"               // peer is another user
	CodeNotFound            = "not_found"               // no such path
	CodeMethodNotAllowed    = "method_not_allowed"      // wrong method for a path
	CodeTooLarge            = "too_large"               // request over the size limit
	CodeBadCredentials      = "bad_credentials"         // upstream rejected the username or password
	CodeBadClient           = "bad_client"              // upstream rejected the OAuth client id or key
	CodeUnsatisfiable       = "min_valid_unsatisfiable" // even a fresh token would not live min_valid
	CodeDeviceExpired       = "device_code_expired"     // device code expired before approval
	CodeClientNeeded        = "client_needed"           // no OAuth client, and no token to register one with
	CodeLoginFlow           = "login_flow_not_allowed"  // the tenant does not allow the login asked for
	CodeInternal            = "internal"                // anything else
)

// Hints that name the next step for the user. Every error carries one.
const (
	HintStart     = `start the agent: eval "$(tapis-agent start)", or systemctl --user start tapis-agent.socket`
	HintForbidden = `run tapis-token as the user who started the agent, or start an agent of your own: eval "$(tapis-agent start)"`
	HintVersion   = "the client does not speak this agent's API: compare tapis-token version with tapis-agent version, and restart the agent after an upgrade (tapis-agent stop; tapis-agent start)"
	HintTooLarge  = "a request is at most 64 KiB: pass a single token or key (tapis-token import reads one line each)"
	HintLog       = "the agent's log says why: journalctl --user -u tapis-agent, or ~/.local/state/tapis-agent/agent.log for an agent started by tapis-agent start"
	HintLogin     = "tapis-token login TENANT"
	HintUpstream  = "Tapis did not answer; try again in a minute, and see tapis-token status"
	HintStatus    = "tapis-token status shows the agent's tenants and their last errors"
)

// codes holds each error code's HTTP status and default hint. An array,
// not a map: it needs no initialisation at each start of tapis-token.
var codes = [...]codeInfo{
	{CodeBadRequest, 400, HintStatus},
	{CodeUnsatisfiable, 400, HintStatus},
	{CodeBadCredentials, 401, HintLogin},
	{CodeBadClient, 401, HintStatus},
	{CodeForbidden, 403, HintForbidden},
	{CodeNotFound, 404, HintVersion},
	{CodeUnknownTenant, 404, "tapis-token status lists the tenants; tapis-token login TENANT adds one"},
	{CodeMethodNotAllowed, 405, HintVersion},
	{CodeLoginRequired, 409, HintLogin},
	{CodeDeviceExpired, 409, HintStatus},
	{CodeClientNeeded, 409, HintStatus},
	{CodeLoginFlow, 400, HintStatus},
	{CodeTooLarge, 413, HintTooLarge},
	{CodeUpstreamUnavailable, 503, HintUpstream},
	{CodeInternal, 500, HintLog},
}

// HTTPStatus returns the HTTP status the agent answers for an error code:
// 500 for a code it does not know.
func HTTPStatus(code string) int { return lookup(code).status }

// Hint returns the default hint for an error code, for an error that came
// without one: every error names a next step.
func Hint(code string) string { return lookup(code).hint }

type codeInfo struct {
	code   string
	status int
	hint   string
}

func lookup(code string) codeInfo {
	for _, c := range codes {
		if c.code == code {
			return c
		}
	}
	return codeInfo{code, 500, HintStatus}
}

// Error is an error answered by the agent, or produced by a client for an
// answer it could not use. Callers branch on Code.
type Error struct {
	Status  int // HTTP status of an HTTP answer; 0 for a frame or when produced locally
	Code    string
	Message string
	Hint    string
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is the JSON body of every non-2xx HTTP answer:
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

// TokenResponse is a token answer: the body of GET /v1/token, and the
// fields of a token frame's answer.
type TokenResponse struct {
	Tenant      string    `json:"tenant"`
	BaseURL     string    `json:"base_url"`
	Username    string    `json:"username"`
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"` // RFC 3339
	ExpiresIn   int64     `json:"expires_in"` // seconds remaining when answered
}

// Session states of a tenant.
const (
	StateLoginRequired  = "login_required"
	StateReady          = "ready"
	StateAccessOnly     = "access_only"
	StateExpired        = "expired"
	StateRefreshing     = "refreshing"
	StateRetrying       = "retrying"
	StateDevicePending  = "device_pending"
	StateBrowserPending = "browser_pending"
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
	// Leases are the batch jobs the agent keeps a token file for.
	Leases []LeaseStatus `json:"leases,omitempty"`
	// Warnings concern the agent as a whole, such as memory not locked or
	// the leases an earlier agent left behind; each says what to do.
	Warnings []string `json:"warnings,omitempty"`
}

// TenantStatus describes one tenant's session. It never holds a secret.
type TenantStatus struct {
	Tenant          string     `json:"tenant"`
	BaseURL         string     `json:"base_url"`
	Username        string     `json:"username,omitempty"`
	ClientID        string     `json:"client_id,omitempty"`
	State           string     `json:"state"`
	Default         bool       `json:"default,omitempty"`
	AccessExpiresAt *time.Time `json:"access_expires_at,omitempty"`
	// AccessIssuedAt is when the access token was issued: with
	// AccessExpiresAt, the tenant's token lifetime (Tapis tokens carry
	// no iat claim).
	AccessIssuedAt   *time.Time `json:"access_issued_at,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_expires_at,omitempty"`
	LastRefresh      *time.Time `json:"last_refresh,omitempty"`
	NextRefresh      *time.Time `json:"next_refresh,omitempty"`
	RefreshCount     int        `json:"refresh_count"`
	LastError        string     `json:"last_error,omitempty"`
	Warnings         []string   `json:"warnings,omitempty"`
	// Device is set while a device-code login waits for the user.
	Device *DeviceCode `json:"device,omitempty"`
	// Browser is set while a browser login waits for the user.
	Browser *BrowserLogin `json:"browser,omitempty"`
	// ClientDeleted names the OAuth client a logout deleted upstream.
	ClientDeleted string `json:"client_deleted,omitempty"`
}

// LoginRequest is the body of POST /v1/login. With Device set the agent
// starts a device-code flow and answers with LoginResponse.Device; with
// Browser, an authorization-code flow answered with LoginResponse.Browser;
// with Probe, it only asks the tenant which logins it allows; otherwise it
// performs the password grant with Username and Password.
type LoginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Device   bool   `json:"device,omitempty"`
	Browser  bool   `json:"browser,omitempty"`
	// Probe checks that the tenant answers as a Tapis authenticator and
	// answers with LoginResponse.GrantTypes, within 10 s.
	Probe bool `json:"probe,omitempty"`
	// BootstrapToken is an access token (from the tenant's Token Web App)
	// the agent may use once to find or register its OAuth client for
	// this host, when it has none.
	BootstrapToken string `json:"bootstrap_token,omitempty"`
	// Flow names the browser login a Wait or Cancel is about.
	Flow     string `json:"flow,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// ClientKey is the key of ClientID, needed to refresh the tokens a
	// device-code login obtains; empty means the key from the config.
	ClientKey string `json:"client_key,omitempty"`
	// Wait, with Device or Browser, starts nothing: it waits a while for
	// the tenant's login in progress (with Browser, the one Flow names) to
	// end, and answers with its outcome, or with LoginResponse.Device or
	// Browser set while it is still pending.
	Wait bool `json:"wait,omitempty"`
	// Cancel, with Device or Browser, abandons the login in progress; a
	// session the tenant already had is kept.
	Cancel bool `json:"cancel,omitempty"`
}

// LoginResponse answers POST /v1/login.
type LoginResponse struct {
	Tenant     TenantStatus  `json:"tenant"`
	Device     *DeviceCode   `json:"device,omitempty"`
	Browser    *BrowserLogin `json:"browser,omitempty"`
	GrantTypes []string      `json:"grant_types,omitempty"` // a Probe's answer
}

// BrowserLogin is what a user needs to finish a browser login: the
// address to open, and the loopback port the agent listens on for the
// redirect (forward it with ssh -L when the browser runs elsewhere).
type BrowserLogin struct {
	Flow      string    `json:"flow"`
	URL       string    `json:"url"`
	Port      int       `json:"port"`
	ExpiresAt time.Time `json:"expires_at"`
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

// ImportRequest is the body of POST /v1/import: an access token alone, a
// refresh token with the client it was issued to, or a username and
// password to log in with (through ClientID when given, else the agent's
// own client), as other tools left them.
type ImportRequest struct {
	Tenant       string `json:"tenant"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientKey    string `json:"client_key,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	// BaseURL is the tenant address the source names, if it names one;
	// the agent refuses the import when it is not the tenant's.
	BaseURL string `json:"base_url,omitempty"`
	// Source names where the credentials came from, for the log (e.g.
	// "environment", "~/.agave/current"); never a secret.
	Source string `json:"source,omitempty"`
}

// LeaseRequest is the body of POST /v1/lease: keep a token of Tenant in a
// file for the batch job Job while it is pending or running (the agent asks
// Slurm), or until Until when that is set (the scheduler is not asked).
type LeaseRequest struct {
	Tenant string `json:"tenant"`
	Job    string `json:"job"`
	// Until ends the lease at that time instead of when Slurm says the
	// job ended.
	Until *time.Time `json:"until,omitempty"`
	// Path is the token file, absolute; "" means the default under the
	// agent's state directory (lease.DefaultPath).
	Path string `json:"path,omitempty"`
	// MinValid is the validity in seconds the file's token keeps while the
	// lease lasts; 0 means the default.
	MinValid int64 `json:"min_valid,omitempty"`
	// Cancel ends the lease of Job and Tenant now and removes its file.
	Cancel bool `json:"cancel,omitempty"`
}

// Lease job states beyond Slurm's own (PENDING, RUNNING, …).
const (
	JobUnknown = "UNKNOWN" // Slurm does not know the job (yet, or any more)
	JobUntil   = "UNTIL"   // a lease with an end time; no scheduler is asked
	JobEnded   = "ENDED"   // the lease is over and its file removed
)

// LeaseStatus describes one lease. It never holds a secret.
type LeaseStatus struct {
	Job      string     `json:"job"`
	Tenant   string     `json:"tenant"`
	Path     string     `json:"path"`
	MinValid int64      `json:"min_valid"` // seconds
	Until    *time.Time `json:"until,omitempty"`
	// JobState is what Slurm last said of the job (PENDING, RUNNING,
	// COMPLETED, …), or JobUnknown, JobUntil or JobEnded.
	JobState  string     `json:"job_state"`
	CheckedAt *time.Time `json:"checked_at,omitempty"` // when Slurm last answered about the job
	// TokenExpiresAt is the expiry of the token in the file, WrittenAt
	// when it was written, NextWrite when the agent rewrites it at the
	// latest.
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
	WrittenAt      *time.Time `json:"written_at,omitempty"`
	NextWrite      *time.Time `json:"next_write,omitempty"`
	// LastError says why the file could not be kept current, or why
	// Slurm could not be asked; "" when all is well.
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Per-call timeouts of the clients. The agent bounds its own work a little
// below these, so a slow call ends with the agent's answer rather than the
// client's timeout.
const (
	TokenTimeout   = 60 * time.Second
	LoginTimeout   = 5 * time.Minute
	DefaultTimeout = 30 * time.Second
)
