package jwt

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9" // {"alg":"RS256","typ":"JWT"}

func token(payload string) string {
	return header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

const accessPayload = `{"jti":"bfe7e05a-b1d5-4631-b3b8-6372afcc7bf3","iss":"https://dev.tapis.io/v3/tokens",` +
	`"sub":"jdoe@dev","tapis/tenant_id":"dev","tapis/token_type":"access","tapis/delegation":false,` +
	`"tapis/delegation_sub":null,"tapis/username":"jdoe","tapis/account_type":"user","exp":1795371079,` +
	`"tapis/client_id":"myclient1","tapis/grant_type":"password","tapis/refresh_count":3}`

func TestDecodeAccessToken(t *testing.T) {
	c, err := Decode(token(accessPayload))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	strs := []struct{ name, got, want string }{
		{"JTI", c.JTI(), "bfe7e05a-b1d5-4631-b3b8-6372afcc7bf3"},
		{"Issuer", c.Issuer(), "https://dev.tapis.io/v3/tokens"},
		{"String(tapis/tenant_id)", c.String("tapis/tenant_id"), "dev"},
		{"Username", c.Username(), "jdoe"},
		{"TokenType", c.TokenType(), "access"},
		{"String(missing)", c.String("nope"), ""},
		{"String(bool)", c.String("tapis/delegation"), ""},
		{"String(null)", c.String("tapis/delegation_sub"), ""},
	}
	for _, s := range strs {
		if s.got != s.want {
			t.Errorf("%s() = %q; want %q", s.name, s.got, s.want)
		}
	}
	exp, ok := c.Expiry()
	if !ok || !exp.Equal(time.Unix(1795371079, 0)) {
		t.Errorf("Expiry() = %v, %v; want %v, true", exp, ok, time.Unix(1795371079, 0))
	}
	if n, ok := c.RefreshCount(); !ok || n != 3 {
		t.Errorf("RefreshCount() = %d, %v; want 3, true", n, ok)
	}
	if _, ok := c.Int("jti"); ok {
		t.Errorf("Int(jti) ok; want not ok for a string claim")
	}
}

func TestClaimAccessors(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		exp     time.Time
		expOK   bool
		n       int64
		nOK     bool
	}{
		{"integers", `{"exp":10,"n":7}`, time.Unix(10, 0), true, 7, true},
		{"fraction exp", `{"exp":10.5,"n":7.5}`, time.Unix(10, 5e8), true, 0, false},
		{"exponent", `{"exp":1e3,"n":1e3}`, time.Unix(1000, 0), true, 0, false},
		{"strings", `{"exp":"10","n":"7"}`, time.Time{}, false, 0, false},
		{"null", `{"exp":null,"n":null}`, time.Time{}, false, 0, false},
		{"absent", `{}`, time.Time{}, false, 0, false},
		{"huge", `{"exp":1e300,"n":99999999999999999999}`, time.Time{}, false, 0, false},
		{"big int exact", `{"n":9007199254740993}`, time.Time{}, false, 9007199254740993, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(token(tc.payload))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			exp, ok := c.Expiry()
			if ok != tc.expOK || !exp.Equal(tc.exp) {
				t.Errorf("Expiry() = %v, %v; want %v, %v", exp, ok, tc.exp, tc.expOK)
			}
			n, ok := c.Int("n")
			if ok != tc.nOK || n != tc.n {
				t.Errorf("Int(n) = %d, %v; want %d, %v", n, ok, tc.n, tc.nOK)
			}
		})
	}
}

func TestDecodePadding(t *testing.T) {
	p := base64.URLEncoding.EncodeToString([]byte(`{"a":"bc"}`)) // padded
	if !strings.Contains(p, "=") {
		t.Fatalf("test payload %q has no padding", p)
	}
	c, err := Decode(header + "." + p + ".sig")
	if err != nil {
		t.Fatalf("Decode(padded): %v", err)
	}
	if got := c.String("a"); got != "bc" {
		t.Errorf(`String("a") = %q; want "bc"`, got)
	}
}

func TestDecodeErrors(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"one part", "abc", ErrMalformed},
		{"two parts", "a.b", ErrMalformed},
		{"four parts", "a.b.c.d", ErrMalformed},
		{"bad base64", header + ".!!!.sig", ErrBase64},
		{"std base64 chars", header + ".ab+/.sig", ErrBase64},
		{"not json", header + "." + b64("hello") + ".sig", ErrNotObject},
		{"json array", header + "." + b64(`[1,2]`) + ".sig", ErrNotObject},
		{"json string", header + "." + b64(`"x"`) + ".sig", ErrNotObject},
		{"json null", header + "." + b64(`null`) + ".sig", ErrNotObject},
		{"trailing data", header + "." + b64(`{"a":1}{"b":2}`) + ".sig", ErrNotObject},
		{"truncated", header + "." + b64(`{"a":1`) + ".sig", ErrNotObject},
		{"empty payload", header + "..sig", ErrNotObject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%q) = %v, %v; want error %v", tc.token, c, err, tc.want)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestNilClaims(t *testing.T) {
	var c Claims
	if _, ok := c.Expiry(); ok {
		t.Error("nil Claims: Expiry ok")
	}
	if c.JTI() != "" {
		t.Error("nil Claims: JTI not empty")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(token(accessPayload))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Decode(tok)
		if err != nil {
			if c != nil {
				t.Fatalf("Decode returned claims with error %v", err)
			}
			return
		}
		if c == nil {
			t.Fatal("Decode returned nil claims without error")
		}
		// Accessors must never panic on any decoded value.
		c.Expiry()
		c.Int("tapis/refresh_count")
		_ = c.JTI() + c.String("tapis/tenant_id") + c.Username() + c.TokenType() + c.Issuer()
	})
}
