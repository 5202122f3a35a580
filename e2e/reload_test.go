package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// reloadWithin is how fast a saved config must show in status.
const reloadWithin = 2 * time.Second

func TestReload(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		symlink bool // the config path is a symlink to a file in another directory
	}{
		{"plain file", false},
		{"symlinked file", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testReload(t, tc.symlink)
		})
	}
}

func testReload(t *testing.T, symlink bool) {
	e := newEnv(t, tapistest.Config{})
	prod := tapistest.New(t, tapistest.Config{TenantID: "prod", Users: map[string]string{"jdoe": "secret"}})
	write := e.writeConfig
	remove := func() {
		t.Helper()
		if err := os.Remove(e.config); err != nil {
			t.Fatal(err)
		}
	}
	if symlink {
		real := filepath.Join(e.dir, "dotfiles", "tapis-agent.toml")
		if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(e.config, real); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, e.config); err != nil {
			t.Fatal(err)
		}
		// Editors save the target by writing a temp file beside it and
		// renaming it over the target.
		write = func(s string) {
			t.Helper()
			if err := os.WriteFile(real+".tmp", []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(real+".tmp", real); err != nil {
				t.Fatal(err)
			}
		}
		// The symlink stays, dangling.
		remove = func() {
			t.Helper()
			if err := os.Remove(real); err != nil {
				t.Fatal(err)
			}
		}
	}
	dev := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", e.fake.URL())
	both := dev + fmt.Sprintf("\n[tenants.prod]\nbase_url = %q\nusername = \"jdoe\"\n", prod.URL())
	// A bare word for a string, on line 5.
	broken := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = jdoe\n", e.fake.URL())

	e.startAgent()
	e.login()
	devToken := e.mustToken("", "dev").stdout
	devBefore := e.status("dev")

	// devUntouched checks that the dev session survived a reload as it was.
	devUntouched := func(when string) {
		t.Helper()
		if got := e.mustToken("", "dev").stdout; got != devToken {
			t.Errorf("%s: dev serves another access token; want the session untouched", when)
		}
		s := e.status("dev")
		if s.State != ipc.StateReady || s.RefreshCount != devBefore.RefreshCount || !s.AccessExpiresAt.Equal(*devBefore.AccessExpiresAt) {
			t.Errorf("%s: dev status = %s, refresh_count %d, expires %v; want ready, %d, %v",
				when, s.State, s.RefreshCount, s.AccessExpiresAt, devBefore.RefreshCount, devBefore.AccessExpiresAt)
		}
	}
	tenants := func() map[string]bool {
		st, err := e.client().Status(context.Background())
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		m := map[string]bool{}
		for _, ts := range st.Tenants {
			m[ts.Tenant] = true
		}
		return m
	}
	configError := func() string {
		st, err := e.client().Status(context.Background())
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st.ConfigError
	}

	// Add a tenant.
	write(both)
	e.waitFor("prod in status", reloadWithin, func() bool { return tenants()["prod"] })
	if s := e.status("prod"); s.State != ipc.StateLoginRequired || s.BaseURL != prod.URL() {
		t.Errorf("added prod: %+v; want login_required at %s", s, prod.URL())
	}
	devUntouched("after adding prod")
	e.mustToken("secret\n", "login", "prod", "--password-stdin")
	e.mustToken("", "prod")

	// Remove it: its session is wiped, once the file has stayed so for
	// the settle period (a save cut short looks the same), and status
	// says so meanwhile.
	write(dev)
	e.waitFor("the wait for the file to settle in status", reloadWithin, func() bool {
		return strings.Contains(configError(), "would end the session of prod;")
	})
	e.waitFor("prod gone from status", settlePeriod+reloadWithin, func() bool { return !tenants()["prod"] })
	if r := e.token("", "prod"); r.code != 4 {
		t.Errorf("token of removed prod: exit %d, stderr %q; want 4 (login required)", r.code, r.stderr)
	}
	devUntouched("after removing prod")

	// A reload asked for (tapis-agent's reload request, as SIGHUP and
	// systemctl reload) puts such a change in force at once: the user
	// says the file is ready.
	write(both)
	e.waitFor("prod back in status", reloadWithin, func() bool { return tenants()["prod"] })
	e.mustToken("secret\n", "login", "prod", "--password-stdin")
	write(dev)
	e.waitFor("the wait for the file to settle in status", reloadWithin, func() bool {
		return strings.Contains(configError(), "would end the session of prod;")
	})
	asked := time.Now()
	if err := reload(e.sock); err != nil {
		t.Fatalf("reload request: %v", err)
	}
	if tenants()["prod"] || configError() != "" {
		t.Errorf("after an asked reload: prod still there (%v) or config error %q", tenants()["prod"], configError())
	}
	if d := time.Since(asked); d >= settlePeriod {
		t.Errorf("the asked reload took %s; want it at once, not after the settle period", d)
	}
	devUntouched("after an asked reload")

	// A broken file: the config in force stays, status shows the error.
	write(broken)
	e.waitFor("the config error in status", reloadWithin, func() bool { return configError() != "" })
	if msg := configError(); !strings.Contains(msg, "config.toml:5: ") {
		t.Errorf("config error %q; want it to name the file and line 5", msg)
	}
	st := e.mustToken("", "status").stdout
	if !strings.Contains(st, "config error") || !strings.Contains(st, "config.toml:5: ") {
		t.Errorf("tapis-token status does not show the config error with its line:\n%s", st)
	}
	if !tenants()["dev"] {
		t.Errorf("dev left status after a broken config")
	}
	devUntouched("after a broken config")

	// Fixed: the error goes.
	write(dev)
	e.waitFor("the config error to clear", reloadWithin, func() bool { return configError() == "" })
	devUntouched("after fixing the config")

	// Removed: the sessions stay, and status says why.
	remove()
	e.waitFor("the removed file in status", reloadWithin, func() bool { return configError() != "" })
	wantErr := fmt.Sprintf("config file %s was removed; the last loaded config stays in force until it is back", e.config)
	if msg := configError(); msg != wantErr {
		t.Errorf("config error after removing the file = %q; want %q", msg, wantErr)
	}
	if st := e.mustToken("", "status").stdout; !strings.Contains(st, wantErr) {
		t.Errorf("tapis-token status does not say the file was removed:\n%s", st)
	}
	if !strings.Contains(e.agentLog(), "msg=config_missing") {
		t.Errorf("agent log lacks config_missing:\n%s", e.agentLog())
	}
	devUntouched("after removing the config file")

	// Back: the message goes.
	write(dev)
	e.waitFor("the config error to clear", reloadWithin, func() bool { return configError() == "" })
	devUntouched("after the config file came back")
}

// TestReloadLogLevel checks that log_level takes effect at start and on
// every reload, and that --log-level, when given, wins over it.
func TestReloadLogLevel(t *testing.T) {
	t.Parallel()
	t.Run("config", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tapistest.Config{})
		base := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\n", e.fake.URL())
		e.writeConfig("log_level = \"warn\"\n" + base)
		e.startServe("serve")
		if log := e.agentLog(); strings.Contains(log, "msg=serving") {
			t.Errorf("log_level = \"warn\" at start, yet the agent logged at info:\n%s", log)
		}
		e.writeConfig("log_level = \"debug\"\n" + base)
		e.waitFor("the debug level in the log", reloadWithin, func() bool {
			return strings.Contains(e.agentLog(), "level=DEBUG msg=log_level_changed from=WARN to=DEBUG")
		})
		e.writeConfig(base) // no log_level: info
		e.waitFor("the info level in the log", reloadWithin, func() bool {
			return strings.Contains(e.agentLog(), "msg=log_level_changed from=DEBUG to=INFO")
		})
		e.writeConfig("log_level = \"error\"\n" + base)
		e.waitFor("the error level in the log", reloadWithin, func() bool {
			return strings.Contains(e.agentLog(), "msg=log_level_changed from=INFO to=ERROR")
		})
		n := strings.Count(e.agentLog(), "msg=config_applied")
		e.writeConfig("log_level = \"error\"\n\n" + base)
		if err := reload(e.sock); err != nil {
			t.Fatalf("reload: %v", err)
		}
		if got := strings.Count(e.agentLog(), "msg=config_applied"); got != n {
			t.Errorf("log_level = \"error\", yet the agent logged config_applied at info:\n%s", e.agentLog())
		}
	})
	t.Run("flag wins", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, tapistest.Config{})
		e.writeConfig(fmt.Sprintf("log_level = \"error\"\n[tenants.dev]\nbase_url = %q\n", e.fake.URL()))
		e.startServe("serve", "--log-level", "info")
		if log := e.agentLog(); !strings.Contains(log, "msg=serving") || strings.Contains(log, "log_level_changed") {
			t.Errorf("--log-level info with log_level = \"error\": log\n%s\nwant info lines and no level change", log)
		}
	})
}
