package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestSecretsAudit runs every flow of the product against the real
// binaries, then scans the agent's log, every output of tapis-token but
// the tokens it prints on purpose, the status JSON and every file under
// HOME but the configured token and client key files for any password,
// client key, access or refresh token. Beyond the known values, any JWT
// ("eyJ…") is a hit: that catches the refresh tokens, which only the agent
// ever sees.
//
// The flows include wrong OAuth client keys, at login and at import,
// because Tapis echoes the submitted key in its answer (§2.6 row 11:
// "Invalid client credentials: <id>, <key>. …").
func TestSecretsAudit(t *testing.T) {
	e := newEnv(t, tapistest.Config{AccessTTL: 30 * time.Second})
	tokenFile := filepath.Join(e.home, "tokens.json")
	// Tenant dev3 names a real client of the fake but holds a wrong key.
	const wrongKey = "wrong-client-key-2b8e"
	if err := e.fake.AddClient("jdoe", "audit-client", "audit-key-91d0"); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.home, "dev3.key")
	if err := os.WriteFile(keyFile, []byte(wrongKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\ntoken_file = %q\n\n[tenants.dev2]\nbase_url = %q\nusername = \"jdoe\"\n"+
		"\n[tenants.dev3]\nbase_url = %q\nusername = \"jdoe\"\nclient_id = \"audit-client\"\nclient_key_file = %q\n",
		e.fake.URL(), tokenFile, e.fake.URL(), e.fake.URL(), keyFile))
	e.startAgent()

	secrets := map[string]string{"password": "secret", "wrong password": "wrong-pw-7f3a9", "wrong client key": wrongKey}
	var scanned []string // outputs that must hold no secret, labelled
	add := func(label, s string) { scanned = append(scanned, label+"\x00"+s) }
	run := func(label, stdin string, printsToken bool, args ...string) result {
		r := e.token(stdin, args...)
		if printsToken {
			tok := strings.TrimSpace(r.stdout)
			if i := strings.LastIndex(tok, " "); i >= 0 { // -H
				tok = tok[i+1:]
			}
			secrets["served token "+label] = strings.Trim(tok, "'")
		} else {
			add(label+" stdout", r.stdout)
		}
		add(label+" stderr", r.stderr)
		return r
	}

	run("failed login", "wrong-pw-7f3a9\n", false, "login", "dev", "--password-stdin")
	// The right password with the wrong client key: the fake answers with
	// the key in the message, and the login fails (the exit code is not
	// this test's business).
	before := e.fake.GrantCalls("password")
	if r := run("login with a wrong client key", "secret\n", false, "login", "dev3", "--password-stdin"); r.code == 0 {
		t.Errorf("login with a wrong client key: exit 0; want a failure")
	}
	if n := e.fake.GrantCalls("password") - before; n < 1 {
		t.Errorf("login with a wrong client key made %d password grants; want the key sent upstream", n)
	}
	run("status after a wrong client key", "", false, "status")
	run("status --json after a wrong client key", "", false, "status", "--json")
	run("token after a wrong client key", "", false, "dev3")
	if r := run("login", "secret\n", false, "login", "dev", "--password-stdin"); r.code != 0 {
		t.Fatalf("login: exit %d %s", r.code, r.stderr)
	}
	run("token", "", true, "dev")
	run("token -H", "", true, "-H")
	run("claims", "", false, "claims", "dev")
	run("status", "", false, "status")
	run("status --json", "", false, "status", "--json")
	e.waitRemainingBelow(28500 * time.Millisecond)
	run("forced refresh", "", true, "dev", "--min-valid", "29s")
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 503, Times: 1})
	e.waitRemainingBelow(28500 * time.Millisecond)
	run("refresh during a fault", "", false, "dev", "--min-valid", "29s")
	run("status after a fault", "", false, "status", "--json")
	// Import an access token, and a full session with a client key.
	access, _ := e.fake.IssueTokens("jdoe", "")
	secrets["imported access token"] = access
	run("import access", access+"\n", false, "import", "dev2")
	if err := e.fake.AddClient("jdoe", "imported-client", "imported-key-5c1e"); err != nil {
		t.Fatal(err)
	}
	_, refresh := e.fake.IssueTokens("jdoe", "imported-client")
	secrets["imported refresh token"] = refresh
	// The import checks the refresh token with a refresh grant, which
	// echoes a wrong key too.
	const wrongImportKey = "wrong-import-key-e61f"
	secrets["wrong imported client key"] = wrongImportKey
	before = e.fake.GrantCalls("refresh_token")
	if r := run("import with a wrong client key", refresh+"\n"+wrongImportKey+"\n", false, "import", "dev2", "--refresh-token", "--client-id", "imported-client", "--client-key-stdin"); r.code == 0 {
		t.Errorf("import with a wrong client key: exit 0; want a failure")
	}
	if n := e.fake.GrantCalls("refresh_token") - before; n < 1 {
		t.Errorf("import with a wrong client key made %d refresh grants; want the key sent upstream", n)
	}
	run("import refresh", refresh+"\nimported-key-5c1e\n", false, "import", "dev2", "--refresh-token", "--client-id", "imported-client", "--client-key-stdin")
	run("token dev2", "", true, "dev2")
	run("logout dev2", "", false, "logout", "dev2")
	run("logout", "", false, "logout", "dev")
	run("token after logout", "", false, "dev")
	for _, c := range e.fake.Clients() {
		secrets["client key "+c.ClientID] = c.ClientKey
	}
	if st, err := e.client().Status(); err == nil {
		b, _ := json.Marshal(st)
		add("status JSON", string(b))
	}
	e.stopAgent()
	add("agent log", e.agentLog())
	files := 0
	filepath.WalkDir(e.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == tokenFile || path == keyFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			files++
			add("file "+path, string(b))
		}
		return nil
	})

	// The scan would see a token where one is: every served token is a
	// JWT, and the configured token file holds one of them.
	for name, v := range secrets {
		if strings.HasPrefix(name, "served token") && strings.Count(v, ".") != 2 {
			t.Errorf("%s = %q; want a JWT", name, v)
		}
	}
	hits := 0
	for _, s := range scanned {
		label, text, _ := strings.Cut(s, "\x00")
		for name, v := range secrets {
			if v != "" && strings.Contains(text, v) {
				hits++
				t.Errorf("%s contains the %s", label, name)
			}
		}
		if strings.Contains(text, "eyJ") {
			hits++
			t.Errorf("%s contains a JWT: %q", label, text[max(0, strings.Index(text, "eyJ")-40):min(len(text), strings.Index(text, "eyJ")+40)])
		}
	}
	t.Logf("secrets audit: %d secrets known, %d outputs and %d files under HOME scanned, %d hits", len(secrets), len(scanned)-files, files, hits)
}
