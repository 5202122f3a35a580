package wire

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// agentAnswer is the body the agent writes for a token: json.Marshal of a
// TokenResponse and a newline.
func agentAnswer(t testing.TB, tr TokenResponse) []byte {
	t.Helper()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestDecodeTokenAgentAnswers(t *testing.T) {
	at := time.Date(2026, 12, 1, 7, 37, 44, 0, time.UTC)
	cases := []struct {
		name string
		tr   TokenResponse
	}{
		{"typical", TokenResponse{Tenant: "designsafe", BaseURL: "https://designsafe.tapis.io", Username: "jdoe",
			AccessToken: "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqZG9lIn0.c2ln", ExpiresAt: at, ExpiresIn: 14399}},
		{"zero", TokenResponse{}},
		{"escapes", TokenResponse{Tenant: "a\"b\\c", Username: "tab\there\nnl <&> \u2028 é 😀", BaseURL: "http://127.0.0.1:80/x?y=1&z=2"}},
		{"control", TokenResponse{Username: "\x00\x01\x1f\x7f"}},
		{"negative", TokenResponse{ExpiresIn: -5, ExpiresAt: at.Add(-time.Hour)}},
		{"fraction", TokenResponse{ExpiresAt: at.Add(123456789 * time.Nanosecond), ExpiresIn: 1<<63 - 1}},
		{"offset", TokenResponse{ExpiresAt: at.In(time.FixedZone("", -5*3600))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got TokenResponse
			if err := decodeToken(agentAnswer(t, tc.tr), &got); err != nil {
				t.Fatalf("decodeToken(%q) = %v", agentAnswer(t, tc.tr), err)
			}
			var want TokenResponse
			if err := json.Unmarshal(agentAnswer(t, tc.tr), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeToken = %+v; want %+v", got, want)
			}
		})
	}
}

// TestDecodeTokenRandomStrings round-trips random strings, of every rune
// class json.Marshal escapes, through the agent's encoding.
func TestDecodeTokenRandomStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pool := []rune("aZ09 \"\\/\b\f\n\r\t\x00\x1f<>&\u2028\u2029é€😀\ufffd")
	str := func() string {
		var b strings.Builder
		for range r.IntN(20) {
			b.WriteRune(pool[r.IntN(len(pool))])
		}
		return b.String()
	}
	for range 2000 {
		tr := TokenResponse{Tenant: str(), BaseURL: str(), Username: str(), AccessToken: str(),
			ExpiresAt: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC(), ExpiresIn: r.Int64() - 1<<62}
		var got TokenResponse
		if err := decodeToken(agentAnswer(t, tr), &got); err != nil {
			t.Fatalf("decodeToken(%q) = %v", agentAnswer(t, tr), err)
		}
		if !reflect.DeepEqual(got, tr) {
			t.Fatalf("decodeToken = %+v; want %+v", got, tr)
		}
	}
}

func TestDecodeTokenRefuses(t *testing.T) {
	cases := []struct{ name, in string }{
		{"empty", ``},
		{"array", `[]`},
		{"string", `"x"`},
		{"null", `null`},
		{"unterminated", `{"tenant":"x"`},
		{"trailing", `{"tenant":"x"} {}`},
		{"trailing comma", `{"tenant":"x",}`},
		{"missing colon", `{"tenant" "x"}`},
		{"single quotes", `{'tenant':'x'}`},
		{"number for string", `{"tenant":1}`},
		{"null for string", `{"tenant":null}`},
		{"string for number", `{"expires_in":"5"}`},
		{"float", `{"expires_in":1.5}`},
		{"exponent", `{"expires_in":1e3}`},
		{"leading zero", `{"expires_in":01}`},
		{"overflow", `{"expires_in":9223372036854775808}`},
		{"bad time", `{"expires_at":"tomorrow"}`},
		{"escaped time", `{"expires_at":"2026-12-01T07:37:44\u005a"}`},
		{"folded key", `{"Access_Token":"x"}`},
		{"kelvin key", "{\"to\u212aen\":1,\"access_\u212aey\":1,\"tenant\":\"x\",\"expires_\u0131n\":1,\"access_to\u212aen\":\"x\"}"},
		{"control in string", "{\"tenant\":\"a\x01\"}"},
		{"invalid utf-8", "{\"tenant\":\"\xff\"}"},
		{"lone surrogate", `{"tenant":"\ud800"}`},
		{"bad escape", `{"tenant":"\x"}`},
		{"short unicode", `{"tenant":"\u12"}`},
		{"bad unknown value", `{"other":tru}`},
		{"bad unknown number", `{"other":-}`},
		{"deep unknown", `{"other":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got TokenResponse
			if err := decodeToken([]byte(tc.in), &got); err == nil {
				t.Fatalf("decodeToken(%q) = nil, %+v; want an error", tc.in, got)
			}
		})
	}
}

func TestDecodeTokenSkipsUnknown(t *testing.T) {
	in := `{"future":{"a":[1,-2.5e+3,true,false,null,"s\"",{}],"b":[]},"access_token":"tok","n":0,"x":-0.0E-1}`
	var got TokenResponse
	if err := decodeToken([]byte(in), &got); err != nil {
		t.Fatalf("decodeToken(%q) = %v", in, err)
	}
	if got.AccessToken != "tok" {
		t.Fatalf("AccessToken = %q; want %q", got.AccessToken, "tok")
	}
}

// FuzzDecodeToken checks that decodeToken is never looser than
// encoding/json: whatever it accepts, json.Unmarshal accepts and decodes
// to the same value. decodeAccessToken accepts it too, with the same
// token, and refuses all that decodeToken refuses but a time that
// encoding/json refuses as well.
func FuzzDecodeToken(f *testing.F) {
	f.Add([]byte(`{"access_token":"a.b.c","base_url":"https://x.tapis.io","expires_at":"2026-12-01T07:37:44Z","expires_in":60,"tenant":"x","username":"u"}`))
	f.Add([]byte(`{"tenant":"\u00e9\ud83d\ude00","other":[{"k":1e5}],"expires_in":-0}`))
	f.Add([]byte(`{"expires_at":"2026-12-01T07:37:44.123+01:00"}`))
	f.Add([]byte(`{"expires_at":"yesterday","access_token":"t"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got TokenResponse
		tok, aerr := decodeAccessToken(b)
		if err := decodeToken(b, &got); err != nil {
			var times struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
			if aerr == nil && json.Unmarshal(b, &times) == nil {
				t.Fatalf("decodeAccessToken accepted %q, decodeToken refuses it: %v", b, err)
			}
			return
		}
		if aerr != nil || tok != got.AccessToken {
			t.Fatalf("decodeAccessToken(%q) = %q, %v; decodeToken gives %q", b, tok, aerr, got.AccessToken)
		}
		var want TokenResponse
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodeToken accepted %q, json.Unmarshal refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeToken(%q) = %+v; json.Unmarshal gives %+v", b, got, want)
		}
	})
}

func TestDecodeError(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want ErrorDetail
		ok   bool
	}{
		{"agent", `{"error":{"code":"login_required","message":"dev: not logged in","hint":"tapis-token login dev"}}` + "\n",
			ErrorDetail{Code: "login_required", Message: "dev: not logged in", Hint: "tapis-token login dev"}, true},
		{"no hint", `{"error":{"code":"internal","message":"m"}}`, ErrorDetail{Code: "internal", Message: "m"}, true},
		{"unknown keys", `{"error":{"code":"c","x":[1,{"y":null}]},"other":true}`, ErrorDetail{Code: "c"}, true},
		{"merged", `{"error":{"code":"a"},"error":{"message":"m"}}`, ErrorDetail{Code: "a", Message: "m"}, true},
		{"escapes", `{"error":{"code":"c","message":"tab\there \u00e9\ud83d\ude00"}}`, ErrorDetail{Code: "c", Message: "tab\there é😀"}, true},
		{"html", `<html>500</html>`, ErrorDetail{}, false},
		{"folded", `{"Error":{"code":"c"}}`, ErrorDetail{}, false},
		{"folded inner", `{"error":{"Code":"c"}}`, ErrorDetail{}, false},
		{"number", `{"error":{"code":5}}`, ErrorDetail{}, false},
		{"truncated", `{"error":{"code":"c"}`, ErrorDetail{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got ErrorDetail
			err := decodeError([]byte(tc.in), &got)
			if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
				t.Fatalf("decodeError(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
			if tc.ok {
				var eb ErrorBody
				if err := json.Unmarshal([]byte(tc.in), &eb); err != nil || eb.Error != got {
					t.Fatalf("json.Unmarshal(%q) = %+v, %v; decodeError gave %+v", tc.in, eb.Error, err, got)
				}
			}
		})
	}
}

// FuzzDecodeError checks that decodeError is never looser than
// encoding/json decoding an ErrorBody.
func FuzzDecodeError(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"login_required","message":"dev: not logged in","hint":"tapis-token login dev"}}`))
	f.Add([]byte(`{"error":{"code":"c"},"x":[1.5e3,"s",{}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got ErrorDetail
		if decodeError(b, &got) != nil {
			return
		}
		var want ErrorBody
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("decodeError accepted %q, json.Unmarshal refuses it: %v", b, err)
		}
		if got != want.Error {
			t.Fatalf("decodeError(%q) = %+v; json.Unmarshal gives %+v", b, got, want.Error)
		}
	})
}
