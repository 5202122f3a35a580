package wire

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeToken decodes the agent's answer to GET /v1/token into t, and
// decodeError an error answer's body, without encoding/json: a cold process
// pays for reflection-based decoding with about a tenth of tapis-token's
// run time, and keeping encoding/json out of the token path keeps it out of
// the helper's binary.
//
// They are stricter than encoding/json, never looser: whatever they
// accept, json.Unmarshal accepts too and decodes to the same value
// (FuzzDecodeToken and FuzzDecodeError check this), and they accept
// everything the agent sends. They refuse keys that match a field only
// without regard to case, null for a field, numbers other than plain
// integers for expires_in, invalid UTF-8, lone surrogates and nesting
// deeper than maxDepth.
func decodeToken(b []byte, t *TokenResponse) error {
	d := decoder{b: b, parseTime: (*time.Time).UnmarshalText}
	return d.whole(func(key string) error { return d.tokenField(key, t) })
}

// decodeAccessToken is decodeToken for the access token alone: it checks
// that expires_at is a string without escapes but does not parse it, so
// that a program using only it does not link time's parser. It accepts
// every answer decodeToken accepts, with the same token.
func decodeAccessToken(b []byte) (string, error) {
	var t TokenResponse
	d := decoder{b: b}
	err := d.whole(func(key string) error { return d.tokenField(key, &t) })
	return t.AccessToken, err
}

// decodeError decodes the body of an error answer,
// {"error":{"code":…,"message":…,"hint":…}}, into e.
func decodeError(b []byte, e *ErrorDetail) error {
	d := decoder{b: b}
	return d.whole(func(key string) error {
		if key != "error" {
			return d.unknown(key, "error")
		}
		return d.object(func(key string) error {
			var dst *string
			switch key {
			case "code":
				dst = &e.Code
			case "message":
				dst = &e.Message
			case "hint":
				dst = &e.Hint
			default:
				return d.unknown(key, "code", "message", "hint")
			}
			s, err := d.str()
			*dst = s
			return err
		})
	})
}

var errJSON = errors.New("invalid JSON answer")

// maxDepth bounds the nesting of values skipped for unknown keys.
const maxDepth = 32

type decoder struct {
	b         []byte
	i         int
	parseTime func(*time.Time, []byte) error // nil: leave times unparsed
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c,
// consuming it if so.
func (d *decoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// whole decodes b as one object, calling field for each key with the
// decoder at its value, and refuses anything after it but white space.
func (d *decoder) whole(field func(key string) error) error {
	if err := d.object(field); err != nil {
		return err
	}
	d.space()
	if d.i != len(d.b) {
		return errJSON
	}
	return nil
}

// object decodes an object, calling field for each key with the decoder
// at its value; field must consume the value.
func (d *decoder) object(field func(key string) error) error {
	if !d.next('{') {
		return errJSON
	}
	if d.next('}') {
		return nil
	}
	for {
		d.space()
		key, err := d.str()
		if err != nil || !d.next(':') {
			return errJSON
		}
		d.space()
		if err := field(key); err != nil {
			return err
		}
		if d.next('}') {
			return nil
		}
		if !d.next(',') {
			return errJSON
		}
	}
}

// unknown skips the value of a key that names none of fields, and refuses
// a key that encoding/json would match to one of them by case folding.
func (d *decoder) unknown(key string, fields ...string) error {
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return errJSON
		}
	}
	return d.skip(0)
}

// tokenField decodes the value of key into t, or skips it for an unknown
// key.
func (d *decoder) tokenField(key string, t *TokenResponse) error {
	var dst *string
	switch key {
	case "tenant":
		dst = &t.Tenant
	case "base_url":
		dst = &t.BaseURL
	case "username":
		dst = &t.Username
	case "access_token":
		dst = &t.AccessToken
	case "expires_at":
		// time.Time's UnmarshalJSON parses the text between the quotes
		// as it stands, escapes and all; UnmarshalText does the same.
		start := d.i
		if _, err := d.str(); err != nil {
			return err
		}
		raw := d.b[start+1 : d.i-1]
		if bytes.IndexByte(raw, '\\') >= 0 || d.parseTime != nil && d.parseTime(&t.ExpiresAt, raw) != nil {
			return errJSON
		}
		return nil
	case "expires_in":
		n, err := d.integer()
		if err != nil {
			return err
		}
		t.ExpiresIn = n
		return nil
	default:
		return d.unknown(key, "tenant", "base_url", "username", "access_token", "expires_at", "expires_in")
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	*dst = s
	return nil
}

// str decodes a string at the current position.
func (d *decoder) str() (string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", errJSON
	}
	d.i++
	start := d.i
	// The common case: no escapes.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return "", errJSON
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", errJSON
		}
		d.i++
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return "", errJSON
			}
			return string(out), nil
		case c < 0x20:
			return "", errJSON
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return "", errJSON
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", errJSON
			}
			if utf16.IsSurrogate(r) {
				if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
					return "", errJSON
				}
				d.i += 2
				r2, ok := d.hex4()
				if !ok {
					return "", errJSON
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", errJSON
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errJSON
		}
	}
	return "", errJSON
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}

// integer decodes -?(0|[1-9][0-9]*) within the range of int64.
func (d *decoder) integer() (int64, error) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i == digits || (d.b[digits] == '0' && d.i-digits > 1) {
		return 0, errJSON
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, errJSON
		}
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return 0, errJSON
	}
	return n, nil
}

// skip skips one valid JSON value, nested at most maxDepth deep.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth || d.i >= len(d.b) {
		return errJSON
	}
	switch c := d.b[d.i]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.i++
		if d.next(end) {
			return nil
		}
		for {
			d.space()
			if c == '{' {
				if _, err := d.str(); err != nil || !d.next(':') {
					return errJSON
				}
				d.space()
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if d.next(end) {
				return nil
			}
			if !d.next(',') {
				return errJSON
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
			d.i += len(lit)
			return nil
		}
	}
	return errJSON
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() error {
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.b) {
		return errJSON
	}
	if d.b[d.i] == '0' {
		d.i++
	} else if !d.digits() {
		return errJSON
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if !d.digits() {
			return errJSON
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return errJSON
		}
	}
	return nil
}

// digits consumes [0-9]+ and reports whether there was at least one.
func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}
