package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
)

const testKey = "k3y-s3cr3t-value"

// testCA is a syntactically valid PEM block; its bytes are not a real
// certificate, which the config package does not parse.
const testCA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FGSUxFVEVTVA==\n-----END CERTIFICATE-----\n"

// fixture is a directory with the files configurations refer to, $HOME
// and $PATH pointing into it.
type fixture struct {
	dir, home, bin string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, home: filepath.Join(dir, "home"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{f.home, f.bin} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"key", testKey + "\nsecond line ignored\n", 0o600},
		{"home/ds.key", "  " + testKey + "  \n", 0o400},
		{"open.key", testKey + "\n", 0o644},
		{"empty.key", "\n\n", 0o600},
		{"ca.pem", testCA, 0o644},
		{"notca.pem", "hello\n", 0o644},
		{"notexec", "#!/bin/sh\n", 0o644},
		{"bin/getpw", "#!/bin/sh\necho pw\n", 0o755},
	}
	for _, fl := range files {
		p := filepath.Join(dir, fl.name)
		if err := os.WriteFile(p, []byte(fl.data), fl.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fl.mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", f.home)
	t.Setenv("PATH", f.bin)
	return f
}

// load writes content to dir/config.toml and loads it.
func (f fixture) load(t *testing.T, content string) (*Config, error) {
	t.Helper()
	p := filepath.Join(f.dir, "config.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

func TestLoadMalformed(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name    string
		content string
		want    []string // substrings of the error message
	}{
		{"syntax", "default_tenant =\n", []string{"config.toml:1: ", "invalid TOML", "expected value"}},
		{"duplicate key", "log_level = \"info\"\nlog_level = \"debug\"\n", []string{"config.toml:2: ", "'log_level' has already been defined"}},
		{"duplicate table", "[tenants.ds]\n[tenants.ds]\n", []string{"config.toml:2: ", "already been defined"}},
		{"invalid utf-8", "log_level = \"\xff\"\n", []string{"config.toml:1: ", "invalid UTF-8"}},
		{"unknown top key typo", "\ndefualt_tenant = \"ds\"\n", []string{"config.toml:2: defualt_tenant: unknown key; did you mean default_tenant?"}},
		{"tenant key at top level", "base_url = \"https://x.org\"\n", []string{"config.toml:1: base_url: unknown top-level key; base_url belongs in a [tenants.NAME] table"}},
		{"tenant singular", "[tenant.ds]\nusername = \"x\"\n", []string{"config.toml:1: tenant: unknown key; did you mean tenants?"}},
		{"unknown tenant key typo", "[tenants.ds]\nusername = \"x\"\nbaseURL = \"https://x.org\"\n", []string{"config.toml:3: tenants.ds.baseURL: unknown key; did you mean base_url?"}},
		{"unknown tenant key far", "[tenants.ds]\ncolour = \"red\"\n", []string{"config.toml:2: tenants.ds.colour: unknown key; valid keys are base_url, username"}},
		{"unknown key quoted", "[tenants.ds]\n\"my key\" = 1\n", []string{`config.toml:2: tenants.ds."my key": unknown key`}},
		{"default tenant type", "default_tenant = 5\n", []string{"config.toml:1: default_tenant: must be a string (got integer 5)"}},
		{"default tenant not configured", "default_tenant = \"tacc\"\n[tenants.ds]\n", []string{`config.toml:1: default_tenant: "tacc" is not a configured tenant; use one of ds, or add a [tenants.tacc] table`}},
		{"default tenant invalid", "default_tenant = \"Design Safe\"\n", []string{`config.toml:1: default_tenant: tenant name "Design Safe" is invalid; use lower-case letters`}},
		{"default tenant reserved", "default_tenant = \"status\"\n", []string{`default_tenant: tenant name "status" is reserved for a tapis-token subcommand`}},
		{"refresh margin junk", "refresh_margin = \"soon\"\n", []string{`config.toml:1: refresh_margin: must be a duration such as "30m" or "1h" (got "soon")`}},
		{"refresh margin integer", "refresh_margin = 3600\n", []string{`refresh_margin: must be a duration string such as "30m" or "1h" (got integer 3600)`}},
		{"refresh margin too long", "refresh_margin = \"25h\"\n", []string{`refresh_margin: must be above 0 and below 24h (got "25h")`}},
		{"refresh margin negative", "refresh_margin = \"-5m\"\n", []string{`refresh_margin: must be above 0 and below 24h (got "-5m")`}},
		{"log level", "log_level = \"verbose\"\n", []string{`config.toml:1: log_level: must be one of debug, info, warn, error (got "verbose")`}},
		{"tenants string", "tenants = \"ds\"\n", []string{`config.toml:1: tenants: must be a table of tenants such as [tenants.designsafe] (got string "ds")`}},
		{"tenants array of tables", "[[tenants]]\nname = \"ds\"\n", []string{"config.toml:1: tenants: must be a table of tenants", "(got array of tables)"}},
		{"tenant not a table", "tenants.ds = 5\n", []string{"config.toml:1: tenants.ds: must be a table such as [tenants.ds] (got integer 5)"}},
		{"tenant reserved name", "[tenants.login]\n", []string{`config.toml:1: tenants.login: tenant name "login" is reserved for a tapis-token subcommand`}},
		{"tenant upper case", "[tenants.DS]\n", []string{`config.toml:1: tenants.DS: tenant name "DS" is invalid; use lower-case letters, digits, '.', '_' and '-'`}},
		{"tenant leading dot", "[tenants.\".ds\"]\n", []string{`config.toml:1: tenants.".ds": tenant name ".ds" is invalid`}},
		{"tenant name too long", "[tenants." + strings.Repeat("a", 64) + "]\n", []string{"tenant name is 64 characters long; at most 63 are allowed"}},
		{"base url http", "\n[tenants.ds]\nbase_url = \"http://example.org\"\n", []string{"config.toml:3: tenants.ds.base_url: must be https (got http://example.org); use https:// or a loopback address"}},
		{"base url no scheme", "[tenants.ds]\nbase_url = \"designsafe.tapis.io\"\n", []string{"config.toml:2: tenants.ds.base_url: must be an https:// URL; write https://designsafe.tapis.io"}},
		{"base url v3", "[tenants.ds]\nbase_url = \"https://designsafe.tapis.io/v3/\"\n", []string{"tenants.ds.base_url: is the tenant's root URL, without /v3", "use https://designsafe.tapis.io"}},
		{"base url userinfo", "[tenants.ds]\nbase_url = \"https://jdoe:hunter2@ds.org\"\n", []string{"config.toml:2: tenants.ds.base_url: must not contain a username or password"}},
		{"base url ftp", "[tenants.ds]\nbase_url = \"ftp://ds.org\"\n", []string{"tenants.ds.base_url: must be https (got ftp://)"}},
		{"base url query", "[tenants.ds]\nbase_url = \"https://ds.org/?x=1\"\n", []string{"tenants.ds.base_url: must not have a query or fragment"}},
		{"base url no host", "[tenants.ds]\nbase_url = \"https:///path\"\n", []string{"tenants.ds.base_url: must name a host"}},
		{"base url integer", "[tenants.ds]\nbase_url = 443\n", []string{"config.toml:2: tenants.ds.base_url: must be a string (got integer 443)"}},
		{"base url inline table", "tenants = { ds = { base_url = \"http://x.org\" } }\n", []string{"config.toml:1: tenants.ds.base_url: must be https"}},
		{"base url dotted", "[tenants]\nds.base_url = \"http://x.org\"\n", []string{"config.toml:2: tenants.ds.base_url: must be https"}},
		{"username empty", "[tenants.ds]\nusername = \"\"\n", []string{"config.toml:2: tenants.ds.username: must not be empty; remove the line to be asked at login"}},
		{"username blank", "[tenants.ds]\nusername = \"j doe\"\n", []string{"tenants.ds.username: must not contain blanks or control characters"}},
		{"client id array", "[tenants.ds]\nclient_id = [\"a\"]\n", []string{"config.toml:2: tenants.ds.client_id: must be a string (got array)"}},
		{"key file without client id", "[tenants.ds]\nclient_key_file = \"key\"\n", []string{"config.toml:2: tenants.ds.client_key_file: needs client_id"}},
		{"client id without key file", "[tenants.ds]\nclient_id = \"abc\"\n", []string{"config.toml:2: tenants.ds.client_id: needs client_key_file"}},
		{"key file missing", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"nokey\"\n", []string{"config.toml:3: tenants.ds.client_key_file: cannot read " + filepath.Join(f.dir, "nokey") + ": no such file or directory"}},
		{"key file group readable", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"open.key\"\n", []string{"config.toml:3: tenants.ds.client_key_file: ", "accessible by group or others (mode 0644); run chmod 600 " + filepath.Join(f.dir, "open.key")}},
		{"key file empty", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"empty.key\"\n", []string{"tenants.ds.client_key_file: ", "empty.key is empty; its first line must be the client key"}},
		{"key file directory", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"bin\"\n", []string{"tenants.ds.client_key_file: ", "bin is a directory, not a regular file"}},
		{"key file fifo", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"fifo\"\n", []string{"config.toml:3: tenants.ds.client_key_file: ", "fifo is a named pipe, not a regular file"}},
		{"key file tilde user", "[tenants.ds]\nclient_id = \"abc\"\nclient_key_file = \"~bob/key\"\n", []string{`config.toml:3: tenants.ds.client_key_file: ~user paths are not supported (got "~bob/key")`}},
		{"password command not found", "[tenants.ds]\npassword_command = \"pass show tacc\"\n", []string{`config.toml:2: tenants.ds.password_command: program "pass" is not found on $PATH; use an absolute path`}},
		{"password command relative", "[tenants.ds]\npassword_command = \"./getpw\"\n", []string{`tenants.ds.password_command: program "./getpw" must be an absolute path or a command name found on $PATH`}},
		{"password command not executable", "[tenants.ds]\npassword_command = [\"" + filepath.Join(f.dir, "notexec") + "\"]\n", []string{"tenants.ds.password_command: program " + filepath.Join(f.dir, "notexec") + " is not an executable file"}},
		{"password command pipe", "[tenants.ds]\npassword_command = \"getpw | head -1\"\n", []string{"config.toml:2: tenants.ds.password_command: contains unquoted shell syntax '|'; set password_command_shell = true"}},
		{"password command quote", "[tenants.ds]\npassword_command = \"getpw 'tacc\"\n", []string{"tenants.ds.password_command: unterminated single quote"}},
		{"password command empty", "[tenants.ds]\npassword_command = \"  \"\n", []string{"tenants.ds.password_command: must not be empty"}},
		{"password command empty array", "[tenants.ds]\npassword_command = []\n", []string{"tenants.ds.password_command: must not be an empty array"}},
		{"password command mixed array", "[tenants.ds]\npassword_command = [\"getpw\", 1]\n", []string{"config.toml:2: tenants.ds.password_command: must be an array of strings (element 2 is integer 1)"}},
		{"password command integer", "[tenants.ds]\npassword_command = 5\n", []string{"tenants.ds.password_command: must be a string or an array of strings (got integer 5)"}},
		{"password shell not bool", "[tenants.ds]\npassword_command = \"getpw\"\npassword_command_shell = \"yes\"\n", []string{`config.toml:3: tenants.ds.password_command_shell: must be true or false (got string "yes")`}},
		{"password shell alone", "[tenants.ds]\npassword_command_shell = true\n", []string{"config.toml:2: tenants.ds.password_command_shell: is set but there is no password_command to run"}},
		{"password shell array", "[tenants.ds]\npassword_command = [\"getpw\"]\npassword_command_shell = true\n", []string{"config.toml:2: tenants.ds.password_command: must be a string when password_command_shell = true"}},
		{"token format unknown", "[tenants.ds]\ntoken_file = \"t.json\"\ntoken_format = \"json\"\n", []string{`config.toml:3: tenants.ds.token_format: must be one of connect_tapis, tapisv3-cli, tapis-cmd (got "json")`}},
		{"token format alone", "[tenants.ds]\ntoken_format = \"tapis-cmd\"\n", []string{"config.toml:2: tenants.ds.token_format: needs token_file"}},
		{"token file empty", "[tenants.ds]\ntoken_file = \"\"\n", []string{"config.toml:2: tenants.ds.token_file: must not be empty; remove the line instead"}},
		{"ca file missing", "[tenants.ds]\nca_file = \"/nonexistent/ca.pem\"\n", []string{"config.toml:2: tenants.ds.ca_file: cannot read /nonexistent/ca.pem: no such file or directory"}},
		{"ca file device", "[tenants.ds]\nca_file = \"/dev/null\"\n", []string{"config.toml:2: tenants.ds.ca_file: /dev/null is a device, not a regular file"}},
		{"ca file not pem", "[tenants.ds]\nca_file = \"notca.pem\"\n", []string{"tenants.ds.ca_file: ", "notca.pem holds no PEM certificate"}},
		// Syntax errors name the key and, for a bare word, the valid line.
		{"bare string", "[tenants.ds]\nusername = jdoe\n", []string{`config.toml:2: tenants.ds.username: invalid TOML: expected value but found "jdoe" instead; strings need double quotes: username = "jdoe"`}},
		{"bare string top level", "default_tenant = ds # mine\n", []string{`config.toml:1: default_tenant: invalid TOML: expected value but found "ds" instead; strings need double quotes: default_tenant = "ds"`}},
		{"bare url", "[tenants.ds]\nbase_url = https://ds.org\n", []string{`config.toml:2: tenants.ds.base_url: invalid TOML: expected value but found "https" instead; strings need double quotes: base_url = "https://ds.org"`}},
		{"bare duration", "[tenants.ds]\nrefresh_margin = 1h\n", []string{`config.toml:2: tenants.ds.refresh_margin: invalid TOML: `, `strings need double quotes: refresh_margin = "1h"`}},
		{"missing value", "[tenants.ds]\nusername =\n", []string{`config.toml:2: tenants.ds.username: invalid TOML: expected value but found '\n' instead; give username a value, e.g. a string in double quotes: username = "..."`}},
		{"bare word in inline table", "[tenants.ds]\npassword_command = {a = b}\n", []string{`config.toml:2: tenants.ds.password_command.a: invalid TOML: expected value but found "b" instead; values are strings in double quotes`}},
		{"unterminated string", "[tenants.ds]\nusername = \"jdoe\n", []string{`config.toml:2: tenants.ds.username: invalid TOML: strings cannot contain newlines`}},
		// Lines of keys after values the key scanner must read past.
		{"line after ''' in basic string", "[tenants.ds]\nusername = \"jd'''\"\ncolour = \"red\"\n", []string{"config.toml:3: tenants.ds.colour: unknown key"}},
		{"line after \"\"\" in literal string", "[tenants.ds]\nusername = 'jd\"\"\"'\ncolour = \"red\"\n", []string{"config.toml:3: tenants.ds.colour: unknown key"}},
		{"line after ''' in comment", "[tenants.ds]\nusername = \"jd\" # '''\ncolour = \"red\"\n", []string{"config.toml:3: tenants.ds.colour: unknown key"}},
		{"line after escaped quote", "[tenants.ds]\nusername = \"jd\\\"'''\"\ncolour = \"red\"\n", []string{"config.toml:3: tenants.ds.colour: unknown key"}},
		{"line after multi-line string", "[tenants.ds]\nnotes = '''\ncolour = \"x\"\n'''\ncolor = \"red\"\n", []string{"config.toml:2: tenants.ds.notes: unknown key", "config.toml:5: tenants.ds.color: unknown key"}},
		{"line after multi-line basic string", "[tenants.ds]\nnotes = \"\"\"a \\\"\"\"\n[x]\n\"\"\"\ncolor = \"red\"\n", []string{"config.toml:5: tenants.ds.color: unknown key"}},
		{"line after multi-line array", "[tenants.ds]\npassword_command = [\n  \"getpw\",\n  \"x = ]'''\",\n]\ncolor = \"red\"\n", []string{"config.toml:6: tenants.ds.color: unknown key"}},
		// Limits checked before decoding, and on string lengths.
		{"nested inline tables", "x = " + strings.Repeat("{a=", 40) + "1" + strings.Repeat("}", 40) + "\n", []string{"config.toml:1: tables, arrays or dotted keys nest more than 16 deep here; a tapis-agent config needs 4 at most"}},
		{"nested arrays", "\nx = " + strings.Repeat("[", 30) + strings.Repeat("]", 30) + "\n", []string{"config.toml:2: ", "nest more than 16 deep"}},
		{"dotted key", strings.Repeat("a.", 17) + "a = 1\n", []string{"config.toml:1: ", "nest more than 16 deep"}},
		{"table header", "[" + strings.Repeat("a.", 17) + "a]\n", []string{"config.toml:1: ", "nest more than 16 deep"}},
		{"too large", "# " + strings.Repeat("x", 3<<19) + "\n", []string{"config.toml: reading config: the file is 1.5 MiB, more than the 1 MiB a config may hold; is it the right file?"}},
		{"too many tenants", manyTenants(1001), []string{"config.toml:1: tenants: 1001 tenants, more than the 1000 a config may hold; is it the right file?"}},
		{"username too long", "[tenants.ds]\nusername = \"" + strings.Repeat("j", 300) + "\"\n", []string{"config.toml:2: tenants.ds.username: is 300 bytes long, more than the 256 allowed"}},
		{"base url too long", "[tenants.ds]\nbase_url = \"https://" + strings.Repeat("d", 3000) + ".org\"\n", []string{"config.toml:2: tenants.ds.base_url: is 3012 bytes long, more than the 2048 allowed"}},
		{"password command too long", "[tenants.ds]\npassword_command = [\"getpw\", \"" + strings.Repeat("x", 5000) + "\"]\n", []string{"config.toml:2: tenants.ds.password_command: is more than 4096 bytes long"}},
		{"tenant refresh margin zero", "[tenants.ds]\nrefresh_margin = \"0s\"\n", []string{`config.toml:2: tenants.ds.refresh_margin: must be above 0 and below 24h (got "0s")`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := f.load(t, tc.content)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, nil; want an error", tc.content, cfg)
			}
			if cfg != nil {
				t.Errorf("Load(%q) returned a config with its error", tc.content)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("Load(%q) error %T is not a *config.Error", tc.content, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) error:\n%v\nwant it to contain:\n%s", tc.content, err, w)
				}
			}
			for _, secret := range []string{testKey, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Load(%q) error %q shows a secret", tc.content, err)
				}
			}
		})
	}
}

func TestLoadReportsAllErrorsInLineOrder(t *testing.T) {
	f := newFixture(t)
	content := `log_level = "loud"
[tenants.b]
base_url = "http://b.org"
[tenants.a]
usernme = "x"
`
	_, err := f.load(t, content)
	if err == nil {
		t.Fatal("Load: no error; want three")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"config.toml:1: log_level:", "config.toml:3: tenants.b.base_url:", "config.toml:5: tenants.a.usernme: unknown key; did you mean username?"}
	if len(lines) != len(want) {
		t.Fatalf("Load error has %d lines; want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("error line %d = %q; want it to contain %q", i+1, lines[i], w)
		}
	}
}

func TestPasswordCommandSecretsStayOut(t *testing.T) {
	f := newFixture(t)
	cases := []string{
		"[tenants.ds]\npassword_command = \"nosuch hunter2\"\n",
		"[tenants.ds]\npassword_command = \"getpw hunter2 | x\"\n",
		"[tenants.ds]\npassword_command = \"getpw 'hunter2\"\n",
		"[tenants.ds]\npassword_command = [\"nosuch\", \"hunter2\"]\n",
	}
	for _, c := range cases {
		_, err := f.load(t, c)
		if err == nil {
			t.Fatalf("Load(%q): no error", c)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Load(%q) error %q shows the command's arguments", c, err)
		}
	}
}

func TestLoadValid(t *testing.T) {
	f := newFixture(t)
	getpw := filepath.Join(f.bin, "getpw")
	cases := []struct {
		name    string
		content string
		want    *Config
	}{
		{
			name:    "empty",
			content: "# nothing yet\n",
			want:    &Config{Tenants: map[string]*Tenant{}},
		},
		{
			name: "all fields",
			content: `default_tenant = "designsafe"
refresh_margin = "1h"
log_level = "debug"

[tenants.designsafe]
base_url = "https://DesignSafe.tapis.io/"
username = "jdoe"
client_id = "tapis-agent-host-abc"
client_key_file = "~/ds.key"
password_command = "getpw show 'tacc token' \"a b\" c\\ d"
token_file = "~/.tapis_tokens.json"
ca_file = "ca.pem"
refresh_margin = "45m"

[tenants.dev]
base_url = "http://127.0.0.1:8080/tapis"
password_command = "getpw show dev | head -1"
password_command_shell = true
token_file = "tokens/dev.properties"
token_format = "tapis-cmd"

[tenants."tacc.prod"]
base_url = "http://[::1]:9000"
password_command = ["getpw", "it's", "$HOME"]
`,
			want: &Config{
				DefaultTenant: "designsafe",
				RefreshMargin: time.Hour,
				LogLevel:      "debug",
				Tenants: map[string]*Tenant{
					"designsafe": {
						Name:            "designsafe",
						BaseURL:         "https://designsafe.tapis.io",
						Username:        "jdoe",
						ClientID:        "tapis-agent-host-abc",
						ClientKeyFile:   filepath.Join(f.home, "ds.key"),
						ClientKey:       secret.Value(testKey),
						PasswordCommand: []string{"getpw", "show", "tacc token", "a b", "c d"},
						TokenFile:       filepath.Join(f.home, ".tapis_tokens.json"),
						TokenFormat:     FormatConnectTapis,
						CAFile:          filepath.Join(f.dir, "ca.pem"),
						RefreshMargin:   45 * time.Minute,
					},
					"dev": {
						Name:            "dev",
						BaseURL:         "http://127.0.0.1:8080/tapis",
						PasswordCommand: []string{"/bin/sh", "-c", "getpw show dev | head -1"},
						PasswordShell:   true,
						TokenFile:       filepath.Join(f.dir, "tokens", "dev.properties"),
						TokenFormat:     FormatTapisCmd,
					},
					"tacc.prod": {
						Name:            "tacc.prod",
						BaseURL:         "http://[::1]:9000",
						PasswordCommand: []string{"getpw", "it's", "$HOME"},
					},
				},
			},
		},
		{
			name: "inline tables and defaults",
			content: `tenants = { tacc = {}, ds = { username = "jdoe", password_command = ["` + getpw + `"] } }
`,
			want: &Config{
				Tenants: map[string]*Tenant{
					"tacc": {Name: "tacc", BaseURL: "https://tacc.tapis.io"},
					"ds": {
						Name:            "ds",
						BaseURL:         "https://ds.tapis.io",
						Username:        "jdoe",
						PasswordCommand: []string{getpw},
					},
				},
			},
		},
		{
			name:    "default tenant without tenants uses the template",
			content: "default_tenant = \"designsafe\"\n",
			want:    &Config{DefaultTenant: "designsafe", Tenants: map[string]*Tenant{}},
		},
		{
			name:    "localhost http and client key with absolute path",
			content: "[tenants.local]\nbase_url = \"http://LOCALHOST:1234\"\nclient_id = \"c\"\nclient_key_file = \"" + filepath.Join(f.dir, "key") + "\"\n",
			want: &Config{Tenants: map[string]*Tenant{"local": {
				Name:          "local",
				BaseURL:       "http://localhost:1234",
				ClientID:      "c",
				ClientKeyFile: filepath.Join(f.dir, "key"),
				ClientKey:     secret.Value(testKey),
			}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := f.load(t, tc.content)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.want.Path = filepath.Join(f.dir, "config.toml")
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("Load(%q) =\n%s\nwant\n%s", tc.content, dump(cfg), dump(tc.want))
			}
		})
	}
}

// dump prints a Config for test failures, client keys included.
func dump(c *Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "path=%s default=%s margin=%v log=%s", c.Path, c.DefaultTenant, c.RefreshMargin, c.LogLevel)
	for _, name := range c.TenantNames() {
		t := *c.Tenants[name]
		fmt.Fprintf(&b, "\n  %+v key=%s", t, t.ClientKey.Reveal())
	}
	return b.String()
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope", "config.toml")
	cfg, err := Load(p)
	if err != nil {
		t.Fatalf("Load(missing) error = %v; want nil", err)
	}
	if cfg.Path != p || len(cfg.Tenants) != 0 || cfg.DefaultTenantName() != "" {
		t.Errorf("Load(missing) = %+v; want an empty config for %s", cfg, p)
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: reading it fails, and not with
	// "does not exist", so it is an error.
	_, err := Load(dir)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != dir || !strings.Contains(err.Error(), "reading config") {
		t.Errorf("Load(dir) error = %v; want a *config.Error about reading %s", err, dir)
	}
}

// manyTenants is a config of n tenants, as make bench writes it.
func manyTenants(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[tenants.t%04d]\nbase_url = \"https://t%04d.tapis.io\"\nusername = \"jdoe\"\n\n", i, i)
	}
	return b.String()
}

// TestLoadManyTenants: the thousand tenants make bench configures load.
func TestLoadManyTenants(t *testing.T) {
	cfg, err := Parse("/x/config.toml", []byte(manyTenants(MaxTenants)))
	if err != nil || len(cfg.Tenants) != MaxTenants {
		t.Fatalf("Parse of %d tenants: %v; want them all", MaxTenants, err)
	}
}

// TestLoadManyErrors: a file of many thousand mistakes is reported by its
// first few and a count, not in megabytes of status and log.
func TestLoadManyErrors(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "k%d = 1\n", i)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load of 5000 unknown keys: no error")
	}
	msg := err.Error()
	if n := strings.Count(msg, ": unknown key"); n != maxErrors {
		t.Errorf("Load reported %d unknown keys; want the first %d", n, maxErrors)
	}
	if want := path + ": and 4980 more errors; is it the right file?"; !strings.HasSuffix(msg, want) {
		t.Errorf("Load error ends %q; want %q", msg[max(0, len(msg)-200):], want)
	}
	if len(msg) > 4096 {
		t.Errorf("Load error is %d bytes long; want a few lines", len(msg))
	}
}
