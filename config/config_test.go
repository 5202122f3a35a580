package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/secret"
)

func TestDefaultPath(t *testing.T) {
	cases := []struct {
		name           string
		env, xdg, home string
		want           string
	}{
		{"env wins", "/etc/tapis.toml", "/xdg", "/home/u", "/etc/tapis.toml"},
		{"xdg", "", "/xdg", "/home/u", "/xdg/tapis-agent/config.toml"},
		{"relative xdg is ignored", "", "xdg", "/home/u", "/home/u/.config/tapis-agent/config.toml"},
		{"home", "", "", "/home/u", "/home/u/.config/tapis-agent/config.toml"},
		{"nothing", "", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TAPIS_AGENT_CONFIG", tc.env)
			t.Setenv("XDG_CONFIG_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			if got := DefaultPath(); got != tc.want {
				t.Errorf("DefaultPath() = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestExpandPath(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, dir, want string
		wantErr       string
	}{
		{in: "~", want: "/home/u"},
		{in: "~/.tapis_tokens.json", dir: "/etc", want: "/home/u/.tapis_tokens.json"},
		{in: "~/a/../b", want: "/home/u/b"},
		{in: "/abs/key", dir: "/etc", want: "/abs/key"},
		{in: "ds.key", dir: "/home/u/.config/tapis-agent", want: "/home/u/.config/tapis-agent/ds.key"},
		{in: "ds.key", want: filepath.Join(wd, "ds.key")},
		{in: "~bob/key", wantErr: "~user paths are not supported"},
	}
	for _, tc := range cases {
		got, err := expandPath(tc.in, tc.dir)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("expandPath(%q, %q) error = %v; want %q", tc.in, tc.dir, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expandPath(%q, %q) = %q, %v; want %q", tc.in, tc.dir, got, err, tc.want)
		}
	}
}

func TestValidTenantName(t *testing.T) {
	cases := []struct {
		name  string
		valid bool
	}{
		{"designsafe", true},
		{"tacc", true},
		{"dev", true},
		{"a", true},
		{"0", true},
		{"tacc.prod", true},
		{"my_tenant-2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"DesignSafe", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a b", false},
		{"a/b", false},
		{"café", false},
		{"a\x00", false},
	}
	for _, name := range ReservedNames {
		cases = append(cases, struct {
			name  string
			valid bool
		}{name, false})
	}
	for _, tc := range cases {
		err := ValidTenantName(tc.name)
		if (err == nil) != tc.valid {
			t.Errorf("ValidTenantName(%q) = %v; want valid %v", tc.name, err, tc.valid)
		}
	}
}

func TestConfigLookups(t *testing.T) {
	ds := &Tenant{Name: "ds", BaseURL: "https://designsafe.example.org"}
	tacc := &Tenant{Name: "tacc", BaseURL: "https://tacc.tapis.io"}
	one := &Config{Tenants: map[string]*Tenant{"ds": ds}}
	two := &Config{Tenants: map[string]*Tenant{"ds": ds, "tacc": tacc}}
	withDefault := &Config{DefaultTenant: "tacc", Tenants: map[string]*Tenant{"ds": ds, "tacc": tacc}}
	var none *Config

	defaults := []struct {
		name string
		cfg  *Config
		want string
	}{
		{"nil", none, ""},
		{"empty", &Config{}, ""},
		{"only tenant", one, "ds"},
		{"two without default", two, ""},
		{"default_tenant", withDefault, "tacc"},
		{"default_tenant unconfigured", &Config{DefaultTenant: "designsafe"}, "designsafe"},
	}
	for _, tc := range defaults {
		if got := tc.cfg.DefaultTenantName(); got != tc.want {
			t.Errorf("%s: DefaultTenantName() = %q; want %q", tc.name, got, tc.want)
		}
	}

	if got := two.Lookup("ds"); got != ds {
		t.Errorf("Lookup(ds) = %v; want the configured tenant", got)
	}
	if got := two.Lookup("designsafe"); got != nil {
		t.Errorf("Lookup(designsafe) = %v; want nil", got)
	}
	if got := none.Lookup("ds"); got != nil {
		t.Errorf("nil.Lookup(ds) = %v; want nil", got)
	}
	if got := two.TenantOrDefault("ds"); got != ds {
		t.Errorf("TenantOrDefault(ds) = %v; want the configured tenant", got)
	}
	want := &Tenant{Name: "designsafe", BaseURL: "https://designsafe.tapis.io"}
	for _, c := range []*Config{two, none} {
		if got := c.TenantOrDefault("designsafe"); !reflect.DeepEqual(got, want) {
			t.Errorf("TenantOrDefault(designsafe) = %+v; want %+v", got, want)
		}
	}
	for _, bad := range []string{"", "Bad Name", "login"} {
		if got := two.TenantOrDefault(bad); got != nil {
			t.Errorf("TenantOrDefault(%q) = %+v; want nil", bad, got)
		}
	}
	if got, want := two.TenantNames(), []string{"ds", "tacc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TenantNames() = %v; want %v", got, want)
	}
}

func TestSameSession(t *testing.T) {
	base := Tenant{
		Name: "ds", BaseURL: "https://designsafe.tapis.io", Username: "jdoe",
		ClientID: "c1", ClientKeyFile: "/k", ClientKey: secret.Value("key1"),
		TokenFile: "/t", TokenFormat: FormatConnectTapis, RefreshMargin: 5,
	}
	cases := []struct {
		name   string
		change func(*Tenant)
		same   bool
	}{
		{"identical", func(*Tenant) {}, true},
		{"token file moved", func(t *Tenant) { t.TokenFile, t.TokenFormat = "/u", FormatTapisCmd }, true},
		{"password command", func(t *Tenant) { t.PasswordCommand = []string{"getpw"} }, true},
		{"refresh margin", func(t *Tenant) { t.RefreshMargin = 7 }, true},
		{"ca file", func(t *Tenant) { t.CAFile = "/ca" }, false},
		{"key file moved, same key", func(t *Tenant) { t.ClientKeyFile = "/k2" }, true},
		{"base url", func(t *Tenant) { t.BaseURL = "https://other.tapis.io" }, false},
		{"username", func(t *Tenant) { t.Username = "jroe" }, false},
		{"client id", func(t *Tenant) { t.ClientID = "c2" }, false},
		{"client key", func(t *Tenant) { t.ClientKey = "key2" }, false},
		{"client removed", func(t *Tenant) { t.ClientID, t.ClientKey = "", "" }, false},
	}
	for _, tc := range cases {
		a, b := base, base
		tc.change(&b)
		if got := a.SameSession(&b); got != tc.same {
			t.Errorf("%s: SameSession = %v; want %v", tc.name, got, tc.same)
		}
		if got := b.SameSession(&a); got != tc.same {
			t.Errorf("%s: SameSession reversed = %v; want %v", tc.name, got, tc.same)
		}
	}
	var nilT *Tenant
	if !nilT.SameSession(nil) {
		t.Error("nil.SameSession(nil) = false; want true")
	}
	if nilT.SameSession(&base) || base.SameSession(nil) {
		t.Error("SameSession between nil and a tenant = true; want false")
	}
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "pass show tacc", want: []string{"pass", "show", "tacc"}},
		{in: "  pass\tshow  tacc  ", want: []string{"pass", "show", "tacc"}},
		{in: `pass show 'tacc token'`, want: []string{"pass", "show", "tacc token"}},
		{in: `pass show "a b" c\ d`, want: []string{"pass", "show", "a b", "c d"}},
		{in: `echo "say \"hi\" \$x \n"`, want: []string{"echo", `say "hi" $x \n`}},
		{in: `echo 'it''s'`, want: []string{"echo", "its"}},
		{in: `echo ''`, want: []string{"echo", ""}},
		{in: `echo '$HOME ~ *'`, want: []string{"echo", "$HOME ~ *"}},
		{in: `echo ~ a*`, want: []string{"echo", "~", "a*"}},
		{in: `echo "a|b" 'c;d' e\|f`, want: []string{"echo", "a|b", "c;d", "e|f"}},
		{in: "echo 'x", wantErr: "unterminated single quote"},
		{in: `echo "x`, wantErr: "unterminated double quote"},
		{in: `echo x\`, wantErr: "lone backslash"},
		{in: "pass show x | head", wantErr: "unquoted shell syntax '|'"},
		{in: "pass show x; rm", wantErr: "unquoted shell syntax ';'"},
		{in: "echo $HOME", wantErr: "unquoted shell syntax '$'"},
		{in: "echo `id`", wantErr: "unquoted shell syntax '`'"},
		{in: "cat < f", wantErr: "unquoted shell syntax '<'"},
	}
	for _, tc := range cases {
		got, err := splitWords(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("splitWords(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	cause := errors.New("cause")
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "config.toml", Line: 12, Key: "tenants.ds.base_url", Msg: "must be https"}, "config.toml:12: tenants.ds.base_url: must be https"},
		{&Error{File: "config.toml", Key: "k", Msg: "m"}, "config.toml: k: m"},
		{&Error{Line: 3, Msg: "m"}, "line 3: m"},
		{&Error{Msg: "m", err: cause}, "m"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
	if !errors.Is(cases[3].err, cause) {
		t.Error("errors.Is(err, cause) = false; want Unwrap to expose the cause")
	}
}

func TestScanKeyLines(t *testing.T) {
	data := `# comment
default_tenant = "ds"
s = """
base_url = "inside a string"
"""
[tenants.ds]
username = "x"
  "quoted key" = 1
[ tenants . 'lit.name' ]
a.b = 2
[[arr]]
`
	l := scanKeyLines([]byte(data))
	cases := []struct {
		path []string
		want int
	}{
		{[]string{"default_tenant"}, 2},
		{[]string{"base_url"}, 0},
		{[]string{"tenants"}, 6},
		{[]string{"tenants", "ds"}, 6},
		{[]string{"tenants", "ds", "username"}, 7},
		{[]string{"tenants", "ds", "quoted key"}, 8},
		{[]string{"tenants", "ds", "unplaced"}, 6},
		{[]string{"tenants", "lit.name", "a", "b"}, 10},
		{[]string{"tenants", "lit.name", "a"}, 10},
		{[]string{"arr"}, 11},
	}
	for _, tc := range cases {
		if got := l.line(tc.path); got != tc.want {
			t.Errorf("line(%q) = %d; want %d", tc.path, got, tc.want)
		}
	}
}
