package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRunPasswordCommand(t *testing.T) {
	cases := []struct {
		name    string
		argv    []string
		want    string // the password; "" for an error
		errHas  []string
		errNot  []string // never in Error(), which is logged
		detail  string   // in Detail(), shown in status
		timeout time.Duration
	}{
		{name: "first line", argv: sh("printf 'hunter2\\nsecond\\n'"), want: "hunter2"},
		{name: "no newline, CRLF", argv: sh("printf 'pw\\r\\n'"), want: "pw"},
		{name: "without shell", argv: []string{"/bin/echo", "s3cret"}, want: "s3cret"},
		{name: "fails", argv: sh("echo leaked-pw; echo 'gpg: decryption failed' >&2; exit 3"),
			errHas: []string{"failed", "exit status 3"}, errNot: []string{"leaked-pw", "gpg"}, detail: "gpg: decryption failed"},
		{name: "empty", argv: sh("echo"), errHas: []string{"printed no password"}},
		{name: "nothing at all", argv: []string{"/bin/true"}, errHas: []string{"printed no password"}},
		{name: "hangs", argv: sh("sleep 30; echo late"), timeout: 300 * time.Millisecond,
			errHas: []string{"did not finish within 300ms"}},
		{name: "hangs in a grandchild", argv: sh("(sleep 30; echo late) & wait"), timeout: 300 * time.Millisecond,
			errHas: []string{"did not finish"}},
		{name: "not found", argv: []string{"/no/such/command"}, errHas: []string{"running password_command", "/no/such/command"}},
		{name: "stderr echoing the password is hidden", argv: sh("echo pw123; echo 'oops pw123' >&2; exit 1"),
			errHas: []string{"failed"}, errNot: []string{"pw123"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			start := time.Now()
			got, err := runPasswordCommand(context.Background(), tc.argv, timeout)
			if took := time.Since(start); took > timeout+3*time.Second {
				t.Errorf("took %s; want about %s at most", took, timeout)
			}
			if tc.want != "" {
				if err != nil || got.Reveal() != tc.want {
					t.Fatalf("runPasswordCommand = %q, %v; want %q", got.Reveal(), err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("runPasswordCommand = %q; want an error", got.Reveal())
			}
			ce, _ := err.(*commandError)
			for _, w := range tc.errHas {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tc.errNot {
				if strings.Contains(err.Error(), w) || (ce != nil && strings.Contains(ce.Detail(), "pw123")) {
					t.Errorf("error %q (detail %q) holds %q", err, ce.Detail(), w)
				}
			}
			if tc.detail != "" && (ce == nil || !strings.Contains(ce.Detail(), tc.detail)) {
				t.Errorf("detail of %v lacks %q", err, tc.detail)
			}
		})
	}
}

// syncBuffer is a log sink safe for the agent's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitStatus polls the agent's status of dev until cond holds: the login
// runs in the agent's own goroutine and a child process.
func waitStatus(t *testing.T, a *Agent, cond func(ipc.TenantStatus) bool) ipc.TenantStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := a.tenantStatus("dev")
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of dev stuck at %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPasswordCommandLogin(t *testing.T) {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}})
	dir := t.TempDir()
	cases := []struct {
		name   string
		script string
		state  string
		errHas string
	}{
		{"good", "echo the-pw", ipc.StateReady, ""},
		{"wrong password", "echo not-the-pw", ipc.StateLoginRequired, "rejected the username or password"},
		{"fails", "echo the-pw >&2; exit 2", ipc.StateLoginRequired, "exit status 2"},
		{"prints nothing", "true", ipc.StateLoginRequired, "printed no password"},
		{"hangs", "exec sleep 30", ipc.StateLoginRequired, "did not finish within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &syncBuffer{}
			script := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(script, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			a := New(Options{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
				PasswordTimeout: 500 * time.Millisecond})
			defer a.Close()
			a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {
				Name: "dev", BaseURL: fake.URL(), Username: "jdoe", PasswordCommand: []string{script}}}})
			st := waitStatus(t, a, func(st ipc.TenantStatus) bool {
				return st.State == ipc.StateReady || st.LastError != ""
			})
			if st.State != tc.state || !strings.Contains(st.LastError, tc.errHas) {
				t.Errorf("status = %s, %q; want %s with %q", st.State, st.LastError, tc.state, tc.errHas)
			}
			if strings.Contains(log.String(), "the-pw") {
				t.Errorf("the password is in the log:\n%s", log)
			}
		})
	}
}

func TestPasswordCommandReloginAfterRejection(t *testing.T) {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer a.Close()
	a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {
		Name: "dev", BaseURL: fake.URL(), Username: "jdoe", ClientID: "c1", ClientKey: "k1",
		PasswordCommand: sh("echo the-pw")}}})
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return st.State == ipc.StateReady })
	first := a.session("dev")

	// Tapis rejects the held refresh token for good: the agent logs in
	// again with the password_command.
	fake.SetSingleUseRefresh(true)
	used := first.tok.Load()
	if _, err := first.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	first.tok.Store(used)
	if _, err := first.refresh(context.Background()); err == nil {
		t.Fatal("refresh with a used single-use token succeeded")
	}
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return a.session("dev") != first && st.State == ipc.StateReady })
}
