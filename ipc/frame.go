package ipc

import (
	"bytes"
	"strconv"
	"time"
)

// The token frame; the package documentation describes it.
const (
	// frameMagic starts every frame, request or answer: the protocol and
	// its version.
	frameMagic = "@tapis-agent/1 "
	// MaxRequestBytes bounds a request frame, its LF included.
	MaxRequestBytes = 512
	// MaxAnswerBytes bounds an answer frame, its LF included.
	MaxAnswerBytes = 64 << 10
	// NoMinValid is the minimum validity of a request that names none:
	// the agent applies its default.
	NoMinValid time.Duration = -1
	// maxMinValid is the largest minimum validity a frame carries, in
	// seconds: the longest time.Duration.
	maxMinValid = int64(1<<63-1) / int64(time.Second)
)

// IsFrame reports whether a connection whose first byte is c carries a
// token frame rather than an HTTP request. No HTTP method can begin with
// '@', which is not a token character (RFC 9110).
func IsFrame(c byte) bool { return c == frameMagic[0] }

// AppendTokenRequest appends the request frame for a token of tenant (""
// for the agent's default tenant) valid for at least minValid, rounded up
// to whole seconds (negative: the agent's default). It returns an *Error
// with CodeBadRequest for a tenant the frame cannot carry.
func AppendTokenRequest(b []byte, tenant string, minValid time.Duration) ([]byte, error) {
	if tenant != "" && !isWord(tenant) {
		return b, &Error{Code: CodeBadRequest, Message: "tenant name " + strconv.Quote(tenant) + " is invalid; use lower-case letters, digits, '.', '_' and '-'",
			Hint: "tapis-token status lists the tenants"}
	}
	b = append(b, frameMagic+"token "...)
	if tenant == "" {
		b = append(b, '-')
	} else {
		b = append(b, tenant...)
	}
	b = append(b, ' ')
	if minValid < 0 {
		b = append(b, '-')
	} else {
		// Rounded up: never less than asked.
		secs := minValid / time.Second
		if minValid%time.Second != 0 {
			secs++
		}
		b = strconv.AppendInt(b, int64(secs), 10)
	}
	return append(b, '\n'), nil
}

// ParseTokenRequest parses a request frame, its LF included: the tenant
// ("" for the default tenant) and the minimum validity (NoMinValid for the
// default). For a frame it refuses, it returns the *Error to answer.
func ParseTokenRequest(line []byte) (tenant string, minValid time.Duration, err error) {
	body, err := frameBody(line, MaxRequestBytes)
	if err != nil {
		return "", 0, err
	}
	rest, ok := bytes.CutPrefix(body, []byte("token "))
	if !ok {
		return "", 0, badFrame("unknown request; this agent answers only token requests")
	}
	t, mv, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !isWord(string(t)) || !isWord(string(mv)) {
		return "", 0, badFrame("malformed token request: want TENANT and MIN_VALID")
	}
	if string(t) != "-" {
		tenant = string(t)
	}
	minValid = NoMinValid
	if string(mv) != "-" {
		n, ok := parseUint(mv, 10)
		if !ok || n > maxMinValid || (mv[0] == '0' && len(mv) > 1) {
			return "", 0, badFrame("MIN_VALID must be a whole number of seconds, at most " + strconv.FormatInt(maxMinValid, 10))
		}
		minValid = time.Duration(n) * time.Second
	}
	return tenant, minValid, nil
}

// AppendTokenAnswer appends the answer frame of t. It reports false, having
// appended nothing, when t does not fit a frame: an expiry before 1970, or
// an answer over MaxAnswerBytes.
func AppendTokenAnswer(b []byte, t *TokenResponse) ([]byte, bool) {
	sec, nsec := t.ExpiresAt.Unix(), t.ExpiresAt.Nanosecond()
	if sec < 0 {
		return b, false
	}
	start := len(b)
	b = append(b, frameMagic+"ok "...)
	b = strconv.AppendInt(b, t.ExpiresIn, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sec, 10)
	if nsec != 0 {
		frac := strconv.AppendInt(nil, int64(nsec)+1e9, 10)[1:] // nine digits
		b = append(b, '.')
		b = append(b, bytes.TrimRight(frac, "0")...)
	}
	for _, s := range [...]string{t.AccessToken, t.Tenant, t.BaseURL, t.Username} {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, s)
	}
	b = append(b, '\n')
	if len(b)-start > MaxAnswerBytes {
		return b[:start], false
	}
	return b, true
}

// AppendErrorAnswer appends the answer frame of an error. A hint of ""
// becomes Hint(code). Message and hint are cut to fit MaxAnswerBytes.
func AppendErrorAnswer(b []byte, code, message, hint string) []byte {
	if hint == "" {
		hint = Hint(code)
	}
	const most = MaxAnswerBytes/8 - 64 // a quoted byte takes at most four
	if len(message) > most {
		message = message[:most]
	}
	if len(hint) > most {
		hint = hint[:most]
	}
	b = append(b, frameMagic+"error "...)
	b = append(b, code...)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, message)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, hint)
	return append(b, '\n')
}

// ParseAnswer parses an answer frame, its LF included: a token, or the
// *Error the agent answered. An answer that does not parse yields an
// *Error with CodeInternal.
func ParseAnswer(line []byte) (*TokenResponse, error) {
	body, err := frameBody(line, MaxAnswerBytes)
	if err != nil {
		return nil, malformed(err.(*Error).Message)
	}
	if rest, ok := bytes.CutPrefix(body, []byte("error ")); ok {
		return nil, parseErrorAnswer(rest)
	}
	rest, ok := bytes.CutPrefix(body, []byte("ok "))
	if !ok {
		return nil, malformed("neither ok nor error")
	}
	var t TokenResponse
	in, rest, _ := bytes.Cut(rest, []byte(" "))
	digits := bytes.TrimPrefix(in, []byte("-"))
	if !isDigits(digits, 19) {
		return nil, malformed("bad EXPIRES_IN")
	}
	n, err := strconv.ParseInt(string(in), 10, 64) // "-9223372036854775808" too
	if err != nil {
		return nil, malformed("bad EXPIRES_IN")
	}
	t.ExpiresIn = n
	at, rest, _ := bytes.Cut(rest, []byte(" "))
	if t.ExpiresAt, ok = parseUnixTime(at); !ok {
		return nil, malformed("bad EXPIRES_AT")
	}
	for i, dst := range [...]*string{&t.AccessToken, &t.Tenant, &t.BaseURL, &t.Username} {
		if i > 0 {
			if rest, ok = bytes.CutPrefix(rest, []byte(" ")); !ok {
				return nil, malformed("fields not separated by one space")
			}
		}
		if *dst, rest, ok = quoted(rest); !ok {
			return nil, malformed("bad quoted string")
		}
	}
	if len(rest) != 0 {
		return nil, malformed("data after the last field")
	}
	return &t, nil
}

// parseErrorAnswer parses what follows "error " in an answer frame.
func parseErrorAnswer(rest []byte) error {
	code, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(code) == 0 || len(code) > 64 || bytes.IndexFunc(code, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) >= 0 {
		return malformed("bad error code")
	}
	e := &Error{Code: string(code)}
	if e.Message, rest, ok = quoted(rest); !ok {
		return malformed("bad error message")
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(" ")); !ok {
		return malformed("fields not separated by one space")
	}
	if e.Hint, rest, ok = quoted(rest); !ok || len(rest) != 0 {
		return malformed("bad error hint")
	}
	return e
}

// frameBody checks a frame's size, its single LF at the end and its magic,
// and returns what lies between the magic and the LF. Its errors are
// *Errors to answer.
func frameBody(line []byte, most int) ([]byte, error) {
	if len(line) > most {
		return nil, &Error{Code: CodeTooLarge, Message: "frame over " + strconv.Itoa(most) + " bytes", Hint: HintVersion}
	}
	i := bytes.IndexByte(line, '\n')
	if i < 0 || i != len(line)-1 {
		return nil, badFrame("a frame is one line ending in LF")
	}
	body, ok := bytes.CutPrefix(line[:i], []byte(frameMagic))
	if !ok {
		return nil, badFrame("not a version 1 frame (" + strconv.Quote(string(line[:min(i, 20)])) + ")")
	}
	return body, nil
}

func badFrame(msg string) *Error {
	return &Error{Code: CodeBadRequest, Message: msg, Hint: HintVersion}
}

// malformed returns the error for an answer a client cannot use.
func malformed(what string) *Error {
	return &Error{Code: CodeInternal, Message: "malformed answer from agent: " + what}
}

// isWord reports whether s is a field a request frame carries: printable
// ASCII without spaces.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// isDigits reports whether b is 1 to most decimal digits.
func isDigits(b []byte, most int) bool {
	if len(b) == 0 || len(b) > most {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseUint parses 1 to most decimal digits, most at most 19.
func parseUint(b []byte, most int) (int64, bool) {
	if !isDigits(b, most) {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// parseUnixTime parses seconds since 1970 with an optional fraction of one
// to nine digits. time.Unix, unlike time's parsers, adds nothing to the
// helper's start.
func parseUnixTime(b []byte) (time.Time, bool) {
	s, frac, hasFrac := bytes.Cut(b, []byte("."))
	sec, ok := parseUint(s, 18)
	if !ok {
		return time.Time{}, false
	}
	var nsec int64
	if hasFrac {
		if nsec, ok = parseUint(frac, 9); !ok {
			return time.Time{}, false
		}
		for range 9 - len(frac) {
			nsec *= 10
		}
	}
	return time.Unix(sec, nsec).UTC(), true
}

// quoted reads one double-quoted Go string at the start of b and returns
// its value and what follows it.
func quoted(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", b, false
	}
	q, err := strconv.QuotedPrefix(string(b))
	if err != nil {
		return "", b, false
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		return "", b, false
	}
	return s, b[len(q):], true
}
