// Package secret holds credentials so that they never print: an access or
// refresh token, a password, a client key or a device code is a Value,
// which shows as REDACTED through fmt, log/slog and encoding/json.
//
// It imports nothing of tapis-agent, so every package may use it: the
// upstream client, the config loader and the agent.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Value prints instead of itself, and what replaces a
// secret that upstream echoes in a message.
const Redacted = "REDACTED"

// Value is a credential. A Value that reaches a log line or an error by
// mistake shows nothing; Reveal returns the credential for the one place
// that needs it (a request body, a header). The zero value is the empty
// credential.
//
// Go strings cannot be overwritten in place: dropping every reference to a
// Value is what wiping it means.
type Value string

// Reveal returns the credential.
func (s Value) Reveal() string { return string(s) }

// IsZero reports whether s is empty.
func (s Value) IsZero() bool { return s == "" }

// String returns Redacted.
func (s Value) String() string { return Redacted }

// GoString returns Redacted, so %#v hides the value too.
func (s Value) GoString() string { return Redacted }

// Format prints Redacted for every verb.
func (s Value) Format(f fmt.State, verb rune) { fmt.Fprint(f, Redacted) }

// LogValue returns Redacted for log/slog.
func (s Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes Redacted: a Value is never serialised by accident.
func (s Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
