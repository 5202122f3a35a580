package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// Secrets the audit's flows use. Distinct values, so that a hit names
// the flow that leaked it and no common word matches by chance.
const (
	auditPassword      = "pw-jdoe-4f1c9a"
	auditWrongPassword = "wrong-pw-7f3a9"
	auditRobotPassword = "pwcmd-pass-3d7e" // printed by the password_command
	auditClientKey     = "audit-key-91d0"  // client audit-client, in devk.key
	auditWrongKey      = "wrong-client-key-2b8e"
	auditDeviceKey     = "device-key-0a6b" // client device-client, given on stdin
	auditImportKey     = "imported-key-5c1e"
	auditWrongImport   = "wrong-import-key-e61f"
)

// TestSecretsAudit runs every flow of the product against the real
// binaries, with the agent started by `tapis-agent start` so that it logs
// to $XDG_STATE_HOME/tapis-agent/agent.log under HOME and reads its config
// and client key file from under HOME. It then scans the agent's log, every
// output of tapis-token and tapis-agent, the status JSON, and every file
// under HOME, snapshotted after each flow, for any password, client key,
// access or refresh token. The fakes record every token they issue,
// refresh tokens included, which only the agent ever sees. Configured
// token files and outputs that print a token on purpose may hold access
// tokens, and a client key file its key; nothing else may hold a secret,
// and any JWT the fakes did not issue is a hit too.
//
// The flows: password logins (wrong and right password), a wrong and a
// right client key from a client_key_file, a device-code login with the
// client key on stdin, imports (with a wrong and a right client key),
// forced refreshes, a refresh during an upstream fault, a password_command
// login and its re-login after a refused refresh, token files in the
// connect_tapis, tapisv3-cli and tapis-cmd formats, reloads by SIGHUP and
// POST /v1/reload, logouts, and stop. Wrong OAuth client keys matter
// because Tapis echoes the submitted key in its answer (§2.6 row 11:
// "Invalid client credentials: <id>, <key>. …").
func TestSecretsAudit(t *testing.T) {
	t.Parallel()
	rec := newTokenRecorder()
	e := newSecretsEnv(t, tapistest.Config{
		AccessTTL:          30 * time.Second,
		Users:              map[string]string{"jdoe": auditPassword},
		DeviceApproveAfter: time.Second,
	}, rec)
	// The password_command tenant has a fake of its own, so that the
	// refused refresh injected there hits no other tenant's refresh.
	pwFake := recordedFake(t, tapistest.Config{TenantID: "pw", AccessTTL: 30 * time.Second,
		Users: map[string]string{"robot": auditRobotPassword}}, rec)

	a := newAudit(t)
	for name, v := range map[string]string{
		"password": auditPassword, "wrong password": auditWrongPassword, "password_command's password": auditRobotPassword,
		"client key": auditClientKey, "wrong client key": auditWrongKey, "device client key": auditDeviceKey,
		"imported client key": auditImportKey, "wrong imported client key": auditWrongImport,
	} {
		a.secret(name, v)
	}
	for id, key := range map[string]string{"audit-client": auditClientKey, "device-client": auditDeviceKey, "imported-client": auditImportKey} {
		if err := e.fake.AddClient("jdoe", id, key); err != nil {
			t.Fatal(err)
		}
	}

	// Files under HOME: the token files of three formats, two client key
	// files (a right key and a wrong one).
	home := func(p ...string) string { return filepath.Join(append([]string{e.home}, p...)...) }
	tokenFile, cliFile, cmdFile := home("tokens.json"), home("tapis", "v3", "configs", "config.json"), home("TapisCmd", "jwt", "dev-dev-jdoe.properties")
	tokenFiles := map[string]bool{tokenFile: true, cliFile: true, cmdFile: true}
	keyFile, wrongKeyFile := home(".config", "tapis-agent", "devk.key"), home(".config", "tapis-agent", "dev3.key")
	keyFiles := map[string]string{keyFile: auditClientKey, wrongKeyFile: auditWrongKey}
	for path := range tokenFiles { // the CLIs make their directories
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for path, key := range keyFiles {
		if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pwCommand := e.script("pw", "echo "+auditRobotPassword) // outside HOME, like a password store
	base := fmt.Sprintf(`default_tenant = "dev"

[tenants.dev]
base_url = %[1]q
username = "jdoe"
token_file = %[2]q

[tenants.dev2]
base_url = %[1]q
username = "jdoe"

[tenants.dev3]
base_url = %[1]q
username = "jdoe"
client_id = "audit-client"
client_key_file = %[3]q

[tenants.devk]
base_url = %[1]q
username = "jdoe"
client_id = "audit-client"
client_key_file = %[4]q

[tenants.devd]
base_url = %[1]q
`, e.fake.URL(), tokenFile, wrongKeyFile, keyFile)
	reloaded := func(withCmd bool) string {
		s := base + fmt.Sprintf(`
[tenants.devpw]
base_url = %q
username = "robot"
password_command = [%q]

[tenants.devcli]
base_url = %q
username = "jdoe"
token_file = %q
token_format = "tapisv3-cli"
`, pwFake.URL(), pwCommand, e.fake.URL(), cliFile)
		if withCmd {
			s += fmt.Sprintf(`
[tenants.devcmd]
base_url = %q
username = "jdoe"
token_file = %q
token_format = "tapis-cmd"
`, e.fake.URL(), cmdFile)
		}
		return s
	}
	e.writeConfig(base)

	snapshot := func(stage string) { a.snapshot(stage, e.home, tokenFiles, keyFiles) }
	// run runs tapis-token and keeps its outputs for the scan. Outputs of
	// a command that prints a token on purpose may hold access tokens; the
	// tokens printed are added to the secrets, so that they are looked for
	// everywhere else.
	run := func(label, stdin string, printsToken bool, args ...string) result {
		t.Helper()
		r := e.token(stdin, args...)
		a.output(label+": stdout", r.stdout, printsToken)
		a.output(label+": stderr", r.stderr, false)
		if printsToken {
			toks := jwtPattern.FindAllString(r.stdout, -1)
			if r.code != 0 || len(toks) != 1 {
				t.Errorf("%s: exit %d, %d tokens printed; want 0 and one token\nstderr: %s", label, r.code, len(toks), r.stderr)
			}
			for _, tok := range toks {
				a.token("served by "+label, tok)
			}
		}
		return r
	}
	// login runs a tapis-token login that must succeed.
	login := func(label, stdin string, args ...string) {
		t.Helper()
		if r := run(label, stdin, false, append([]string{"login"}, args...)...); r.code != 0 {
			t.Fatalf("%s: exit %d\nstderr: %s\nagent log:\n%s", label, r.code, r.stderr, readFile(e.agentLogPath()))
		}
	}
	// forceRefresh waits until tenant's access token has less than 29 s
	// left and asks for 29 s, which makes the agent refresh it.
	forceRefresh := func(label, tenant string, printsToken bool) {
		t.Helper()
		exp := e.status(tenant).AccessExpiresAt
		if exp == nil {
			t.Fatalf("%s: %s has no access token", label, tenant)
		}
		e.waitFor(tenant+"'s token below 29s", 5*time.Second, func() bool { return time.Until(*exp) < 29*time.Second })
		run(label, "", printsToken, tenant, "--min-valid", "29s")
	}

	// `tapis-agent start`, as on a login node without systemd.
	r := e.startDetached("--log-level", "debug")
	a.output("tapis-agent start: stdout", r.stdout, false)
	a.output("tapis-agent start: stderr", r.stderr, false)
	st, err := e.client().Status(context.Background())
	if err != nil {
		t.Fatalf("status after start: %v", err)
	}
	pid := st.PID
	snapshot("after start")

	// Password logins, a wrong password and a wrong client key first.
	run("failed login", auditWrongPassword+"\n", false, "login", "dev", "--password-stdin")
	// The right password with the wrong client key: the fake answers with
	// the key in the message, and the login fails (the exit code is not
	// this test's business).
	before := e.fake.GrantCalls("password")
	if r := run("login with a wrong client key", auditPassword+"\n", false, "login", "dev3", "--password-stdin"); r.code == 0 {
		t.Errorf("login with a wrong client key: exit 0; want a failure")
	}
	if n := e.fake.GrantCalls("password") - before; n < 1 {
		t.Errorf("login with a wrong client key made %d password grants; want the key sent upstream", n)
	}
	run("status after a wrong client key", "", false, "status")
	run("status --json after a wrong client key", "", false, "status", "--json")
	run("token after a wrong client key", "", false, "dev3")
	login("login", auditPassword+"\n", "dev", "--password-stdin")
	run("token", "", true, "dev")
	run("token -H", "", true, "-H")
	run("token --json", "", true, "--json")
	run("token --env", "", true, "--env")
	run("claims", "", false, "claims", "dev")
	run("status", "", false, "status")
	run("status --json", "", false, "status", "--json")
	forceRefresh("forced refresh", "dev", true)
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 503, Times: 1})
	forceRefresh("refresh during a fault", "dev", false)
	run("status after a fault", "", false, "status", "--json")
	snapshot("after the password logins")

	// The right client key, from client_key_file.
	login("login with a client key file", auditPassword+"\n", "devk", "--password-stdin")
	run("token devk", "", true, "devk")
	forceRefresh("refresh with a client key file", "devk", true)
	snapshot("after the client key file login")

	// A device-code login with the client key on stdin; the fake approves
	// the code a second after it issued it, and the agent polls every 5 s.
	login("device login", auditDeviceKey+"\n", "devd", "--device", "--client-id", "device-client", "--client-key-stdin")
	run("token devd", "", true, "devd")
	forceRefresh("refresh after a device login", "devd", true)
	run("status after a device login", "", false, "status")
	snapshot("after the device login")

	// Import an access token, and a full session with a client key.
	access, _ := e.fake.IssueTokens("jdoe", "")
	a.token("imported", access)
	run("import access", access+"\n", false, "import", "dev2")
	_, refresh := e.fake.IssueTokens("jdoe", "imported-client")
	a.token("imported", refresh)
	// The import checks the refresh token with a refresh grant, which
	// echoes a wrong key too.
	before = e.fake.GrantCalls("refresh_token")
	if r := run("import with a wrong client key", refresh+"\n"+auditWrongImport+"\n", false, "import", "dev2", "--refresh-token", "--client-id", "imported-client", "--client-key-stdin"); r.code == 0 {
		t.Errorf("import with a wrong client key: exit 0; want a failure")
	}
	if n := e.fake.GrantCalls("refresh_token") - before; n < 1 {
		t.Errorf("import with a wrong client key made %d refresh grants; want the key sent upstream", n)
	}
	run("import refresh", refresh+"\n"+auditImportKey+"\n", false, "import", "dev2", "--refresh-token", "--client-id", "imported-client", "--client-key-stdin")
	run("token dev2", "", true, "dev2")
	snapshot("after the imports")

	// Reload by SIGHUP after adding a password_command tenant, which logs
	// in unattended, and tenants with tapisv3-cli and tapis-cmd token files.
	e.writeConfig(reloaded(true))
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the password_command login", 10*time.Second, func() bool {
		st, err := e.client().Status(context.Background())
		if err != nil {
			return false
		}
		for _, ts := range st.Tenants {
			if ts.Tenant == "devpw" && ts.State == ipc.StateReady {
				return true
			}
		}
		return false
	})
	run("token devpw", "", true, "devpw")
	login("login devcli", auditPassword+"\n", "devcli", "--password-stdin")
	login("login devcmd", auditPassword+"\n", "devcmd", "--password-stdin")
	run("token devcli", "", true, "devcli")
	run("token devcmd", "", true, "devcmd")
	run("status after the SIGHUP reload", "", false, "status")
	snapshot("after the SIGHUP reload")

	// A refused refresh: the password_command logs in again, and the
	// request that met the refusal waits for it and gets its token.
	logins := pwFake.GrantCalls("password")
	pwFake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: http.StatusBadRequest,
		Body: tapistest.EnvelopeError("Invalid refresh_token."), ContentType: "application/json", Times: 1})
	forceRefresh("refused refresh", "devpw", true)
	e.waitFor("the re-login after a refused refresh", 15*time.Second, func() bool {
		return pwFake.GrantCalls("password") > logins && e.status("devpw").State == ipc.StateReady
	})
	run("token devpw after the re-login", "", true, "devpw")
	run("status after the re-login", "", false, "status", "--json")
	snapshot("after the re-login")

	// Reload by POST /v1/reload after removing the tapis-cmd tenant.
	e.writeConfig(reloaded(false))
	if err := reload(e.sock); err != nil {
		t.Fatalf("POST /v1/reload: %v", err)
	}
	// An asked reload puts the removal in force at once.
	e.waitFor("devcmd gone from status", 5*time.Second, func() bool {
		st, err := e.client().Status(context.Background())
		if err != nil {
			return false
		}
		for _, ts := range st.Tenants {
			if ts.Tenant == "devcmd" {
				return false
			}
		}
		return true
	})
	run("status after POST /v1/reload", "", false, "status", "--json")
	snapshot("after POST /v1/reload")

	// Logouts, and the status seen by an in-process client.
	for _, tn := range []string{"dev2", "devcli", "dev"} {
		run("logout "+tn, "", false, "logout", tn)
	}
	run("token after logout", "", false, "dev")
	if st, err := e.client().Status(context.Background()); err == nil {
		b, _ := json.Marshal(st)
		a.output("status JSON", string(b), false)
	}
	snapshot("after the logouts")

	r = e.agentCmd(nil, "stop")
	if r.code != 0 {
		t.Errorf("tapis-agent stop: exit %d\n%s", r.code, r.stderr)
	}
	a.output("tapis-agent stop: stdout", r.stdout, false)
	a.output("tapis-agent stop: stderr", r.stderr, false)
	e.waitFor("the agent to exit", 10*time.Second, func() bool { return !processAlive(pid) })
	snapshot("after stop")

	// Every secret is known now: the fakes' tokens and clients, including
	// the client the agent registered for the password_command login.
	issuedAccess, issuedRefresh := rec.tokens()
	for v, s := range a.secrets {
		if s.access && strings.Contains(s.name, "served") && !slices.Contains(issuedAccess, v) {
			t.Errorf("the %s was not recorded as issued", s.name)
		}
	}
	for _, tok := range append(issuedAccess, issuedRefresh...) {
		a.token("issued", tok)
	}
	for _, f := range []*tapistest.Server{e.fake, pwFake} {
		for _, c := range f.Clients() {
			a.secret("client key of "+c.ClientID, c.ClientKey)
		}
	}
	if len(issuedRefresh) == 0 {
		t.Errorf("the fakes issued no refresh token; the recording misses them")
	}

	res := a.scan()
	if !res.paths[e.agentLogPath()] {
		t.Errorf("the agent log %s was not among the files scanned", e.agentLogPath())
	}
	for path := range tokenFiles {
		if !a.heldAccessToken(path) {
			t.Errorf("token file %s never held an access token when scanned", path)
		}
	}
	if res.files == 0 {
		t.Errorf("no file under HOME scanned")
	}
	t.Logf("secrets audit: %d outputs scanned, %d files scanned (%d distinct under HOME), %d secrets checked, %d hits",
		res.outputs, res.files, len(res.paths), len(a.secrets), res.hits)
}
