package tapistest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Device codes live 600 s; the authenticator allows 6 s of grace (§6.3).
const (
	deviceLifetime = 600 * time.Second
	deviceGrace    = 6 * time.Second
)

// device is an issued device code.
type device struct {
	code     string
	userCode string
	clientID string
	issued   time.Time
	entered  bool          // the user typed the user code: the code is redeemable
	user     string        // who entered it; "" means the client's owner
	ttl      time.Duration // access TTL chosen at approval; 0 → tenant default
}

// deviceByUserCodeLocked returns the device code with this user code, or
// nil. User codes are case-sensitive (tapis-flows.md §4.2).
func (s *Server) deviceByUserCodeLocked(userCode string) *device {
	for _, d := range s.devices {
		if d.userCode == userCode {
			return d
		}
	}
	return nil
}

// ErrUnknownUserCode is returned by ApproveDevice for a user code that was
// never issued, was already used, or has expired.
var ErrUnknownUserCode = errors.New("tapistest: unknown or expired user code")

func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	fields, good := readJSONObject(w, r)
	if !good {
		return
	}
	id, has := fields["client_id"]
	s.mu.Lock()
	// The lookup ignores the tenant and the active flag.
	if !has || s.clientLocked(id) == nil {
		s.mu.Unlock()
		if !has {
			id = "None"
		}
		fail(w, "Invalid client: "+id)
		return
	}
	d := &device{
		code:     randomString(40, lettersDigits),
		userCode: randomString(8, letters),
		clientID: id,
		issued:   s.now(),
	}
	s.devices[d.code] = d
	s.mu.Unlock()
	ok(w, msgCreated, struct {
		ClientID        string `json:"client_id"`
		DeviceCode      string `json:"device_code"`
		ExpiresIn       string `json:"expires_in"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
	}{
		ClientID:        id,
		DeviceCode:      d.code,
		ExpiresIn:       d.issued.Add(deviceLifetime).UTC().Format(http.TimeFormat),
		UserCode:        d.userCode,
		VerificationURI: s.url + "/v3/oauth2/device?client_id=" + url.QueryEscape(id),
	})
}

// ApproveDevice plays the user who entered userCode and approved it on
// the authorize page with the default TTL of 30 days (DeviceTTL): the
// next poll for its device code succeeds once. The tokens are issued to
// the owner of the code's client.
func (s *Server) ApproveDevice(userCode string) error {
	return s.ApproveDeviceTTL(userCode, DeviceTTL)
}

// ApproveDeviceTTL is ApproveDevice with the access TTL the user chose;
// ttl 0 gives the tenant's default access TTL (a poller that wins as soon
// as the code is entered, §6.3).
func (s *Server) ApproveDeviceTTL(userCode string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	d := s.deviceByUserCodeLocked(userCode)
	if d == nil || now.After(d.issued.Add(deviceLifetime+deviceGrace)) {
		return fmt.Errorf("approving %s: %w", userCode, ErrUnknownUserCode)
	}
	d.entered = true
	d.ttl = ttl
	return nil
}

// UserCodes returns the user codes of the device codes issued and not yet
// used or expired, oldest first: what a user would read off the terminal.
func (s *Server) UserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := make([]*device, 0, len(s.devices))
	for _, d := range s.devices {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b *device) int { return a.issued.Compare(b.issued) })
	var out []string
	for _, d := range ds {
		out = append(out, d.userCode)
	}
	return out
}

// deviceGrant answers a device_code poll: rows 5 to 10 of §2.6, in order.
func (s *Server) deviceGrant(w http.ResponseWriter, req *tokenRequest) {
	if str(req.ClientID) == "" {
		fail(w, msgNoClientID)
		return
	}
	if str(req.DeviceCode) == "" {
		fail(w, msgNoDeviceCode)
		return
	}
	s.mu.Lock()
	d := s.devices[*req.DeviceCode]
	var msg string
	now := s.now()
	switch {
	case d == nil:
		msg = msgDeviceNotValid
	// Readiness is checked before expiry: a code never entered keeps
	// answering "not ready" after it expired.
	case !d.entered && !(s.approveAfter > 0 && !now.Before(d.issued.Add(s.approveAfter))):
		msg = msgDeviceNotReady
	case now.After(d.issued.Add(deviceLifetime + deviceGrace)):
		delete(s.devices, d.code)
		msg = msgDeviceExpired
	case d.clientID != *req.ClientID:
		msg = msgDeviceMismatch
	default:
		delete(s.devices, d.code) // one-shot
	}
	var user string
	if d != nil {
		// The user who typed the code; without one (ApproveDevice, the
		// automatic approval) the client's owner.
		user = d.user
		if c := s.clientLocked(d.clientID); user == "" && c != nil {
			user = c.Owner
		}
	}
	s.mu.Unlock()
	if msg != "" {
		fail(w, msg)
		return
	}
	res, err := s.mint(mintRequest{username: user, clientID: d.clientID, grant: "device_code", withRefresh: true, accessTTL: d.ttl})
	if err != nil {
		crash(w, err.Error())
		return
	}
	ok(w, msgCreated, res)
}
