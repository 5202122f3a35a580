package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestConnectTapisTokenFile(t *testing.T) {
	t.Parallel()
	// 6 s tokens: the agent refreshes them at about 4 s.
	e := newEnv(t, tapistest.Config{AccessTTL: 6 * time.Second})
	path := filepath.Join(e.home, ".tapis_tokens.json")
	e.tenantLines(fmt.Sprintf("token_file = %q\n", path))
	e.startAgent()
	e.login()

	first := pythonReads(t, path)
	if served := strings.TrimSpace(e.mustToken("", "dev").stdout); served != first {
		t.Errorf("the token file holds another token than the agent serves")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), `{"access_token": "`) || !strings.Contains(string(data), `", "expires_at": "`) ||
		!strings.HasSuffix(string(data), `+00:00"}`) {
		t.Errorf("token file is not in Python's json.dump layout: %s", data)
	}

	e.waitFor("a refresh to rewrite the token file", 15*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && !strings.Contains(string(b), first)
	})
	now := pythonReads(t, path)
	if served := strings.TrimSpace(e.mustToken("", "dev").stdout); served != now {
		t.Errorf("after a refresh the file holds another token than the agent serves")
	}
	if ents, _ := os.ReadDir(e.home); len(ents) != 1 {
		t.Errorf("home holds %d entries after refreshes; want the token file alone (no temporaries)", len(ents))
	}

	e.mustToken("", "logout", "dev")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file after logout: %v; want it gone", err)
	}
}

// v3CLIConfig is what the test reads of tapisv3-cli's config.json.
type v3CLIConfig struct {
	CurrentUser string         `json:"current_user"`
	Output      map[string]any `json:"output"`
	Profiles    []struct {
		Username       string `json:"username"`
		CurrentBaseURL string `json:"current_base_url"`
		Auths          []struct {
			BaseURL string `json:"base_url"`
			JWT     string `json:"jwt"`
		} `json:"auths"`
		// Read by the tapiscustom and tapisetl packages
		// (tapis-protocol.md §8.2).
		BaseURL *string `json:"base_url"`
		JWT     *string `json:"jwt"`
	} `json:"profiles"`
}

func TestTokenFileFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	cli := filepath.Join(e.home, "tapis", "v3", "configs", "config.json")
	props := filepath.Join(e.home, "TapisCmd", "jwt", "dev-dev-jdoe.properties")
	for _, p := range []string{cli, props} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(cli, []byte(`{"current_user": "x", "output": {"type": "json"}, "profiles": [{"username": "x", "auths": []}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// One tenant per format: two tenants on the same fake.
	e.writeConfig(fmt.Sprintf(`[tenants.dev]
base_url = %q
username = "jdoe"
token_file = %q
token_format = "tapisv3-cli"

[tenants.devcmd]
base_url = %q
username = "jdoe"
token_file = %q
token_format = "tapis-cmd"
`, e.fake.URL(), cli, e.fake.URL(), props))
	e.startAgent()
	e.mustToken("secret\n", "login", "dev", "--password-stdin")
	e.mustToken("secret\n", "login", "devcmd", "--password-stdin")
	tok := strings.TrimSpace(e.mustToken("", "dev").stdout)
	tokCmd := strings.TrimSpace(e.mustToken("", "devcmd").stdout)

	var c v3CLIConfig
	readCLI := func() []byte {
		t.Helper()
		c = v3CLIConfig{}
		data, err := os.ReadFile(cli)
		if err != nil {
			t.Fatalf("tapisv3-cli config: %v", err)
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("tapisv3-cli config: %v\n%s", err, data)
		}
		return data
	}
	data := readCLI()
	if c.CurrentUser != "jdoe" || c.Output["type"] != "json" || len(c.Profiles) != 2 || c.Profiles[0].Username != "jdoe" ||
		c.Profiles[0].CurrentBaseURL != e.fake.URL() ||
		len(c.Profiles[0].Auths) != 1 || c.Profiles[0].Auths[0].JWT != tok || c.Profiles[0].Auths[0].BaseURL != e.fake.URL() {
		t.Errorf("tapisv3-cli config = %s", data)
	}
	if p := c.Profiles[0]; p.BaseURL == nil || *p.BaseURL != e.fake.URL() || p.JWT == nil || *p.JWT != tok {
		t.Errorf("tapisv3-cli profile lacks the top-level base_url and jwt of the token served: %s", data)
	}
	if data, _ := os.ReadFile(props); string(data) != "BASE_URL="+e.fake.URL()+"\nUSER_JWT="+tokCmd+"\n" {
		t.Errorf("tapis-cmd file = %q", data)
	}

	// Logout takes the token out of both: the tapis-cmd file goes; the
	// tapisv3-cli config is the CLI's own and stays, without the token,
	// its other profile and settings kept.
	e.mustToken("", "logout", "dev")
	e.mustToken("", "logout", "devcmd")
	if _, err := os.Stat(props); !os.IsNotExist(err) {
		t.Errorf("tapis-cmd file after logout: %v; want it gone", err)
	}
	data = readCLI()
	if strings.Contains(string(data), tok) {
		t.Errorf("tapisv3-cli config still holds the token after logout: %s", data)
	}
	if len(c.Profiles) != 2 || c.Output["type"] != "json" || c.Profiles[1].Username != "x" {
		t.Errorf("tapisv3-cli config lost the user's settings or other profile at logout: %s", data)
	}
	for _, p := range c.Profiles {
		if p.Username == "jdoe" && (p.JWT != nil || len(p.Auths) != 0) {
			t.Errorf("tapisv3-cli profile of jdoe after logout keeps jwt %v, auths %v", p.JWT != nil, p.Auths)
		}
	}
}

func TestTokenFileUnwritable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	path := filepath.Join(unwritableDir(t), "tapis-e2e-tokens.json")
	e.tenantLines(fmt.Sprintf("token_file = %q\n", path))
	e.startAgent()
	e.login()
	st := e.status("dev")
	if st.State != ipc.StateReady || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], path) {
		t.Fatalf("status = %+v; want ready with a warning naming %s", st, path)
	}
	if out := e.mustToken("", "status").stdout; !strings.Contains(out, "dev: warning: token_file "+path) {
		t.Errorf("status table lacks the warning:\n%s", out)
	}
	if !strings.Contains(e.agentLog(), "token_file_failed") {
		t.Errorf("agent log lacks the warning:\n%s", e.agentLog())
	}
	e.mustToken("", "dev") // the session survives
}
