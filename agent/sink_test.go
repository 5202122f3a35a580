package agent

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

func TestConnectTapisFormat(t *testing.T) {
	exp := time.Date(2026, 11, 22, 18, 11, 15, 676197000, time.FixedZone("CST", -6*3600))
	got, err := connectTapis(sinkToken{access: "a.b.c", exp: exp})
	if err != nil {
		t.Fatal(err)
	}
	// Python: json.dump({"access_token": t, "expires_at": exp.isoformat()}).
	want := `{"access_token": "a.b.c", "expires_at": "2026-11-23T00:11:15+00:00"}`
	if string(got) != want {
		t.Errorf("connectTapis = %s; want %s", got, want)
	}
}

func TestTapisV3CLIKeepsOtherContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	orig := `{"current_user": "other", "current_package": "tapiscustom", "output": {"type": "json", "dir": "/x"},
 "extra": 1, "profiles": [
  {"username": "other", "current_base_url": "https://o", "auths": [{"base_url": "https://o", "jwt": "O"}]},
  {"username": "jdoe", "current_base_url": "https://old", "auths": [{"base_url": "https://old", "jwt": "OLD"}, {"base_url": "https://t", "jwt": "STALE"}]}]}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	f := sinkFile{path: path, format: config.FormatTapisV3CLI}
	tok := sinkToken{baseURL: "https://t", username: "jdoe", access: "NEW"}
	if err := f.write(tok); err != nil {
		t.Fatal(err)
	}
	var got struct {
		CurrentUser    string         `json:"current_user"`
		CurrentPackage string         `json:"current_package"`
		Output         map[string]any `json:"output"`
		Extra          float64        `json:"extra"`
		Profiles       []struct {
			Username       string `json:"username"`
			CurrentBaseURL string `json:"current_base_url"`
			BaseURL        string `json:"base_url"`
			JWT            string `json:"jwt"`
			Auths          []struct {
				BaseURL string `json:"base_url"`
				JWT     string `json:"jwt"`
			} `json:"auths"`
		} `json:"profiles"`
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, data)
	}
	if got.CurrentUser != "jdoe" || got.CurrentPackage != "tapiscustom" || got.Output["type"] != "json" || got.Extra != 1 {
		t.Errorf("top level = %+v; want current_user jdoe and the rest kept", got)
	}
	if len(got.Profiles) != 2 || got.Profiles[0].Username != "jdoe" || got.Profiles[1].Username != "other" {
		t.Fatalf("profiles = %+v; want jdoe first, other kept", got.Profiles)
	}
	p := got.Profiles[0]
	if p.CurrentBaseURL != "https://t" || p.BaseURL != "https://t" || p.JWT != "NEW" ||
		len(p.Auths) != 2 || p.Auths[0].BaseURL != "https://t" || p.Auths[0].JWT != "NEW" || p.Auths[1].JWT != "OLD" {
		t.Errorf("jdoe's profile = %+v", p)
	}
	if !strings.Contains(string(data), "\n  \"") {
		t.Errorf("file is not indented by 2 like the CLI writes it:\n%s", data)
	}

	if err := f.remove(tok); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if strings.Contains(string(data), "NEW") || !strings.Contains(string(data), `"O"`) || !strings.Contains(string(data), "OLD") {
		t.Errorf("after remove the file still holds the token or lost others:\n%s", data)
	}

	// A file that is not the CLI's JSON is the user's: never overwritten.
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.write(tok); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("write over a non-JSON file: %v; want a refusal", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "not json" {
		t.Errorf("non-JSON file was changed to %q", data)
	}
}

func TestTapisCmdFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-dev-jdoe.properties")
	f := sinkFile{path: path, format: config.FormatTapisCmd}
	if err := f.write(sinkToken{baseURL: "https://dev.tapis.io", access: "J.W.T"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := "BASE_URL=https://dev.tapis.io\nUSER_JWT=J.W.T\n"; string(data) != want {
		t.Errorf("tapis-cmd file = %q; want %q", data, want)
	}
}

// sinkWorld is a world whose tenant "dev" writes a token file at path.
func sinkWorld(t *testing.T, path, format string) *world {
	t.Helper()
	w := newWorld(t, "dev")
	cfg := w.config("dev")
	cfg.Tenants["dev"].TokenFile = path
	cfg.Tenants["dev"].TokenFormat = format
	w.a.ApplyConfig(cfg)
	return w
}

func TestTokenFileFollowsSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	w := sinkWorld(t, path, config.FormatConnectTapis)
	w.login(t, "dev")
	read := func() (string, time.Time) {
		t.Helper()
		var f struct {
			AccessToken string `json:"access_token"`
			ExpiresAt   string `json:"expires_at"`
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading token file: %v", err)
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("token file %q: %v", data, err)
		}
		exp, err := time.Parse("2006-01-02T15:04:05-07:00", f.ExpiresAt)
		if err != nil || !strings.HasSuffix(f.ExpiresAt, "+00:00") {
			t.Fatalf("expires_at %q: %v", f.ExpiresAt, err)
		}
		return f.AccessToken, exp
	}
	tok, exp := read()
	if tok != w.token(t, "dev") {
		t.Errorf("token file holds another token than the one served")
	}
	c, _ := jwt.Decode(tok)
	if jexp, _ := c.Expiry(); !jexp.Equal(exp) {
		t.Errorf("expires_at = %v; want the JWT exp %v", exp, jexp)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v; want 0600", fi.Mode().Perm())
	}

	// A refresh rewrites it.
	w.clock.Advance(3*time.Hour + 59*time.Minute)
	fresh, err := w.a.Token(context.Background(), "dev", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := read(); got != fresh.AccessToken || got == tok {
		t.Errorf("after a refresh the file holds an old token")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries; want only the token file (no temporaries)", len(ents))
	}

	if _, err := w.a.Logout(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file still there after logout: %v", err)
	}
}

func TestTokenFileUnwritableIsAWarning(t *testing.T) {
	// A directory that cannot be made, even by root: its parent is a file.
	blocker := filepath.Join(t.TempDir(), "no")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "dir", "tokens.json")
	w := sinkWorld(t, path, config.FormatConnectTapis)
	w.login(t, "dev")
	st := w.a.tenantStatus("dev")
	if st.State != ipc.StateReady || len(warnings(st)) != 1 || !strings.Contains(warnings(st)[0], path) {
		t.Fatalf("status = %+v; want ready with a warning naming %s", st, path)
	}
	if !strings.Contains(w.log.String(), "token_file_failed") {
		t.Errorf("log lacks token_file_failed:\n%s", w.log)
	}
	w.token(t, "dev") // the session is intact

	// Once the directory can be made the next write clears the warning.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(3*time.Hour + 59*time.Minute)
	w.token(t, "dev")
	if st := w.a.tenantStatus("dev"); len(warnings(st)) != 0 {
		t.Errorf("warnings after a good write: %v", warnings(st))
	}
}

func TestTokenFileRemovedWithTenant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	w := sinkWorld(t, path, config.FormatTapisCmd)
	w.login(t, "dev")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	w.a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{}})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file still there after the tenant left the config: %v", err)
	}
}

func TestRefreshExpiryLoggedOnceADay(t *testing.T) {
	w := newWorld(t, "dev")
	w.fakes["dev"].SetTTLs(0, 10*24*time.Hour)
	w.login(t, "dev")
	count := func() int { return strings.Count(w.log.String(), "refresh_token_expiring") }
	if n := count(); n != 1 {
		t.Fatalf("logged %d expiry warnings at login; want 1", n)
	}
	st := w.a.tenantStatus("dev")
	if len(warnings(st)) != 1 || !strings.Contains(warnings(st)[0], "refresh token expires in") {
		t.Errorf("status warnings = %v", warnings(st))
	}
	for range 5 {
		w.a.tenantStatus("dev")
	}
	w.clock.Advance(12 * time.Hour)
	w.a.tenantStatus("dev")
	if n := count(); n != 1 {
		t.Errorf("logged %d warnings within a day; want 1", n)
	}
	w.clock.Advance(12 * time.Hour)
	w.a.tenantStatus("dev")
	if n := count(); n != 2 {
		t.Errorf("logged %d warnings after a day; want 2", n)
	}
}

// TestWriteAtomicRemovesOrphanedTemps: the temporary files a process of
// this host killed mid-write left beside the token file go with the next
// write; those of other hosts (a shared home) and of live processes stay,
// as do other files.
func TestWriteAtomicRemovesOrphanedTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok[1].json")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host := tempHost()
	mine := func(pid int) string { return ".tok[1].json.tmp." + host + "." + strconv.Itoa(pid) + ".123" }
	orphans := []string{mine(dead.Process.Pid), mine(os.Getpid())}
	keep := []string{"tok[1].json.bak", ".other.json.tmp9", ".tok1.json.tmp5",
		".tok[1].json.tmp.other-host." + strconv.Itoa(dead.Process.Pid) + ".1", // another host's agent
		mine(1),               // a live process
		".tok[1].json.tmp123", // an older agent's: it may be live on another host
	}
	for _, n := range append(append([]string{}, orphans...), keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(`{"access_tok`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeAtomic(path, []byte(`{"access_token":"x"}`)); err != nil {
		t.Fatal(err)
	}
	for _, n := range orphans {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Errorf("orphaned temporary file %s left", n)
		}
	}
	for _, n := range append(keep, "tok[1].json") {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
}

// TestWriteAtomicRefusesNonRegular: a symlink, a named pipe or a directory
// at the token file's path is the user's, not replaced; reading one back
// (tapisv3-cli) never blocks nor follows it.
func TestWriteAtomicRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	link, fifo := filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, kind string }{{link, "a symlink"}, {fifo, "a named pipe"}, {dir, "a directory"}}
	for _, format := range []string{config.FormatConnectTapis, config.FormatTapisV3CLI} {
		for _, tc := range cases {
			f := sinkFile{path: tc.path, format: format}
			err := f.write(sinkToken{baseURL: "https://t", username: "jdoe", access: "NEW"})
			if err == nil || !strings.Contains(err.Error(), tc.path+" is "+tc.kind) {
				t.Errorf("%s write over %s: %v; want a refusal naming it", format, tc.kind, err)
			}
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "{}" {
		t.Errorf("symlink target changed to %q", data)
	}
}

// TestSinkWarning: the warning of a token file that could not be written
// names the file and why, and says what to do about it: move a file the
// agent refuses to replace, make writable a place it may not write to.
func TestSinkWarning(t *testing.T) {
	dir := t.TempDir()
	fifo, giant, foreign := filepath.Join(dir, "fifo"), filepath.Join(dir, "giant"), filepath.Join(dir, "foreign")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("[1, 2]"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(giant)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	const move, writable = "; move that file away, or change token_file in the config; ", "; make its directory writable, or change token_file in the config; "
	cases := []struct {
		name, path, format string
		err                error // instead of a write of path
		want               []string
	}{
		{"named pipe", fifo, config.FormatConnectTapis, nil, []string{fifo + " is a named pipe, not a regular file)", move}},
		{"named pipe read back", fifo, config.FormatTapisV3CLI, nil, []string{fifo + " is a named pipe, not a regular file)", move}},
		{"sparse giant read back", giant, config.FormatTapisV3CLI, nil, []string{giant + " is 2 GiB, more than the 1 MiB allowed)", move}},
		{"not the CLI's", foreign, config.FormatTapisV3CLI, nil, []string{"(the file is not a tapisv3-cli config (not a JSON object); not overwriting it)", move}},
		{"permission denied", filepath.Join(dir, "ro", "tok.json"), config.FormatConnectTapis,
			&os.PathError{Op: "open", Path: filepath.Join(dir, "ro", "tok.json"), Err: syscall.EACCES}, []string{"(permission denied)", writable}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err
			if err == nil {
				err = sinkFile{path: tc.path, format: tc.format}.write(sinkToken{baseURL: "https://t", username: "jdoe", access: "NEW"})
			}
			if err == nil {
				t.Fatalf("writing %s: no error", tc.path)
			}
			got := sinkWarning(tc.path, err)
			for _, w := range append([]string{"token_file " + tc.path + ": cannot write it ("}, tc.want...) {
				if !strings.Contains(got, w) {
					t.Errorf("sinkWarning = %q; want it to hold %q", got, w)
				}
			}
		})
	}
	if fi, err := os.Stat(giant); err != nil || fi.Size() != 2<<30 {
		t.Errorf("the sparse file after the writes: %v; want it left as it was", err)
	}
}

// TestTokenFileBlockingStallsOnlyItsTenant: a token file whose write never
// ends holds up neither the agent's other tenants nor status, and shows as
// a warning of its own tenant.
func TestTokenFileBlockingStallsOnlyItsTenant(t *testing.T) {
	w := newWorld(t, "dev", "prod")
	cfg := w.config("dev", "prod")
	cfg.Tenants["dev"].TokenFile = filepath.Join(t.TempDir(), "dev.json")
	w.a.ApplyConfig(cfg)
	// Stand in for a hung file system: the writer of dev's file is busy.
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go w.a.sinkWriter(cfg.Tenants["dev"].TokenFile).do(sinkKey{}, func() { close(started); <-release })
	<-started

	start := time.Now()
	w.login(t, "dev")
	w.login(t, "prod")
	w.token(t, "prod")
	w.token(t, "dev")
	if d := time.Since(start); d > 2*sinkWait+time.Second {
		t.Errorf("logins took %s with a stuck token file; want at most about %s", d, sinkWait)
	}
	w.a.sinkWriter(cfg.Tenants["dev"].TokenFile).mu.Lock()
	w.a.sinkWriter(cfg.Tenants["dev"].TokenFile).since = time.Now().Add(-time.Minute)
	w.a.sinkWriter(cfg.Tenants["dev"].TokenFile).mu.Unlock()
	if st := w.a.tenantStatus("dev"); len(warnings(st)) != 1 || !strings.Contains(warnings(st)[0], "writing it has not finished after") {
		t.Errorf("dev's warnings = %q; want one about the stuck write", warnings(st))
	}
	if st := w.a.tenantStatus("prod"); len(warnings(st)) != 0 || st.State != ipc.StateReady {
		t.Errorf("prod's status = %+v; want ready without warnings", st)
	}
	// A second write of the stuck file does not wait again.
	start = time.Now()
	if _, err := w.a.Logout(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > sinkWait/2 {
		t.Errorf("logout waited %s on a stuck token file", d)
	}
}

func TestTokenFileMakesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tapis", "v3", "configs")
	path := filepath.Join(dir, "config.json")
	w := sinkWorld(t, path, config.FormatTapisV3CLI)
	w.login(t, "dev")
	if st := w.a.tenantStatus("dev"); len(warnings(st)) != 0 {
		t.Fatalf("warnings = %v; want none", warnings(st))
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory %s: %v, %v; want it made with mode 0700", dir, fi, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("token file: %v", err)
	}
}
