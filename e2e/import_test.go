package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestImportOffersRemoval: on a terminal, importing agavepy's cache asks
// whether to remove the refresh token from the file, and removes it only
// on a yes; everything else in the file stays.
func TestImportOffersRemoval(t *testing.T) {
	t.Parallel()
	const prompt = "Remove it from the file? [y/N] "
	for _, answer := range []string{"", "n", "y"} {
		t.Run(fmt.Sprintf("answer %q", answer), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tapistest.Config{})
			if err := e.fake.AddClient("jdoe", "c9", "k9"); err != nil {
				t.Fatal(err)
			}
			_, refresh := e.fake.IssueTokens("jdoe", "c9")
			path := filepath.Join(e.home, ".agave", "current")
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			content := fmt.Sprintf(`{"tenantid":"dev","baseurl":%q,"apisecret":"k9","apikey":"c9","username":"jdoe","access_token":"","refresh_token":%q,"created_at":"1539708516","expires_in":"14400"}`,
				e.fake.URL(), refresh)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			e.startAgent()
			r := e.tokenTTY("import", "dev", "--from-file", path)
			r.answer(prompt, 1, answer)
			code, out := r.wait()
			if code != 0 || !strings.Contains(out, "dev is ready") || !strings.Contains(out, path+" still holds the refresh token in plain text") {
				t.Fatalf("import on a terminal: exit %d; want 0, ready and the offer:\n%s", code, out)
			}
			if st := e.status("dev"); st.State != ipc.StateReady || st.ClientID != "c9" {
				t.Errorf("status = %s with client %q; want ready with c9", st.State, st.ClientID)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if answer != "y" {
				if string(b) != content || !strings.Contains(out, "left "+path+" as it is") {
					t.Errorf("after %q the file changed, or the program did not say it stayed:\n%s\nfile: %s", answer, out, b)
				}
				return
			}
			if strings.Contains(string(b), refresh) || !strings.Contains(string(b), `"apikey":"c9"`) || !strings.Contains(out, "removed the refresh token from "+path) {
				t.Errorf("after yes: file %s; want it without the refresh token and the rest kept\n%s", b, out)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode after removal: %v, %v; want 0600", fi.Mode().Perm(), err)
			}
			e.mustToken("", "dev") // the session does not need the file
		})
	}
}
