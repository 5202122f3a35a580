package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Beside the token file, home holds only the agent's state directory
	// (its host record).
	if ents, _ := os.ReadDir(e.home); len(ents) != 2 || ents[0].Name() != ".local" {
		t.Errorf("home holds %v after refreshes; want .local and the token file alone (no temporaries)", ents)
	}

	e.mustToken("", "logout", "dev")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file after logout: %v; want it gone", err)
	}
}
