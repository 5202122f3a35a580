package ipcserver

import (
	"strconv"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// appendTokenJSON appends t as json.Marshal writes it, for the answer the
// agent gives most often: encoding/json's reflection costs a token answer
// about a tenth of its round trip. It reports false, having appended
// nothing, for a value it does not write byte for byte as encoding/json
// would (a string with anything but printable ASCII that needs no escape,
// a time not in UTC or outside the years 0–9999); encodeAnswer then uses
// encoding/json. The agent's answers are in UTC.
func appendTokenJSON(b []byte, t *ipc.TokenResponse) ([]byte, bool) {
	y := t.ExpiresAt.Year()
	if _, off := t.ExpiresAt.Zone(); off != 0 || y < 0 || y > 9999 {
		return b, false
	}
	for _, s := range []string{t.Tenant, t.BaseURL, t.Username, t.AccessToken} {
		if !plainJSON(s) {
			return b, false
		}
	}
	b = append(b, `{"tenant":"`...)
	b = append(b, t.Tenant...)
	b = append(b, `","base_url":"`...)
	b = append(b, t.BaseURL...)
	b = append(b, `","username":"`...)
	b = append(b, t.Username...)
	b = append(b, `","access_token":"`...)
	b = append(b, t.AccessToken...)
	b = append(b, `","expires_at":"`...)
	b = t.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","expires_in":`...)
	b = strconv.AppendInt(b, t.ExpiresIn, 10)
	return append(b, '}'), true
}

// plainJSON reports whether encoding/json writes s between quotes as it
// is: printable ASCII without the characters it escapes (" and \, and <, >
// and & for HTML).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
