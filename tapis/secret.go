package tapis

import (
	"fmt"
	"log/slog"
)

// Secret holds a credential: an access or refresh token, a password or a
// client key. It prints as REDACTED through fmt, log/slog and
// encoding/json, so a secret that reaches a log line or an error by
// mistake shows nothing. Reveal returns the value for the one place that
// needs it (a request body, a header).
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether s is empty.
func (s Secret) IsZero() bool { return s == "" }

// String returns REDACTED.
func (s Secret) String() string { return redacted }

// GoString returns REDACTED, so %#v hides the value too.
func (s Secret) GoString() string { return redacted }

// Format prints REDACTED for every verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }

// LogValue returns REDACTED for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes REDACTED: a Secret is never serialised by accident.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
