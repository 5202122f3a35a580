package tapis_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/tapis"
)

// TestMessageClassification feeds every message of tapis-protocol.md §2.6
// and §7.2 (and the other endpoints' errors) through a raw server and
// checks the classification the agent's retry policy depends on.
func TestMessageClassification(t *testing.T) {
	const (
		T = true  // transient
		D = false // definitive
	)
	cases := []struct {
		row    string
		status int
		msg    string
		reason tapis.Reason
		trans  bool
	}{
		{"2.6#1", 500, "Unrecognized exception type: <class 'AttributeError'>. Exception: 'NoneType' object has no attribute 'startswith'", tapis.ReasonUpstream, T},
		{"2.6#2 schema", 400, "Invalid POST data: [InvalidSchemaValue(value={'password': 'hunter2'})].", tapis.ReasonBadRequest, D},
		{"2.6#2 media", 400, "Invalid POST data: [MediaTypeNotFound(...)].", tapis.ReasonBadRequest, D},
		{"2.6#3", 400, "Missing the required grant_type parameter.", tapis.ReasonBadRequest, D},
		{"2.6#4", 400, "Invalid grant_type (device_code); this grant type is not allowed for this tenant. Allowable grant types: ['password', 'implicit', 'authorization_code', 'refresh_token']", tapis.ReasonGrantNotAllowed, D},
		{"2.6#5", 400, "Required client_id parameter missing.", tapis.ReasonBadRequest, D},
		{"2.6#6", 400, "Required device_code parameter missing.", tapis.ReasonBadRequest, D},
		{"2.6#7", 400, "device code not valid.", tapis.ReasonDeviceInvalid, D},
		{"2.6#9", 400, "device code has expired and is now deleted.", tapis.ReasonDeviceExpired, D},
		{"2.6#10", 400, "Client IDs do not match between device code and passed in client_id", tapis.ReasonDeviceInvalid, D},
		{"2.6#10 AUTH25", 400, "Device code client id and passed in client id do not match", tapis.ReasonDeviceInvalid, D},
		{"2.6#11", 400, "Invalid client credentials: myclient1, mykey1. session: <SecureCookieSession {}>", tapis.ReasonBadClient, D},
		{"2.6#11 none", 400, "Invalid client credentials: None, None. session: <SecureCookieSession {}>", tapis.ReasonBadClient, D},
		{"2.6#12", 400, "Missing required payload data; username and password are required for the password grant type.", tapis.ReasonBadRequest, D},
		{"2.6#13", 400, "Invalid username/password combination.", tapis.ReasonBadCredentials, D},
		{"2.6#14", 400, "Invalid username; user jdoe does not have access to the dev tenant.", tapis.ReasonBadCredentials, D},
		{"2.6#15", 400, "Required redirect_uri parameter missing.", tapis.ReasonBadRequest, D},
		{"2.6#16", 400, "Required refresh_token parameter missing.", tapis.ReasonBadRequest, D},
		{"2.6#17", 400, "Invalid refresh_token.", tapis.ReasonInvalidRefreshToken, D},
		{"2.6#18", 400, "Invalid token type. The refresh_token grant type required a token of type refresh. Instead a token of type access was passed.", tapis.ReasonInvalidRefreshToken, D},
		{"2.6#19", 400, "Invalid refresh_token format; this token was missing the access_token claim.", tapis.ReasonInvalidRefreshToken, D},
		{"2.6#19 AUTH25", 400, "Refresh token did NOT have an access_token claim.", tapis.ReasonInvalidRefreshToken, D},
		{"2.6#20", 400, "client_id from header (a) does not match the client_id in the token claim (b).", tapis.ReasonBadClient, D},
		{"2.6#21", 500, "Unrecognized exception type: <class 'TypeError'>. Exception: unsupported operand type(s) for +: 'NoneType' and 'int'", tapis.ReasonUpstream, T},
		{"2.6#22", 400, "Invalid grant_type", tapis.ReasonBadRequest, D},
		{"2.6#23 generate", 400, "Failure to generate an access token; please try again later.", tapis.ReasonUpstream, T},
		{"2.6#23 parse", 400, "Failure to parse access token response; please try again later.", tapis.ReasonUpstream, T},
		{"2.1 tenant", 400, "The request is for a tenant (x) that is not served by this authenticator.", tapis.ReasonNotFound, D},
		{"1.3 method", 400, "The endpoint and HTTP method combination are not available from this service.", tapis.ReasonBadRequest, D},
		{"7.2 missing", 400, "No Tapis access token found in the request.", tapis.ReasonInvalidAccessToken, D},
		{"7.2 parse", 400, "Could not parse the Tapis access token.", tapis.ReasonInvalidAccessToken, D},
		{"7.2 tenant claim", 400, "Unable to process Tapis token; could not parse the tenant_id. It is possible the token is in a format no longer supported by the platform.", tapis.ReasonInvalidAccessToken, D},
		{"7.2 unknown tenant", 400, "Unable to process Tapis token; unexpected tenant_id.", tapis.ReasonInvalidAccessToken, D},
		{"7.2 invalid", 400, "Invalid Tapis token.", tapis.ReasonInvalidAccessToken, D},
		{"7.2 tenant mismatch", 400, "The tenant_id claim in the token, a does not match the URL tenant, b.", tapis.ReasonInvalidAccessToken, D},
		{"4 duplicate", 400, "Invalid POST data; This change would violate uniqueness constraints. Details: Key (client_id)=(x) already exists.", tapis.ReasonClientExists, D},
		{"4 not found", 400, "No client found with id x.", tapis.ReasonNotFound, D},
		{"4 not authorized", 400, "Not authorized for this client.", tapis.ReasonForbidden, D},
		{"4 authorization header", 400, "Invalid call to get_tenant_config; either tenant_id or url must be passed.", tapis.ReasonBadRequest, D},
		{"6.2 form", 400, "Unable to parse message payload; is it JSON?", tapis.ReasonBadRequest, D},
		{"6.2 expired", 400, "Invalid POST data; could not validate the token: debug data: Could not parse the Tapis access token..", tapis.ReasonInvalidToken, D},
		{"6.3 client", 400, "Invalid client: x", tapis.ReasonBadClient, D},
		{"unknown 400", 400, "Something new.", tapis.ReasonBadRequest, D},
		{"unknown 404 json", 404, "Not here.", tapis.ReasonBadRequest, D},
		{"503 json", 503, "Service unavailable.", tapis.ReasonUpstream, T},
	}
	for _, tc := range cases {
		t.Run(tc.row, func(t *testing.T) {
			c := newRaw(t, reply(tc.status, errorEnvelope(tc.msg)))
			_, err := c.Refresh(context.Background(), "rt", tapis.ClientCredentials{ID: "myclient1", Key: "mykey1"})
			e := asError(t, err)
			if e.Reason != tc.reason || e.Transient != tc.trans {
				t.Errorf("Reason, Transient = %q, %v; want %q, %v", e.Reason, e.Transient, tc.reason, tc.trans)
			}
			if tapis.IsTransient(err) != tc.trans || tapis.IsDefinitive(err) == tc.trans {
				t.Errorf("IsTransient %v, IsDefinitive %v; want %v, %v", tapis.IsTransient(err), tapis.IsDefinitive(err), tc.trans, !tc.trans)
			}
			if e.StatusCode != tc.status || e.Op != "refresh" {
				t.Errorf("StatusCode, Op = %d, %q; want %d, refresh", e.StatusCode, e.Op, tc.status)
			}
			for _, secret := range []string{"mykey1", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestDeviceNotReadyIsPending(t *testing.T) {
	c := newRaw(t, reply(400, errorEnvelope("device code not ready.")))
	dc := &tapis.DeviceCode{ClientID: "cid", DeviceCode: "dc"}
	_, err := c.PollDevice(context.Background(), dc)
	if !errors.Is(err, tapis.ErrDeviceNotReady) {
		t.Fatalf("PollDevice = %v; want ErrDeviceNotReady", err)
	}
	e := asError(t, err)
	if e.Kind() != tapis.KindPending || tapis.IsTransient(err) || tapis.IsDefinitive(err) {
		t.Errorf("Kind %v, IsTransient %v, IsDefinitive %v; want pending, false, false", e.Kind(), tapis.IsTransient(err), tapis.IsDefinitive(err))
	}
}

func TestClientCredentialsMessageSanitised(t *testing.T) {
	cases := []struct {
		msg, want string
	}{
		{"Invalid client credentials: myclient1, s3cr3tkey. session: <SecureCookieSession {}>",
			"tapis: refresh: 400: Invalid client credentials: myclient1, REDACTED."},
		{"Invalid client credentials: None, None. session: <SecureCookieSession {}>",
			"tapis: refresh: 400: Invalid client credentials: None, REDACTED."},
		// A key upstream echoes anywhere else is scrubbed too.
		{"Weird: s3cr3tkey and rtok", "tapis: refresh: 400: Weird: REDACTED and REDACTED"},
	}
	for _, tc := range cases {
		c := newRaw(t, reply(400, errorEnvelope(tc.msg)))
		_, err := c.Refresh(context.Background(), "rtok", tapis.ClientCredentials{ID: "myclient1", Key: "s3cr3tkey"})
		if err == nil || err.Error() != tc.want {
			t.Errorf("Refresh error = %v; want %q", err, tc.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	cases := []struct {
		err  *tapis.Error
		want string
	}{
		{&tapis.Error{Op: "refresh", StatusCode: 400, Message: "Invalid refresh_token."}, "tapis: refresh: 400: Invalid refresh_token."},
		{&tapis.Error{Op: "revoke", Err: errors.New("connection refused")}, "tapis: revoke: connection refused"},
		{&tapis.Error{Op: "sites", StatusCode: 500, Err: errors.New(`unexpected content type "text/html"`)}, `tapis: sites: 500: unexpected content type "text/html"`},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
	for k, want := range map[tapis.Kind]string{tapis.KindTransient: "transient", tapis.KindDefinitive: "definitive", tapis.KindPending: "pending", tapis.KindCanceled: "canceled", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q; want %q", int(k), got, want)
		}
	}
}
