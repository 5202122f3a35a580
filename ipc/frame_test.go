package ipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTokenRequestRoundTrip(t *testing.T) {
	cases := []struct {
		tenant   string
		minValid time.Duration
		want     string
	}{
		{"designsafe", 2 * time.Hour, "@tapis-agent/1 token designsafe 7200\n"},
		{"", NoMinValid, "@tapis-agent/1 token - -\n"},
		{"dev", 0, "@tapis-agent/1 token dev 0\n"},
		{"dev", 1500 * time.Millisecond, "@tapis-agent/1 token dev 2\n"}, // rounded up
		{"dev", 1<<63 - 1, "@tapis-agent/1 token dev 9223372037\n"},
	}
	for _, tc := range cases {
		b, err := AppendTokenRequest(nil, tc.tenant, tc.minValid)
		if err != nil || string(b) != tc.want {
			t.Errorf("AppendTokenRequest(%q, %v) = %q, %v; want %q", tc.tenant, tc.minValid, b, err, tc.want)
			continue
		}
		tenant, mv, err := ParseTokenRequest(b)
		wantMV := tc.minValid.Round(0)
		if r := wantMV % time.Second; r != 0 {
			wantMV += time.Second - r
		}
		if tc.minValid < 0 {
			wantMV = NoMinValid
		}
		if tc.minValid == 1<<63-1 {
			// The longest duration rounds up past what a frame carries.
			if err == nil || err.(*Error).Code != CodeBadRequest {
				t.Errorf("ParseTokenRequest(%q) = %v; want bad_request", b, err)
			}
			continue
		}
		if err != nil || tenant != tc.tenant || mv != wantMV {
			t.Errorf("ParseTokenRequest(%q) = %q, %v, %v; want %q, %v", b, tenant, mv, err, tc.tenant, wantMV)
		}
	}
	for _, bad := range []string{"a b", "é", "tab\t", "nl\n", "\x00"} {
		if _, err := AppendTokenRequest(nil, bad, 0); err == nil || err.(*Error).Code != CodeBadRequest {
			t.Errorf("AppendTokenRequest(%q) = %v; want a bad_request error", bad, err)
		}
	}
}

func TestParseTokenRequestRefuses(t *testing.T) {
	long := "@tapis-agent/1 token " + strings.Repeat("a", 500) + " 60\n"
	cases := []struct{ name, in, code string }{
		{"empty", "", CodeBadRequest},
		{"no LF", "@tapis-agent/1 token dev 60", CodeBadRequest},
		{"CRLF", "@tapis-agent/1 token dev 60\r\n", CodeBadRequest},
		{"two lines", "@tapis-agent/1 token dev 60\n@tapis-agent/1 token dev 60\n", CodeBadRequest},
		{"version 2", "@tapis-agent/2 token dev 60\n", CodeBadRequest},
		{"HTTP", "GET /v1/token HTTP/1.1\n", CodeBadRequest},
		{"verb", "@tapis-agent/1 status\n", CodeBadRequest},
		{"keep", "@tapis-agent/1 keep dev 60\n", CodeBadRequest},
		{"one field", "@tapis-agent/1 token dev\n", CodeBadRequest},
		{"three fields", "@tapis-agent/1 token dev 60 x\n", CodeBadRequest},
		{"two spaces", "@tapis-agent/1 token dev  60\n", CodeBadRequest},
		{"NUL in tenant", "@tapis-agent/1 token d\x00v 60\n", CodeBadRequest},
		{"negative", "@tapis-agent/1 token dev -5\n", CodeBadRequest},
		{"leading zero", "@tapis-agent/1 token dev 060\n", CodeBadRequest},
		{"duration", "@tapis-agent/1 token dev 2h\n", CodeBadRequest},
		{"eleven digits", "@tapis-agent/1 token dev 10000000000\n", CodeBadRequest},
		{"overflow", "@tapis-agent/1 token dev 9999999999\n", CodeBadRequest},
		{"too long", long, CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant, mv, err := ParseTokenRequest([]byte(tc.in))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Message == "" || e.Hint == "" {
				t.Fatalf("ParseTokenRequest(%q) = %q, %v, %v; want a %s error with message and hint", tc.in, tenant, mv, err, tc.code)
			}
		})
	}
}

// TestParseRequestKeep: ParseRequest takes keep as it takes token, and
// says which it was.
func TestParseRequestKeep(t *testing.T) {
	for _, tc := range []struct {
		in     string
		tenant string
		mv     time.Duration
		keep   bool
	}{
		{"@tapis-agent/1 keep dev 60\n", "dev", time.Minute, true},
		{"@tapis-agent/1 keep - -\n", "", NoMinValid, true},
		{"@tapis-agent/1 token dev 60\n", "dev", time.Minute, false},
	} {
		tenant, mv, keep, err := ParseRequest([]byte(tc.in))
		if err != nil || tenant != tc.tenant || mv != tc.mv || keep != tc.keep {
			t.Errorf("ParseRequest(%q) = %q, %v, %v, %v; want %q, %v, %v", tc.in, tenant, mv, keep, err, tc.tenant, tc.mv, tc.keep)
		}
	}
	for _, in := range []string{"@tapis-agent/1 keep dev\n", "@tapis-agent/1 kept dev 60\n", "@tapis-agent/1 keep dev 60\n@tapis-agent/1 keep dev 60\n"} {
		var e *Error
		if _, _, _, err := ParseRequest([]byte(in)); !errors.As(err, &e) || e.Code != CodeBadRequest {
			t.Errorf("ParseRequest(%q) = %v; want bad_request", in, err)
		}
	}
}

// httpRoundTrip is what a client of GET /v1/token gets for t: t through
// encoding/json, as the agent writes it and ipcclient reads it. JSON
// replaces invalid UTF-8, which the frame carries as it is: for such
// strings httpRoundTrip returns t itself.
func httpRoundTrip(t testing.TB, tr *TokenResponse) *TokenResponse {
	t.Helper()
	for _, s := range []string{tr.Tenant, tr.BaseURL, tr.Username, tr.AccessToken} {
		if !utf8.ValidString(s) {
			return tr
		}
	}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var out TokenResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// checkSameAnswer fails unless got, read from a frame, carries what want,
// read over HTTP, carries: every field, the expiry to the nanosecond.
func checkSameAnswer(t testing.TB, got, want *TokenResponse) {
	t.Helper()
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("frame expiry %v; HTTP %v", got.ExpiresAt, want.ExpiresAt)
	}
	g, w := *got, *want
	g.ExpiresAt, w.ExpiresAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("frame answer %+v; HTTP %+v", g, w)
	}
}

func TestTokenAnswerRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 7, 37, 44, 0, time.UTC)
	cases := []TokenResponse{
		{Tenant: "designsafe", BaseURL: "https://designsafe.tapis.io", Username: "jdoe",
			AccessToken: "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqZG9lIn0.c2ln", ExpiresAt: at, ExpiresIn: 14399},
		{ExpiresAt: time.Unix(0, 0)},
		{Tenant: "a\"b\\c", Username: "tab\there\nnl <&> \u2028 é 😀 \x00\x7f\xff", ExpiresAt: at.Add(123456789 * time.Nanosecond), ExpiresIn: -5},
		{ExpiresAt: at.Add(time.Nanosecond), ExpiresIn: 1<<63 - 1},
		{ExpiresAt: at.In(time.FixedZone("", -5*3600)).Add(500 * time.Millisecond), ExpiresIn: -1 << 63},
	}
	for _, tc := range cases {
		b, ok := AppendTokenAnswer(nil, &tc)
		if !ok {
			t.Fatalf("AppendTokenAnswer(%+v) refused", tc)
		}
		if bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("AppendTokenAnswer(%+v) = %q: not one line", tc, b)
		}
		got, err := ParseAnswer(b)
		if err != nil {
			t.Fatalf("ParseAnswer(%q) = %v", b, err)
		}
		checkSameAnswer(t, got, &tc)
		checkSameAnswer(t, got, httpRoundTrip(t, &tc))
	}
	if b, ok := AppendTokenAnswer(nil, &TokenResponse{}); ok {
		t.Errorf("AppendTokenAnswer of an expiry before 1970 = %q; want it refused", b)
	}
	if b, ok := AppendTokenAnswer(nil, &TokenResponse{AccessToken: strings.Repeat("\x00", MaxAnswerBytes/4), ExpiresAt: at}); ok {
		t.Errorf("AppendTokenAnswer of an answer over MaxAnswerBytes = %d bytes; want it refused", len(b))
	}
}

func TestErrorAnswerRoundTrip(t *testing.T) {
	cases := []Error{
		{Code: CodeLoginRequired, Message: "dev: not logged in", Hint: "tapis-token login dev"},
		{Code: CodeInternal, Message: "quote \" backslash \\ nl \n nul \x00 é", Hint: HintLog},
		{Code: CodeUnsatisfiable, Message: strings.Repeat("long ", 10000), Hint: "h"},
	}
	for _, tc := range cases {
		b := AppendErrorAnswer(nil, tc.Code, tc.Message, tc.Hint)
		if len(b) > MaxAnswerBytes || bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("AppendErrorAnswer(%q) is %d bytes, not one line within MaxAnswerBytes", tc.Code, len(b))
		}
		_, err := ParseAnswer(b)
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.Code || e.Hint != tc.Hint || !strings.HasPrefix(tc.Message, e.Message) || e.Message == "" {
			t.Fatalf("ParseAnswer(%q) = %#v; want %#v", b, err, tc)
		}
	}
	_, err := ParseAnswer(AppendErrorAnswer(nil, CodeUpstreamUnavailable, "down", ""))
	if e := err.(*Error); e.Hint != Hint(CodeUpstreamUnavailable) {
		t.Errorf("error answer without hint has hint %q; want Hint(code)", e.Hint)
	}
}

func TestParseAnswerRefuses(t *testing.T) {
	ok := `@tapis-agent/1 ok 60 1796112000 "tok" "dev" "https://dev.tapis.io" "jdoe"` + "\n"
	if _, err := ParseAnswer([]byte(ok)); err != nil {
		t.Fatalf("ParseAnswer(%q) = %v", ok, err)
	}
	cases := []string{
		"",
		strings.TrimSuffix(ok, "\n"),
		strings.Replace(ok, "/1", "/2", 1),
		strings.Replace(ok, "ok", "OK", 1),
		strings.Replace(ok, " 60 ", " 6x ", 1),
		strings.Replace(ok, " 60 ", "  60 ", 1),
		strings.Replace(ok, "1796112000", "1796112000.", 1),
		strings.Replace(ok, "1796112000", "1796112000.1234567890", 1),
		strings.Replace(ok, "1796112000", "-1", 1),
		strings.Replace(ok, `"tok"`, "`tok`", 1),
		strings.Replace(ok, `"tok"`, `'t'`, 1),
		strings.Replace(ok, `"tok"`, `"t\q"`, 1),
		strings.Replace(ok, `"tok"`, `"tok`, 1),
		strings.Replace(ok, ` "jdoe"`, ``, 1),
		strings.Replace(ok, `"jdoe"`, `"jdoe" "x"`, 1),
		strings.Replace(ok, "\n", "\r\n", 1),
		ok + ok,
		"@tapis-agent/1 error Login_Required \"m\" \"h\"\n",
		"@tapis-agent/1 error login_required \"m\"\n",
		"@tapis-agent/1 error  \"m\" \"h\"\n",
		"@tapis-agent/1 ok " + strings.Repeat("9", MaxAnswerBytes) + "\n",
		"HTTP/1.1 200 OK\r\n\r\n",
	}
	for _, in := range cases {
		tr, err := ParseAnswer([]byte(in))
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInternal {
			t.Errorf("ParseAnswer(%.80q) = %+v, %v; want a malformed-answer error", in, tr, err)
		}
	}
}

// FuzzParseTokenRequest: the request parser never panics, refuses with a
// bad_request or too_large error, and accepts only canonical frames: what
// it accepts, AppendTokenRequest writes back byte for byte.
func FuzzParseTokenRequest(f *testing.F) {
	f.Add([]byte("@tapis-agent/1 token designsafe 7200\n"))
	f.Add([]byte("@tapis-agent/1 token - -\n"))
	f.Add([]byte("@tapis-agent/1 token d\x00v 0\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		tenant, mv, err := ParseTokenRequest(line)
		if err != nil {
			if e, ok := err.(*Error); !ok || (e.Code != CodeBadRequest && e.Code != CodeTooLarge) {
				t.Fatalf("ParseTokenRequest(%q) = %v; want a bad_request or too_large *Error", line, err)
			}
			return
		}
		b, err := AppendTokenRequest(nil, tenant, mv)
		if err != nil && tenant != "-" {
			t.Fatalf("ParseTokenRequest(%q) accepted tenant %q, which AppendTokenRequest refuses: %v", line, tenant, err)
		}
		if err == nil && !bytes.Equal(b, line) {
			t.Fatalf("ParseTokenRequest(%q) = %q, %v; written back as %q", line, tenant, mv, b)
		}
	})
}

// FuzzParseAnswer: the answer parser never panics and refuses with an
// *Error; a token it accepts is the one a client of the HTTP API gets for
// the same answer, and writing it again gives an answer that parses to it.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`@tapis-agent/1 ok 60 1796112000.5 "tok" "dev" "https://dev.tapis.io" "jdoe"` + "\n"))
	f.Add([]byte(`@tapis-agent/1 error login_required "dev: not logged in" "tapis-token login dev"` + "\n"))
	f.Add([]byte(`@tapis-agent/1 ok -1 0 "\x00\u00e9\U0001f600" "" "" ""` + "\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		tr, err := ParseAnswer(line)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("ParseAnswer(%q) = %v; want an *Error", line, err)
			}
			return
		}
		checkSameAnswer(t, tr, httpRoundTrip(t, tr))
		b, ok := AppendTokenAnswer(nil, tr)
		if !ok {
			t.Fatalf("ParseAnswer(%q) accepted %+v, which AppendTokenAnswer refuses", line, tr)
		}
		again, err := ParseAnswer(b)
		if err != nil {
			t.Fatalf("ParseAnswer(%q) = %v, for %+v written from %q", b, err, tr, line)
		}
		checkSameAnswer(t, again, tr)
	})
}

// FuzzTokenAnswer: every token answer the agent can write reads back as
// the answer a client of the HTTP API gets for it.
func FuzzTokenAnswer(f *testing.F) {
	f.Add("eyJ.eyJ.sig", "dev", "https://dev.tapis.io", "jdoe", int64(14399), int64(1796112000), int64(0))
	f.Add("\x00\xff\"\\\n", "é", "", "😀", int64(-1), int64(0), int64(999999999))
	f.Fuzz(func(t *testing.T, token, tenant, baseURL, user string, in, sec, nsec int64) {
		if sec < 0 || sec > 1<<40 || nsec < 0 || nsec >= 1e9 {
			return
		}
		tr := &TokenResponse{Tenant: tenant, BaseURL: baseURL, Username: user, AccessToken: token,
			ExpiresAt: time.Unix(sec, nsec).UTC(), ExpiresIn: in}
		b, ok := AppendTokenAnswer(nil, tr)
		if !ok {
			if len(token)+len(tenant)+len(baseURL)+len(user) < MaxAnswerBytes/4-100 {
				t.Fatalf("AppendTokenAnswer(%+v) refused", tr)
			}
			return
		}
		got, err := ParseAnswer(b)
		if err != nil {
			t.Fatalf("ParseAnswer(%q) = %v", b, err)
		}
		checkSameAnswer(t, got, tr)
		checkSameAnswer(t, got, httpRoundTrip(t, tr))
	})
}
