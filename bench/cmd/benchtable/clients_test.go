package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFrameAnswer(t *testing.T) {
	cases := []struct {
		name    string
		answer  string
		want    time.Time
		wantErr string // part of the error; "" for none
	}{
		{"ok", `@tapis-agent/1 ok 14399 1796112000 "eyJ.x.sig" "dev" "https://dev.tapis.io" "jdoe"` + "\n", time.Unix(1796112000, 0), ""},
		{"ok with a fraction", `@tapis-agent/1 ok 14399 1796112000.25 "eyJ.x.sig" "dev" "https://dev.tapis.io" "jdoe"` + "\n", time.Unix(1796112000, 0), ""},
		{"error", `@tapis-agent/1 error login_required "no session" "tapis-token login dev"` + "\n", time.Time{}, "login_required"},
		{"no newline", `@tapis-agent/1 ok 14399 1796112000 "eyJ.x.sig" "dev" "https://dev.tapis.io" "jdoe"`, time.Time{}, "not one line"},
		{"http", "HTTP/1.1 200 OK\r\n", time.Time{}, "not a token frame"},
		{"empty token", `@tapis-agent/1 ok 14399 1796112000 "" "dev" "https://dev.tapis.io" "jdoe"` + "\n", time.Time{}, "no access token"},
		{"bad expiry", `@tapis-agent/1 ok 14399 soon "eyJ.x.sig" "dev" "https://dev.tapis.io" "jdoe"` + "\n", time.Time{}, "expiry"},
		{"short", "@tapis-agent/1 ok 14399\n", time.Time{}, "not a token frame"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFrameAnswer([]byte(tc.answer))
			if tc.wantErr == "" {
				if err != nil || !got.Equal(tc.want) {
					t.Errorf("parseFrameAnswer = %v, %v; want %v, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFrameAnswer error = %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestBaselineExchange runs the raw frame client and the Go frame client
// against the do-nothing agent: the start-up floor must do the whole
// exchange, or its figure would flatter nothing.
func TestBaselineExchange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	w := &world{dir: t.TempDir(), tokenBytes: 900}
	var err error
	if _, w.rawToken, w.nullAgent, err = buildBaselines(filepath.Join(w.dir, "b")); err != nil {
		t.Fatal(err)
	}
	sock, null, err := w.startNullAgent()
	if err != nil {
		t.Fatal(err)
	}
	defer null.stop()

	cmd := exec.Command(w.rawToken)
	cmd.Env = []string{"TAPIS_AGENT_SOCK=" + sock}
	out, err := cmd.Output()
	if want := strings.Repeat("a", w.tokenBytes) + "\n"; err != nil || string(out) != want {
		t.Errorf("rawtoken = %.20q… (%d bytes), %v; want %d bytes of token and a newline", out, len(out), err, len(want))
	}
	cmd = exec.Command(w.rawToken)
	cmd.Env = []string{"TAPIS_AGENT_SOCK=" + filepath.Join(w.dir, "none.sock")}
	if out, err := cmd.Output(); err == nil {
		t.Errorf("rawtoken without an agent = %q, nil; want an error", out)
	}

	exp, err := frameCall(sock)("dev", time.Minute)
	if want := time.Unix(1796112000, 0); err != nil || !exp.Equal(want) {
		t.Errorf("frameCall = %v, %v; want %v, nil", exp, err, want)
	}
}
