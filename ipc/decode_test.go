package ipc

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeAnswer(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		want    *Error // nil: success
		wantOut string
	}{
		{"ok", 200, `{"tenant":"t","base_url":"u","unknown_field":1}`, nil, "t"},
		{"agent error", 409, `{"error":{"code":"login_required","message":"log in","hint":"tapis-token login t"}}`,
			&Error{Status: 409, Code: CodeLoginRequired, Message: "log in", Hint: "tapis-token login t"}, ""},
		{"error without code", 500, `{"error":{}}`, &Error{Status: 500, Code: CodeInternal}, ""},
		{"plain text error", 400, "400 Bad Request", &Error{Status: 400, Code: CodeInternal}, ""},
		{"bad JSON", 200, `{"tenant":`, &Error{Status: 200, Code: CodeInternal}, ""},
		{"trailing data", 200, `{} {}`, &Error{Status: 200, Code: CodeInternal}, ""},
		{"wrong type", 200, `{"expires_in":"soon"}`, &Error{Status: 200, Code: CodeInternal}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out TokenResponse
			err := decodeAnswer(tc.status, []byte(tc.body), &out)
			if tc.want == nil {
				if err != nil || out.Tenant != tc.wantOut {
					t.Fatalf("decodeAnswer = %v, tenant %q; want nil, %q", err, out.Tenant, tc.wantOut)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("decodeAnswer = %v; want *Error", err)
			}
			if e.Status != tc.want.Status || e.Code != tc.want.Code {
				t.Errorf("decodeAnswer = %+v; want status %d code %s", e, tc.want.Status, tc.want.Code)
			}
			if tc.want.Message != "" && (e.Message != tc.want.Message || e.Hint != tc.want.Hint) {
				t.Errorf("decodeAnswer = %+v; want %+v", e, tc.want)
			}
			if tc.want.Message == "" && !strings.Contains(e.Message, "malformed answer from agent") {
				t.Errorf("decodeAnswer message = %q; want it to say malformed answer", e.Message)
			}
		})
	}
}
