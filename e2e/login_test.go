package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/agent"
	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestDeviceLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{DeviceApproveAfter: 2 * time.Second, AccessTTL: 6 * time.Second})
	e.withClient("")
	e.startAgent()

	start := time.Now()
	b := e.tokenBg("login", "dev", "--device")
	var pending ipc.TenantStatus
	e.waitFor("device_pending in status", 10*time.Second, func() bool {
		pending = e.status("dev")
		return pending.State == ipc.StateDevicePending
	})
	if pending.Device == nil || pending.Device.UserCode == "" {
		t.Fatalf("pending status = %+v; want the user code", pending)
	}
	code, stderr := e.wait(b, 30*time.Second)
	if code != 0 {
		t.Fatalf("login --device: exit %d\n%s\nagent log:\n%s", code, stderr, e.agentLog())
	}
	// Tapis gives no polling interval: the agent polls every 5 s (RFC
	// 8628's default), not as fast as it can.
	elapsed := time.Since(start)
	if polls, most := e.fake.GrantCalls("device_code"), int(elapsed/(5*time.Second))+1; polls > most {
		t.Errorf("device_code polls in %s = %d; want at most %d (one per 5 s)", elapsed.Round(time.Millisecond), polls, most)
	}
	for _, want := range []string{pending.Device.VerificationURI, pending.Device.UserCode, "logged in to dev as jdoe"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	st := e.status("dev")
	if st.State != ipc.StateReady || st.ClientID != testClientID || st.Device != nil {
		t.Errorf("status after approval = %+v; want ready with client c1", st)
	}
	if _, err := verify(e, strings.TrimSpace(e.mustToken("", "dev").stdout)); err != nil {
		t.Errorf("token after device login: %v", err)
	}
	// The session refreshes with the client's key (6 s tokens: at about 4 s).
	e.waitFor("a refresh of the device-login session", 15*time.Second, func() bool {
		return e.status("dev").RefreshCount >= 1
	})
}

// TestDeviceLoginFakeBinary runs the device flow against the built
// tapis-fake binary with -device-approve-after 2s, as the demo and manual
// tests do: the client is registered over its API, the approval comes
// after 2 s, and the login ends in a ready session. (The binary exposes no
// counters; TestDeviceLogin checks the polling pace.)
func TestDeviceLoginFakeBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	base := startFakeBinary(t, "-device-approve-after", "2s", "-access-ttl", "1h", "-user", "jdoe:secret")
	id, key := registerClient(t, base, "jdoe", "secret")
	keyFile := filepath.Join(e.dir, "client.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nclient_id = %q\nclient_key_file = %q\n", base, id, keyFile))
	e.startAgent()

	start := time.Now()
	r := e.token("", "login", "dev", "--device")
	elapsed := time.Since(start)
	if r.code != 0 {
		t.Fatalf("login --device against tapis-fake: exit %d\n%s\nagent log:\n%s", r.code, r.stderr, e.agentLog())
	}
	if !strings.Contains(r.stderr, base+"/v3/oauth2/device") || !strings.Contains(r.stderr, "logged in to dev as jdoe") {
		t.Errorf("login --device stderr lacks the verification URI or the outcome:\n%s", r.stderr)
	}
	if elapsed < 2*time.Second {
		t.Errorf("login ended after %s, before the fake approved the code (2 s)", elapsed)
	}
	st := e.status("dev")
	if st.State != ipc.StateReady || st.ClientID != id || st.Username != "jdoe" {
		t.Errorf("status after approval = %+v; want ready as jdoe with client %s", st, id)
	}
	tok := strings.TrimSpace(e.mustToken("", "dev").stdout)
	if strings.Count(tok, ".") != 2 {
		t.Errorf("token after device login = %q; want a JWT", tok)
	}
}

// startFakeBinary runs the built tapis-fake with args until the test ends
// and returns its base URL, the first line it prints.
func startFakeBinary(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tapis-fake"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading tapis-fake's base URL: %v", err)
	}
	return strings.TrimSpace(line)
}

// registerClient registers an OAuth client of user at base the way a user
// does once by hand: a client-less password grant, then POST
// /v3/oauth2/clients with that token. It returns the client's id and key.
func registerClient(t *testing.T, base, user, password string) (string, string) {
	t.Helper()
	post := func(path, token string, body any, result any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-Tapis-Token", token)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct{ Result json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST %s: %s, %v", path, resp.Status, err)
		}
		if err := json.Unmarshal(env.Result, result); err != nil {
			t.Fatalf("POST %s: result: %v", path, err)
		}
	}
	var tok struct {
		AccessToken struct {
			AccessToken string `json:"access_token"`
		} `json:"access_token"`
	}
	post("/v3/oauth2/tokens", "", map[string]string{"grant_type": "password", "username": user, "password": password}, &tok)
	var c struct {
		ClientID  string `json:"client_id"`
		ClientKey string `json:"client_key"`
	}
	post("/v3/oauth2/clients", tok.AccessToken.AccessToken, map[string]string{}, &c)
	if c.ClientID == "" || c.ClientKey == "" {
		t.Fatalf("registered client has no id or key: %+v", c)
	}
	return c.ClientID, c.ClientKey
}

func TestDeviceLoginExpiresUnapproved(t *testing.T) {
	t.Parallel()
	// The fake's clock runs 596 s behind the wall clock, so its 600 s
	// device codes expire about 4 s from now by the wall clock; after
	// that it keeps answering "not ready", as the real service does, and
	// the agent must end the login itself.
	e := newEnv(t, tapistest.Config{Now: func() time.Time { return time.Now().Add(-596 * time.Second) }})
	e.withClient("")
	e.startAgent()
	start := time.Now()
	r := e.token("", "login", "dev", "--device")
	if r.code != 1 || !strings.Contains(r.stderr, "expired") || !strings.Contains(r.stderr, "before it was approved") ||
		!strings.Contains(r.stderr, "hint: tapis-token login dev --device") {
		t.Fatalf("unapproved code: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("expiry noticed after %s; want about 4s", took)
	}
	if st := e.status("dev"); st.State != ipc.StateLoginRequired || !strings.Contains(st.LastError, "expired") {
		t.Errorf("status = %+v; want login_required with the expiry as last_error", st)
	}
}

func TestDeviceLoginInterrupted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.withClient("")
	e.startAgent()
	b := e.tokenBg("login", "dev", "--device")
	e.waitFor("device_pending", 10*time.Second, func() bool { return e.status("dev").State == ipc.StateDevicePending })
	if err := b.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, stderr := e.wait(b, 10*time.Second)
	if code != 1 || !strings.Contains(stderr, "abandoned") {
		t.Errorf("after Ctrl-C: exit %d, stderr:\n%s", code, stderr)
	}
	// The agent stopped polling: approving the code now logs nobody in.
	for _, c := range e.fake.UserCodes() {
		_ = e.fake.ApproveDevice(c)
	}
	polls := e.fake.GrantCalls("device_code")
	if st := e.status("dev"); st.State != ipc.StateLoginRequired || st.Device != nil {
		t.Errorf("status after Ctrl-C = %+v; want login_required, no code", st)
	}
	if e.fake.GrantCalls("device_code") != polls {
		t.Errorf("the agent kept polling after the login was abandoned")
	}
}

// TestPasswordCommandHangs: a password_command that does not finish is
// stopped after the agent's timeout, and the tenant stays login_required
// with the reason. The agent runs in this process, so that the timeout
// can be 1 s rather than the 30 s of tapis-agent serve, which proves no
// more. (The other outcomes of a password_command are in
// testdata/script/password-command.txtar.)
func TestPasswordCommandHangs(t *testing.T) {
	t.Parallel()
	fake := tapistest.New(t, tapistest.Config{Users: map[string]string{"jdoe": "secret"}})
	cmd := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\nexec sleep 120\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p := startInproc(t, agent.Options{PasswordTimeout: time.Second},
		&config.Tenant{Name: "dev", BaseURL: fake.URL(), Username: "jdoe", PasswordCommand: []string{cmd}})
	var st ipc.TenantStatus
	poll(t, "the password_command login to end", 15*time.Second, func() bool {
		st = p.tenantStatus(t, "dev")
		return st.State == ipc.StateReady || st.LastError != ""
	})
	if st.State != ipc.StateLoginRequired || !strings.Contains(st.LastError, "did not finish within 1s") {
		t.Errorf("status = %s, last_error %q; want %s with %q", st.State, st.LastError, ipc.StateLoginRequired, "did not finish within 1s")
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("the login ended %s after the start, before the 1s timeout", took)
	}
}
