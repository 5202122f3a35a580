package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// DefaultDevicePoll is how often a device-code login asks upstream whether
// the user has approved it. Tapis sends no polling interval; 5 s is the
// OAuth device grant's default (RFC 8628).
const DefaultDevicePoll = 5 * time.Second

// deviceLifetime is assumed when upstream gives no expiry for a device
// code: Tapis codes live 600 s.
const deviceLifetime = 600 * time.Second

// deviceFlow is one device-code login, or with browser set a browser
// login: what the user is shown, and the goroutine that waits for the
// outcome. For a device-code login: the code shown to the user and the
// goroutine polling upstream until approval, expiry or cancellation.
type deviceFlow struct {
	code    ipc.DeviceCode
	browser *ipc.BrowserLogin // set for a browser login instead of code
	cancel  context.CancelFunc
	done    chan struct{} // closed when the flow ended; err is set before
	err     error         // nil when it ended in a session
}

// pending reports whether the flow still waits for the user.
func (f *deviceFlow) pending() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// abandon stops a pending flow and waits for it to end. It reports whether
// the flow was pending.
func (f *deviceFlow) abandon() bool {
	if !f.pending() {
		return false
	}
	f.cancel()
	<-f.done
	return true
}

// errDeviceAbandoned ends a flow cancelled by the user.
var errDeviceAbandoned = errors.New("abandoned")

// loginDevice answers the device-code variants of POST /v1/login: start a
// flow, wait for its outcome, or cancel it.
func (a *Agent) loginDevice(ctx context.Context, name string, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	var f *deviceFlow
	a.mu.Lock()
	if ts := a.tenants[name]; ts != nil {
		f = ts.flow
	}
	a.mu.Unlock()
	switch {
	case req.Cancel:
		if f != nil && f.abandon() {
			a.log.Info("device_login_abandoned", "tenant", name)
		}
		return &ipc.LoginResponse{Tenant: a.tenantStatus(name)}, nil
	case req.Wait:
		if f == nil || f.browser != nil {
			return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": no device-code login in progress",
				Hint: "tapis-token login " + name + " --device"}
		}
		return a.waitFlow(ctx, name, f)
	}
	return a.startDevice(ctx, name, req)
}

// startDevice starts a device-code flow and answers with the code to show.
func (a *Agent) startDevice(ctx context.Context, name string, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	t := a.Config().TenantOrDefault(name)
	api, err := a.newAPI(t)
	if err != nil {
		return nil, err
	}
	fc, err := a.resolveClient(ctx, name, t, api, req, "--device")
	if err != nil {
		return nil, err
	}
	creds, id := fc.creds, fc.creds.ID
	dc, err := api.StartDevice(ctx, id)
	if err != nil {
		a.failedLogin(ctx, name, api, fc)
		var te *tapis.Error
		if errors.As(err, &te) && tapis.IsDefinitive(err) {
			return nil, &ipc.Error{Code: ipc.CodeBadClient,
				Message: fmt.Sprintf("%s: Tapis refused to start a device-code login for client %s (%s)", name, id, te.Message),
				Hint:    "check the client id; clients are listed by GET " + t.BaseURL + "/v3/oauth2/clients"}
		}
		return nil, a.upstreamError(name, "starting a device-code login", err)
	}
	deadline := dc.ExpiresAt
	if deadline.IsZero() {
		deadline = a.opts.Now().Add(deviceLifetime)
	}
	fctx, cancel := context.WithCancel(a.ctx)
	f := &deviceFlow{
		code:   ipc.DeviceCode{VerificationURI: dc.VerificationURI, UserCode: dc.UserCode, ExpiresAt: deadline.UTC()},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		cancel()
		return nil, errors.New("agent is shutting down")
	}
	ts := a.stateLocked(name)
	old := ts.flow
	ts.flow = f
	a.wg.Add(1)
	a.mu.Unlock()
	if old != nil && old.abandon() {
		a.log.Info("device_login_replaced", "tenant", name)
	}
	a.log.Info("device_login_started", "tenant", name, "client_id", id, "user_code", dc.UserCode,
		"expires_at", deadline.UTC().Format(time.RFC3339))
	go func() {
		defer a.wg.Done()
		defer cancel()
		f.err = a.pollDevice(fctx, name, t, api, dc, &creds, fc.registered, deadline)
		close(f.done)
	}()
	code := f.code
	st := a.tenantStatus(name)
	return &ipc.LoginResponse{Tenant: st, Device: &code}, nil
}

// pollDevice asks upstream every DevicePoll whether the user approved dc,
// until approval, the code's expiry or ctx ends. Upstream keeps answering
// "not ready" for a code that was never entered even after it expired, so
// the deadline is enforced here.
func (a *Agent) pollDevice(ctx context.Context, name string, t *config.Tenant, api *tapis.Client, dc *tapis.DeviceCode, creds *tapis.ClientCredentials, registered bool, deadline time.Time) error {
	log := a.log.With("tenant", name)
	expired := func() error {
		log.Warn("device_login_expired", "user_code", dc.UserCode)
		err := &ipc.Error{Code: ipc.CodeDeviceExpired,
			Message: fmt.Sprintf("%s: the device code %s expired at %s before it was approved", name, dc.UserCode, deadline.UTC().Format(time.RFC3339)),
			Hint:    fmt.Sprintf("tapis-token login %s --device, then approve the new code at the address shown before it expires", name)}
		a.setLoginErr(name, err.Message)
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		left := deadline.Sub(a.opts.Now())
		if left <= 0 {
			return expired()
		}
		timer.Reset(min(a.opts.DevicePoll, left))
		select {
		case <-ctx.Done():
			return &ipc.Error{Code: ipc.CodeLoginRequired, Message: name + ": the device-code login was " + errDeviceAbandoned.Error(),
				Hint: "tapis-token login " + name + " --device"}
		case <-timer.C:
		}
		if !a.opts.Now().Before(deadline) {
			return expired()
		}
		tok, err := api.PollDevice(ctx, dc)
		var te *tapis.Error
		switch {
		case err == nil:
			return a.finishDevice(name, api, creds, registered, tok)
		case errors.Is(err, tapis.ErrDeviceNotReady):
			continue
		case ctx.Err() != nil:
			continue // reported at the top of the loop
		case errors.As(err, &te) && te.Reason == tapis.ReasonDeviceExpired:
			return expired()
		case tapis.IsTransient(err):
			log.Warn("device_poll_failed", "err", err, "transient", true)
			continue
		}
		log.Warn("device_login_failed", "err", err)
		ie := a.upstreamError(name, "completing the device-code login", err).(*ipc.Error)
		a.setLoginErr(name, ie.Message)
		return ie
	}
}

// finishDevice installs the session a device-code login obtained.
func (a *Agent) finishDevice(name string, api *tapis.Client, creds *tapis.ClientCredentials, registered bool, tok *tapis.Token) error {
	if tok.RefreshToken.IsZero() {
		return &ipc.Error{Code: ipc.CodeInternal, Message: name + ": Tapis issued no refresh token for the device-code login",
			Hint: "tapis-token login " + name}
	}
	username := ""
	if c, err := jwt.Decode(tok.AccessToken.Reveal()); err == nil {
		username = c.Username()
	}
	cfg := a.Config()
	t := cfg.TenantOrDefault(name)
	s := a.newSession(sessionParams{name: name, tenant: t, api: api, username: username,
		client: creds, registered: registered, margin: cfg.RefreshMargin}, newTokenSet(tok, a.opts.Now()))
	if err := a.install(s); err != nil {
		return err
	}
	a.log.Info("login", "tenant", name, "username", username, "grant", "device_code", "jti", tok.AccessJTI)
	return nil
}

// tenantStatus returns the status entry of one tenant.
func (a *Agent) tenantStatus(name string) ipc.TenantStatus {
	st, _ := a.Status(context.Background())
	for _, t := range st.Tenants {
		if t.Tenant == name {
			return t
		}
	}
	t := a.Config().TenantOrDefault(name)
	return ipc.TenantStatus{Tenant: name, BaseURL: t.BaseURL, Username: t.Username, State: ipc.StateLoginRequired}
}

// setLoginErr records why a background login of name failed; status shows
// it while the tenant has no session.
func (a *Agent) setLoginErr(name, msg string) {
	a.mu.Lock()
	a.stateLocked(name).loginErr = msg
	a.mu.Unlock()
}
