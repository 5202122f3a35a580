package ipc

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Limits and words of the token frame; the package documentation
// describes it.
const (
	// MaxRequestBytes bounds a request frame, its LF included.
	MaxRequestBytes = 512
	// MaxAnswerBytes bounds an answer frame, its LF included.
	MaxAnswerBytes = 64 << 10
	// NoMinValid is the minimum validity of a request that names none:
	// the agent applies its default.
	NoMinValid time.Duration = -1

	frameVersion = "@tapis-agent/1" // the first field of every frame
)

// IsFrame reports whether a connection whose first byte is c carries a
// token frame rather than an HTTP request. No HTTP method can begin with
// '@', which is not a token character (RFC 9110).
func IsFrame(c byte) bool { return c == '@' }

// AppendTokenRequest appends the request frame for a token of tenant (""
// for the agent's default tenant) valid for at least minValid, rounded up
// to whole seconds (negative: the agent's default). It returns an *Error
// with CodeBadRequest for a tenant the frame cannot carry.
func AppendTokenRequest(b []byte, tenant string, minValid time.Duration) ([]byte, error) {
	if tenant == "" {
		tenant = "-"
	} else if !isWord(tenant) || tenant == "-" {
		return b, &Error{Code: CodeBadRequest, Message: "tenant name " + strconv.Quote(tenant) + " is invalid; use lower-case letters, digits, '.', '_' and '-'",
			Hint: "tapis-token status lists the tenants"}
	}
	b = append(b, frameVersion+" token "+tenant+" "...)
	if minValid < 0 {
		b = append(b, '-')
	} else {
		secs := minValid / time.Second
		if minValid%time.Second != 0 {
			secs++ // never less than asked
		}
		b = strconv.AppendInt(b, int64(secs), 10)
	}
	return append(b, '\n'), nil
}

// ParseTokenRequest parses a request frame, its LF included: the tenant
// ("" for the default tenant) and the minimum validity (NoMinValid for the
// default). For a frame it refuses, it returns the *Error to answer. It
// refuses a keep request (ParseRequest), which a caller answering one
// request per connection must not take.
func ParseTokenRequest(line []byte) (tenant string, minValid time.Duration, err error) {
	tenant, minValid, keep, err := ParseRequest(line)
	if err == nil && keep {
		return "", 0, &Error{Code: CodeBadRequest, Message: "a keep request on a connection that serves one request", Hint: HintVersion}
	}
	return tenant, minValid, err
}

// ParseRequest parses a request frame as ParseTokenRequest does, and
// accepts the verb keep besides token: the same question, after whose
// answer the connection stays open for the next request. keep reports
// which it was.
func ParseRequest(line []byte) (tenant string, minValid time.Duration, keep bool, err error) {
	if len(line) > MaxRequestBytes {
		return "", 0, false, &Error{Code: CodeTooLarge, Message: "request frame over " + strconv.Itoa(MaxRequestBytes) + " bytes", Hint: HintVersion}
	}
	f, ok := fields(line)
	if !ok || len(f) != 4 || f[0] != frameVersion || (f[1] != "token" && f[1] != "keep") || !isWord(f[2]) || !isWord(f[3]) {
		return "", 0, false, &Error{Code: CodeBadRequest, Message: "malformed request frame: want " + frameVersion + " token TENANT MIN_VALID", Hint: HintVersion}
	}
	keep = f[1] == "keep"
	if f[2] != "-" {
		tenant = f[2]
	}
	minValid = NoMinValid
	if f[3] != "-" {
		// Canonical decimal, at most the longest time.Duration.
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || n < 0 || n > (1<<63-1)/int64(time.Second) || strconv.FormatInt(n, 10) != f[3] {
			return "", 0, false, &Error{Code: CodeBadRequest, Message: "MIN_VALID must be a whole number of seconds", Hint: HintVersion}
		}
		minValid = time.Duration(n) * time.Second
	}
	return tenant, minValid, keep, nil
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
	b = append(b, frameVersion+" ok "...)
	b = strconv.AppendInt(b, t.ExpiresIn, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sec, 10)
	if nsec != 0 {
		frac := strconv.AppendInt(nil, int64(nsec)+1e9, 10)[1:] // nine digits
		b = append(append(b, '.'), bytes.TrimRight(frac, "0")...)
	}
	for _, s := range [...]string{t.AccessToken, t.Tenant, t.BaseURL, t.Username} {
		b = strconv.AppendQuote(append(b, ' '), s)
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
	b = append(b, frameVersion+" error "+code...)
	b = strconv.AppendQuote(append(b, ' '), message[:min(len(message), most)])
	b = strconv.AppendQuote(append(b, ' '), hint[:min(len(hint), most)])
	return append(b, '\n')
}

// ParseAnswer parses an answer frame, its LF included: a token, or the
// *Error the agent answered. An answer that does not parse yields an
// *Error with CodeInternal.
func ParseAnswer(line []byte) (*TokenResponse, error) {
	f, ok := fields(line)
	switch {
	case !ok || len(line) > MaxAnswerBytes || len(f) < 2 || f[0] != frameVersion:
	case f[1] == "error" && len(f) == 5 && isCode(f[2]):
		e := &Error{Code: f[2]}
		if str(f[3], &e.Message) && str(f[4], &e.Hint) {
			return nil, e
		}
	case f[1] == "ok" && len(f) == 8:
		var t TokenResponse
		in, err := strconv.ParseInt(f[2], 10, 64)
		at, ok := parseUnixTime(f[3])
		if err == nil && ok && strings.TrimLeft(f[2], "-0123456789") == "" &&
			str(f[4], &t.AccessToken) && str(f[5], &t.Tenant) && str(f[6], &t.BaseURL) && str(f[7], &t.Username) {
			t.ExpiresIn, t.ExpiresAt = in, at
			return &t, nil
		}
	}
	return nil, &Error{Code: CodeInternal, Message: "malformed answer from agent", Hint: HintLog}
}

// fields splits a frame, one line ending in LF, into its fields, separated
// by one space: words of printable ASCII without spaces or quotes, and
// strings in double quotes, kept with their quotes (see str).
func fields(line []byte) ([]string, bool) {
	s, ok := strings.CutSuffix(string(line), "\n")
	if !ok {
		return nil, false
	}
	var f []string
	for {
		var field string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, false
			}
			field, s = q, s[len(q):]
		} else {
			i := strings.IndexByte(s, ' ')
			if i < 0 {
				i = len(s)
			}
			field, s = s[:i], s[i:]
			if !isWord(field) {
				return nil, false
			}
		}
		f = append(f, field)
		if s == "" {
			return f, true
		}
		if s, ok = strings.CutPrefix(s, " "); !ok || s == "" {
			return nil, false
		}
	}
}

// str unquotes the quoted field f into *s and reports whether f was one.
func str(f string, s *string) bool {
	if !strings.HasPrefix(f, `"`) {
		return false
	}
	u, err := strconv.Unquote(f)
	*s = u
	return err == nil
}

// isWord reports whether s is non-empty printable ASCII without spaces or
// double quotes.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '"' {
			return false
		}
	}
	return s != ""
}

// isCode reports whether s looks like an error code: [a-z_]{1,64}.
func isCode(s string) bool {
	return s != "" && len(s) <= 64 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") == ""
}

// parseUnixTime parses seconds since 1970 with an optional fraction of one
// to nine digits. time.Unix, unlike time's parsers, adds nothing to the
// helper's start.
func parseUnixTime(s string) (time.Time, bool) {
	sec, frac, hasFrac := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || strings.Trim(sec, "0123456789") != "" || hasFrac && (frac == "" || len(frac) > 9 || strings.Trim(frac, "0123456789") != "") {
		return time.Time{}, false
	}
	nsec := 0
	if hasFrac {
		nsec, _ = strconv.Atoi((frac + "00000000")[:9])
	}
	return time.Unix(n, int64(nsec)).UTC(), true
}
