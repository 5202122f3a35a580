// Package config loads the tapis-agent configuration file: the TOML schema,
// strict decoding and validation, path discovery, and a watcher that reports
// when the file changes.
//
// A configuration names zero or more Tapis tenants. A tenant that is not
// configured still works with the base-URL template https://<name>.tapis.io
// (see [Config.TenantOrDefault]), so a missing file is an empty, valid
// configuration.
//
// Decoding is strict: unknown keys, wrong types, bad durations, non-https base
// URLs (loopback excepted), unreadable or group-readable key files and
// commands that cannot be found are errors of type [*Error] naming the file,
// the line, the key and what would be valid. Several problems are reported
// together, joined with [errors.Join]; use [errors.As] to get the first.
package config

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
)

// Token file formats accepted by `token_format` (tapis-protocol.md §8).
const (
	// FormatConnectTapis is DesignSafe's ~/.tapis_tokens.json:
	// {"access_token": …, "expires_at": …}. It is the default.
	FormatConnectTapis = "connect_tapis"
	// FormatTapisV3CLI is tapisv3-cli's ~/tapis/v3/configs/config.json.
	FormatTapisV3CLI = "tapisv3-cli"
	// FormatTapisCmd is tapis-cmd's Java properties file
	// (BASE_URL=…, USER_JWT=…).
	FormatTapisCmd = "tapis-cmd"
)

// TokenFormats lists the valid values of `token_format`, the default first.
var TokenFormats = []string{FormatConnectTapis, FormatTapisV3CLI, FormatTapisCmd}

// LogLevels lists the valid values of `log_level`.
var LogLevels = []string{"debug", "info", "warn", "error"}

// MaxRefreshMargin bounds `refresh_margin`: a margin of a day or more is
// surely a mistake, longer than a default access token lives (and the
// refresher ignores a margin that does not fit in the token's lifetime).
const MaxRefreshMargin = 24 * time.Hour

// Config is a loaded configuration file. The zero value is an empty
// configuration with no tenants. A Config is not modified after Load or
// Parse return it, so it is safe to read from several goroutines; a reload
// produces a new Config.
type Config struct {
	// Path is the file the configuration came from; "" for none.
	Path string
	// DefaultTenant is `default_tenant`; "" when unset.
	DefaultTenant string
	// RefreshMargin is `refresh_margin`: refresh no later than when this
	// much validity remains. The refresh comes at 2/3 of the token's
	// lifetime or this long before expiry, whichever is earlier, so a
	// margin below a third of the lifetime changes nothing. 0 means unset:
	// the 2/3 rule alone.
	RefreshMargin time.Duration
	// LogLevel is `log_level`, one of LogLevels, or "" when unset.
	LogLevel string
	// Tenants maps tenant names to their settings. Load and Parse never
	// leave it nil.
	Tenants map[string]*Tenant
}

// Tenant is one `[tenants.NAME]` table, validated and normalised. The zero
// value is not useful; Tenants come from Load, Parse or
// [Config.TenantOrDefault]. A Tenant is read-only after loading.
type Tenant struct {
	// Name is the tenant id, the table's name (see ValidTenantName).
	Name string
	// BaseURL is `base_url` without a trailing slash; by default
	// https://<name>.tapis.io. It is https unless the host is loopback.
	BaseURL string
	// Username is `username`; "" means it is asked at login.
	Username string
	// ClientID is `client_id`; "" means the agent registers its own client.
	ClientID string
	// ClientKeyFile is `client_key_file`, absolute after loading.
	ClientKeyFile string
	// ClientKey is the first line of ClientKeyFile, read at load.
	ClientKey secret.Value
	// PasswordCommand is `password_command` as an argument vector, or nil.
	// With PasswordShell it is {"/bin/sh", "-c", <string>}.
	PasswordCommand []string
	// PasswordShell is `password_command_shell`.
	PasswordShell bool
	// TokenFile is `token_file`, absolute after loading; "" for none.
	TokenFile string
	// TokenFormat is `token_format`, one of TokenFormats; it is
	// FormatConnectTapis when TokenFile is set and no format was given, and
	// "" when there is no TokenFile.
	TokenFormat string
	// CAFile is `ca_file`, absolute after loading; "" for the system roots.
	CAFile string
	// RefreshMargin is the tenant's `refresh_margin`, overriding
	// Config.RefreshMargin (same meaning); 0 when unset.
	RefreshMargin time.Duration
}

// Load reads and parses the configuration file at path. A missing file is an
// empty configuration, not an error; any other problem reading it is: a
// file that is not a regular one (a named pipe would block the read), one
// larger than MaxSize, one that takes longer than LoadTimeout to load (with
// the key and CA files it names). Errors in the file's content are
// [*Error]s, possibly several joined.
func Load(path string) (*Config, error) {
	type result struct {
		cfg *Config
		err error
	}
	// A read that hangs (a stalled network file system) is left behind:
	// no system call on it can be cancelled.
	ch := make(chan result, 1)
	go func() {
		cfg, err := load(path)
		ch <- result{cfg, err}
	}()
	t := time.NewTimer(LoadTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.cfg, r.err
	case <-t.C:
		return nil, &Error{File: path, Msg: fmt.Sprintf("reading config: did not finish within %s (a hung network file system?)", LoadTimeout),
			err: safefile.ErrTimeout}
	}
}

func load(path string) (*Config, error) {
	// Follows a symlink: a config often is one (dotfiles, a ConfigMap).
	data, err := safefile.Read(path, safefile.Options{Max: MaxSize})
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Path: path, Tenants: map[string]*Tenant{}}, nil
	}
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, &Error{File: path, Msg: "reading config: " + err.Error() + "; point the agent at a regular file", err: err}
	case errors.Is(err, safefile.ErrTooLarge):
		size := "more than the " + safefile.Size(MaxSize) + " a config may hold"
		var se *safefile.SizeError
		if errors.As(err, &se) {
			size = safefile.SizeAbove(se.Size, MaxSize) + ", " + size
		}
		return nil, &Error{File: path, Msg: "reading config: the file is " + size + "; is it the right file?", err: err}
	case err != nil:
		return nil, &Error{File: path, Msg: "reading config: " + errText(err), err: err}
	}
	return Parse(path, data)
}

// Lookup returns the configured tenant called name, or nil. It is safe on a
// nil Config.
func (c *Config) Lookup(name string) *Tenant {
	if c == nil {
		return nil
	}
	return c.Tenants[name]
}

// TenantOrDefault returns the configured tenant called name or, when there
// is none, a fresh Tenant using the base-URL template https://<name>.tapis.io.
// It returns nil when name is not a valid tenant name (see ValidTenantName).
func (c *Config) TenantOrDefault(name string) *Tenant {
	if t := c.Lookup(name); t != nil {
		return t
	}
	if ValidTenantName(name) != nil {
		return nil
	}
	return &Tenant{Name: name, BaseURL: baseurl.Default(name)}
}

// DefaultTenantName returns `default_tenant`, else the name of the only
// configured tenant, else "".
func (c *Config) DefaultTenantName() string {
	if c == nil {
		return ""
	}
	if c.DefaultTenant != "" {
		return c.DefaultTenant
	}
	if len(c.Tenants) == 1 {
		for name := range c.Tenants {
			return name
		}
	}
	return ""
}

// TenantNames returns the configured tenant names, sorted.
func (c *Config) TenantNames() []string {
	if c == nil {
		return nil
	}
	names := make([]string, 0, len(c.Tenants))
	for name := range c.Tenants {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SameSession reports whether a session opened with t remains valid under o:
// their base URL, username, client id, client key and CA file are equal. A
// reload keeps the sessions of tenants for which it is true. The CA file
// counts because a session's HTTPS client trusts the CA it was opened with.
// Two nil Tenants are the same; a nil and a non-nil one are not.
func (t *Tenant) SameSession(o *Tenant) bool {
	if t == nil || o == nil {
		return t == o
	}
	return t.BaseURL == o.BaseURL &&
		t.Username == o.Username &&
		t.ClientID == o.ClientID &&
		t.CAFile == o.CAFile &&
		subtle.ConstantTimeCompare([]byte(t.ClientKey.Reveal()), []byte(o.ClientKey.Reveal())) == 1
}
