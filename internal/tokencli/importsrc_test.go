package tokencli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// Stand-ins for tokens: the CLI checks only that they look like JWTs; the
// agent checks the rest.
const (
	jwtA = "eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln"
	jwtR = "eyJhbGciOiJSUzI1NiJ9.eyJyIjoxfQ.c2ln"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string
		want   ipc.ImportRequest // Tenant, Source filled in below
		errHas string
	}{
		{name: "access only", env: map[string]string{"TAPIS_BASE_URL": "https://tacc.tapis.io", "TAPIS_API_TOKEN": jwtA},
			want: ipc.ImportRequest{AccessToken: jwtA, BaseURL: "https://tacc.tapis.io"}},
		{name: "access only, agavepy's short name", env: map[string]string{"TAPIS_TOKEN": jwtA},
			want: ipc.ImportRequest{AccessToken: jwtA}},
		{name: "access only ignores a client", env: map[string]string{"TAPIS_API_TOKEN": jwtA, "TAPIS_API_KEY": "k", "TAPIS_API_SECRET": "s"},
			want: ipc.ImportRequest{AccessToken: jwtA}},
		{name: "token refresh", env: map[string]string{"TAPIS_BASE_URL": "https://tacc.tapis.io", "TAPIS_API_TOKEN": jwtA,
			"TAPIS_API_REFRESH_TOKEN": jwtR, "TAPIS_API_KEY": "cid", "TAPIS_API_SECRET": "ckey"},
			want: ipc.ImportRequest{RefreshToken: jwtR, ClientID: "cid", ClientKey: "ckey", BaseURL: "https://tacc.tapis.io"}},
		{name: "bare refresh", env: map[string]string{"TAPIS_API_TOKEN": jwtA, "TAPIS_API_REFRESH_TOKEN": jwtR},
			want: ipc.ImportRequest{RefreshToken: jwtR}},
		{name: "standard", env: map[string]string{"TAPIS_API_USERNAME": "jdoe", "TAPIS_API_PASSWORD": "pw",
			"TAPIS_API_KEY": "cid", "TAPIS_API_SECRET": "ckey"},
			want: ipc.ImportRequest{Username: "jdoe", Password: "pw", ClientID: "cid", ClientKey: "ckey"}},
		{name: "client manager", env: map[string]string{"TAPIS_USERNAME": "jdoe", "TAPIS_PASSWORD": "pw"},
			want: ipc.ImportRequest{Username: "jdoe", Password: "pw"}},
		{name: "the same value under both names", env: map[string]string{"TAPIS_API_TOKEN": jwtA, "TAPIS_TOKEN": jwtA},
			want: ipc.ImportRequest{AccessToken: jwtA}},

		{name: "nothing", env: map[string]string{"TAPIS_BASE_URL": "https://tacc.tapis.io"}, errHas: "none of AgavePy's variables"},
		{name: "empty values", env: map[string]string{"TAPIS_API_TOKEN": "  "}, errHas: "none of AgavePy's variables"},
		{name: "two names, two values", env: map[string]string{"TAPIS_API_TOKEN": jwtA, "TAPIS_TOKEN": jwtR}, errHas: "TAPIS_API_TOKEN and TAPIS_TOKEN are both set"},
		{name: "key without secret", env: map[string]string{"TAPIS_API_REFRESH_TOKEN": jwtR, "TAPIS_API_KEY": "cid"}, errHas: "without TAPIS_API_SECRET"},
		{name: "secret without key", env: map[string]string{"TAPIS_API_REFRESH_TOKEN": jwtR, "TAPIS_API_SECRET": "s"}, errHas: "without TAPIS_API_KEY"},
		{name: "password without username", env: map[string]string{"TAPIS_API_PASSWORD": "pw"}, errHas: "without TAPIS_API_USERNAME"},
		{name: "username without password", env: map[string]string{"TAPIS_API_USERNAME": "jdoe"}, errHas: "without TAPIS_API_PASSWORD"},
		{name: "a v2 token", env: map[string]string{"TAPIS_API_TOKEN": "b9ffb4ed6c3c3412d2e09de3b3defa33"}, errHas: "not a Tapis v3 token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			src, err := fromEnv("tacc", lookup)
			if tc.errHas != "" {
				var f *cmdline.Failure
				if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.errHas) || f.Hint == "" {
					t.Fatalf("fromEnv = %v; want a failure with a hint saying %q", err, tc.errHas)
				}
				for _, v := range tc.env {
					if len(v) > 3 && strings.Contains(f.Msg+f.Hint, v) {
						t.Errorf("the error shows the value %q", v)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Tenant, want.Source = "tacc", "environment"
			if src.req != want {
				t.Errorf("request = %+v; want %+v", src.req, want)
			}
			if (want.Password != "" || want.RefreshToken != "") != (len(src.envSecrets) == 1) {
				t.Errorf("variables to unset = %q", src.envSecrets)
			}
		})
	}
}

func TestParseImportFile(t *testing.T) {
	const agaveCLI = `{"tenantid":"tacc.prod","baseurl":"https://tacc.tapis.io","devurl":"","apisecret":"ckey",
 "apikey":"cid","username":"jdoe","access_token":"` + jwtA + `","refresh_token":"` + jwtR + `",
 "created_at":"1539708516","expires_in":"14400","expires_at":"Tue Oct 16 20:48:36 UTC 2018"}`
	cases := []struct {
		name    string
		content string
		want    ipc.ImportRequest // Tenant and Source filled in below
		remove  []string
		errHas  string
	}{
		{name: "agave-cli current", content: agaveCLI,
			want:   ipc.ImportRequest{RefreshToken: jwtR, ClientID: "cid", ClientKey: "ckey", BaseURL: "https://tacc.tapis.io"},
			remove: []string{"refresh_token"}},
		{name: "agavepy current, a list, numbers", content: `[{"baseurl":"https://tacc.tapis.io","apikey":"cid","apisecret":"ckey","username":"jdoe",
 "access_token":"` + jwtA + `","refresh_token":"` + jwtR + `","created_at":1539708516,"expires_in":3600,"token_username":null,"verify":true}]`,
			want:   ipc.ImportRequest{RefreshToken: jwtR, ClientID: "cid", ClientKey: "ckey", BaseURL: "https://tacc.tapis.io"},
			remove: []string{"refresh_token"}},
		{name: "agave current without a refresh token", content: `{"baseurl":"https://tacc.tapis.io","access_token":"` + jwtA + `"}`,
			want: ipc.ImportRequest{AccessToken: jwtA, BaseURL: "https://tacc.tapis.io"}},
		{name: "connect_tapis", content: `{"access_token": "` + jwtA + `", "expires_at": "2026-11-22T18:11:15+00:00"}`,
			want: ipc.ImportRequest{AccessToken: jwtA}},
		{name: "tapisv3-cli", content: `{"current_user": "jdoe", "current_package": "tapis",
 "output": {"type": "table"},
 "profiles": [{"username": "asmith", "current_base_url": "https://dev.tapis.io", "auths": [{"base_url": "https://dev.tapis.io", "jwt": "x.y.z"}]},
              {"username": "jdoe", "current_base_url": "https://tacc.tapis.io",
               "auths": [{"base_url": "https://other.tapis.io", "jwt": "o.t.h"}, {"base_url": "https://tacc.tapis.io", "jwt": "` + jwtA + `"}],
               "base_url": "https://tacc.tapis.io", "jwt": "old.top.level"}]}`,
			want: ipc.ImportRequest{AccessToken: jwtA, BaseURL: "https://tacc.tapis.io"}},
		{name: "tapisv3-cli, top-level jwt only", content: `{"current_user": "jdoe", "profiles": [{"username": "jdoe", "base_url": "https://tacc.tapis.io", "jwt": "` + jwtA + `"}]}`,
			want: ipc.ImportRequest{AccessToken: jwtA, BaseURL: "https://tacc.tapis.io"}},

		{name: "garbage", content: "hello world\n", errHas: "not JSON"},
		{name: "empty", content: "", errHas: "not JSON"},
		{name: "two documents", content: `{"access_token":"` + jwtA + `"} {}`, errHas: "not JSON"},
		{name: "a number", content: "42", errHas: "not an object"},
		{name: "an unknown object", content: `{"token":"` + jwtA + `"}`, errHas: "no token in it"},
		{name: "an empty access token", content: `{"access_token": ""}`, errHas: "holds no token"},
		{name: "a list of two", content: `[{"access_token":"a"},{"access_token":"b"}]`, errHas: "a list of 2 entries"},
		{name: "agavepy sessions", content: `{"sessions":{"tacc.prod":{}}}`, errHas: "sessions file"},
		{name: "tapisv3-cli without the user", content: `{"current_user": "nobody", "profiles": [{"username": "jdoe", "jwt": "` + jwtA + `"}]}`, errHas: `no profile for its current user "nobody"`},
		{name: "tapisv3-cli without a token", content: `{"current_user": "jdoe", "profiles": [{"username": "jdoe", "base_url": "https://tacc.tapis.io"}]}`, errHas: "holds no token for jdoe"},
		{name: "agave v2 tokens", content: `{"baseurl":"https://api.tacc.utexas.edu","access_token":"b9ffb4ed6c3c3412d2e09de3b3defa33","refresh_token":"d941cc474ed4a2fcf93672b65f76195"}`, errHas: "not a Tapis v3 token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := fromFile("tacc", path)
			if tc.errHas != "" {
				var f *cmdline.Failure
				if !errors.As(err, &f) || !strings.Contains(f.Msg, tc.errHas) || !strings.Contains(f.Msg, path) || f.Hint == "" {
					t.Fatalf("fromFile = %v; want a failure naming the file, saying %q, with a hint", err, tc.errHas)
				}
				for _, secret := range []string{jwtA, jwtR, "ckey", "d941cc474ed4a2fcf93672b65f76195"} {
					if strings.Contains(f.Msg+f.Hint, secret) {
						t.Errorf("the error shows a secret: %q", f.Msg)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Tenant, want.Source = "tacc", path
			if src.req != want {
				t.Errorf("request = %+v; want %+v", src.req, want)
			}
			if strings.Join(src.remove, ",") != strings.Join(tc.remove, ",") {
				t.Errorf("offered to remove %q; want %q", src.remove, tc.remove)
			}
		})
	}
}

func TestFromFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "current")
	if err := os.WriteFile(path, []byte(`{"access_token":"`+jwtA+`"}`), 0o000); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(dir, "missing"), dir} {
		if os.Geteuid() == 0 && p == path {
			continue // root reads anything
		}
		_, err := fromFile("tacc", p)
		var f *cmdline.Failure
		if !errors.As(err, &f) || !strings.Contains(f.Msg, p) || f.Hint == "" {
			t.Errorf("fromFile(%s) = %v; want a failure naming the file, with a hint", p, err)
		}
	}
}

func TestRemoveFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "current")
	content := []byte(`{"apikey":"cid","refresh_token":"` + jwtR + `","access_token":"` + jwtA + `"}`)
	if err := os.WriteFile(path, content, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := removeFromFile(path, []byte("something else"), []string{"refresh_token"}); err == nil {
		t.Errorf("removeFromFile of a file that changed = nil; want an error")
	}
	if err := removeFromFile(path, content, []string{"refresh_token"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), jwtR) || !strings.Contains(string(b), jwtA) || !strings.Contains(string(b), `"apikey":"cid"`) {
		t.Errorf("after removal: %s; want everything but the refresh token", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after removal = %v; want 0640 kept", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries; want the file alone", len(entries))
	}

	// Through a symlink, the file it points to loses the secret; the link
	// stays a link.
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if err := removeFromFile(link, content, []string{"refresh_token"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), jwtR) {
		t.Errorf("removal through a symlink left the refresh token in its target")
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v, %v", fi.Mode(), err)
	}
}

// FuzzParseImportFile: any content gives a request or a failure with a
// hint, never a panic, and a failure never repeats a token of the file.
func FuzzParseImportFile(f *testing.F) {
	for _, s := range []string{
		`{"access_token": "` + jwtA + `", "expires_at": "2026-11-22T18:11:15+00:00"}`,
		`[{"baseurl":"https://tacc.tapis.io","apikey":"cid","apisecret":"ckey","refresh_token":"` + jwtR + `"}]`,
		`{"current_user":"jdoe","profiles":[{"username":"jdoe","current_base_url":"u","auths":[{"base_url":"u","jwt":"` + jwtA + `"}]}]}`,
		`{"profiles":[null, 3, {"auths":[null]}]}`, `{"sessions":{}}`, `[]`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := parseImportFile("tacc", "/f", b)
		if err != nil {
			var fl *cmdline.Failure
			if !errors.As(err, &fl) || fl.Hint == "" {
				t.Fatalf("parseImportFile = %v; want a failure with a hint", err)
			}
			for _, tok := range []string{jwtA, jwtR} {
				if strings.Contains(fl.Msg+fl.Hint, tok) {
					t.Fatalf("the failure repeats a token: %q", fl.Msg)
				}
			}
			return
		}
		if src.req.AccessToken == "" && src.req.RefreshToken == "" {
			t.Fatalf("parseImportFile = %+v without a token", src.req)
		}
	})
}
