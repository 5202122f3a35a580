package tapis

import (
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/secret"
)

func TestParseEnvelope(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		msg      string
	}{
		{"success", `{"message":"Token created successfully.","metadata":{},"result":{"a":1},"status":"success","version":"dev"}` + "\n", true, "Token created successfully."},
		{"error", `{"message":"Invalid refresh_token.","metadata":{},"result":null,"status":"error","version":"dev"}`, true, "Invalid refresh_token."},
		{"extra keys", `{"message":"m","status":"success","result":"","x":[1]}`, true, "m"},
		{"failure status", `{"message":"m","status":"failure"}`, false, ""},
		{"no status", `{"message":"m"}`, false, ""},
		{"status number", `{"status":1}`, false, ""},
		{"message object", `{"message":{},"status":"error"}`, false, ""},
		{"null", `null`, false, ""},
		{"array", `[]`, false, ""},
		{"empty", ``, false, ""},
		{"truncated", `{"message":"m","status":"succ`, false, ""},
		{"two objects", `{"status":"success"}{"status":"success"}`, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := parseEnvelope([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("parseEnvelope(%q) error = %v; want ok %v", tc.in, err, tc.ok)
			}
			if tc.ok && env.Message != tc.msg {
				t.Errorf("Message = %q; want %q", env.Message, tc.msg)
			}
		})
	}
}

// FuzzParseEnvelope feeds arbitrary bodies to parseEnvelope and, when they
// parse, their message to classify: no panic, no accepted bad status, no
// secret in the error text. Seeds are in testdata/fuzz/FuzzParseEnvelope.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"message":"Token created successfully.","metadata":{},"result":{},"status":"success","version":"dev"}`))
	f.Add([]byte(`{"message":"Invalid client credentials: a, b. session: <SecureCookieSession {}>","metadata":{},"result":null,"status":"error","version":"dev"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseEnvelope(b)
		if err != nil {
			return
		}
		if env.Status != "success" && env.Status != "error" {
			t.Fatalf("accepted status %q", env.Status)
		}
		// Classification and sanitising must cope with any message.
		e := &Error{Op: "fuzz", StatusCode: 400, Message: env.Message}
		classify(e, []secret.Value{"s3cret"})
		if strings.Contains(e.Error(), "s3cret") {
			t.Fatalf("error %q leaks the secret", e.Error())
		}
		// Row 11 keeps the client id only: exactly one ", " before REDACTED.
		if strings.HasPrefix(env.Message, "Invalid client credentials: ") &&
			(!strings.HasSuffix(e.Message, ", REDACTED.") || strings.Count(e.Message, ", ") != 1) {
			t.Fatalf("sanitised message %q may keep the key", e.Message)
		}
	})
}
