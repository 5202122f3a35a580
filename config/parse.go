package config

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
	"github.com/tapis-agent/tapis-agent/internal/suggest"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
)

// Keys of the file, in the order the documentation lists them.
var (
	topKeys    = []string{"default_tenant", "refresh_margin", "log_level", "tenants"}
	tenantKeys = []string{
		"base_url", "username", "client_id", "client_key_file",
		"password_command", "password_command_shell",
		"token_file", "token_format", "ca_file", "refresh_margin",
	}
)

// Limits on files read while loading.
const (
	maxKeyFile = 64 << 10
	maxCAFile  = 4 << 20
)

// Parse parses and validates a configuration held in data. path names the
// file in errors and anchors relative paths (client_key_file, token_file,
// ca_file) at its directory; with path "" they are relative to the working
// directory. Parse reads the client key and CA files the configuration
// names, and looks password commands up on $PATH.
//
// Validation rules, beyond the types:
//   - tenant names follow ValidTenantName;
//   - default_tenant is a valid tenant name; when tenants are configured it
//     must be one of them (a typo would otherwise silently log in at
//     https://<typo>.tapis.io); with no tenants configured any valid name
//     is accepted and uses the base-URL template;
//   - refresh_margin is a Go duration ("45m", "1h30m") above 0 and below 24h;
//   - base_url passes baseurl.Normalize: https, or http on a loopback host
//     (127.0.0.0/8, ::1, localhost); without userinfo, query or fragment;
//     the tenant root without /v3; a trailing slash is dropped;
//   - client_id and client_key_file go together; the key file must be a
//     regular file, not accessible by group or others, whose first line is
//     the key;
//   - password_command is a string split into words (quotes and backslashes
//     as in sh, nothing expanded, unquoted shell syntax refused) or an array
//     of strings; its first word is an absolute path or found on $PATH;
//     password_command_shell = true runs the string with /bin/sh -c instead;
//   - token_format needs token_file; ca_file must hold a PEM certificate.
//
// The returned error is an [*Error], or several joined with [errors.Join],
// ordered by line.
func Parse(path string, data []byte) (*Config, error) {
	if err := checkShape(path, data); err != nil {
		return nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, syntaxError(path, data, pe)
		}
		return nil, &Error{File: path, Msg: "invalid TOML: " + err.Error(), err: err}
	}
	p := &parser{file: path, lines: scanKeyLines(data)}
	if path != "" {
		p.dir = filepath.Dir(path)
	}
	cfg := p.config(raw)
	if len(p.errs) == 0 {
		return cfg, nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
	if p.more > 0 {
		p.errs = append(p.errs, &Error{File: path, Msg: fmt.Sprintf("and %d more errors; is it the right file?", p.more)})
	}
	if len(p.errs) == 1 {
		return nil, p.errs[0]
	}
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

// syntaxError describes a TOML syntax error: its line, the key being
// defined and, for a bare word where a value belongs (the most common
// mistake: username = jdoe), the line as it would be valid.
func syntaxError(path string, data []byte, pe toml.ParseError) *Error {
	e := &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: "invalid TOML: " + pe.Message, err: pe}
	var line string
	if lines := strings.Split(string(data), "\n"); e.Line > 0 && e.Line <= len(lines) {
		line = strings.TrimLeft(lines[e.Line-1], " \t")
	}
	keyPath, rest, ok := parseKeyPath(line)
	if !ok || !strings.HasPrefix(rest, "=") || strings.HasPrefix(line, "[") {
		return e
	}
	key := keyString(keyPath)
	value := strings.TrimSpace(rest[1:])
	if i := strings.Index(value, "#"); i >= 0 {
		value = strings.TrimSpace(value[:i])
	}
	badValue := strings.HasPrefix(pe.Message, "expected value but found")
	if strings.HasPrefix(pe.Message, "expected a top-level item to end with") {
		// The library names the table here, not the key of the line.
		badValue = true
		if e.Key != key && !strings.HasSuffix(e.Key, "."+key) {
			e.Key = strings.TrimPrefix(e.Key+"."+key, ".")
		}
	}
	switch {
	case !badValue:
	case value == "":
		e.Msg += fmt.Sprintf(`; give %s a value, e.g. a string in double quotes: %s = "..."`, key, key)
	case !strings.ContainsAny(value[:1], `"'[{`):
		e.Msg += fmt.Sprintf("; strings need double quotes: %s = %q", key, value)
	default:
		e.Msg += `; values are strings in double quotes ("jdoe"), numbers, true or false, [arrays] or {inline tables}`
	}
	return e
}

type parser struct {
	file  string
	dir   string // anchors relative paths; "" for the working directory
	lines keyLines
	errs  []*Error // the first maxErrors
	more  int      // errors past those
}

// errCount returns how many errors were found so far, shown or not.
func (p *parser) errCount() int { return len(p.errs) + p.more }

func (p *parser) errorf(path []string, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		p.more++
		return
	}
	p.errs = append(p.errs, &Error{
		File: p.file,
		Line: p.lines.line(path),
		Key:  keyString(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

func (p *parser) config(raw map[string]any) *Config {
	cfg := &Config{Path: p.file, Tenants: map[string]*Tenant{}}
	var defaultTenant any
	for _, k := range sortedKeys(raw) {
		v, path := raw[k], []string{k}
		switch k {
		case "default_tenant":
			defaultTenant = v // checked once the tenants are known
		case "refresh_margin":
			cfg.RefreshMargin = p.duration(path, v)
		case "log_level":
			cfg.LogLevel = p.oneOf(path, v, LogLevels)
		case "tenants":
			p.tenants(cfg, path, v)
		default:
			p.unknownKey(path, topKeys)
		}
	}
	if defaultTenant != nil {
		path := []string{"default_tenant"}
		if s, ok := p.str(path, defaultTenant); ok {
			switch {
			case ValidTenantName(s) != nil:
				p.errorf(path, "%v", ValidTenantName(s))
			case len(cfg.Tenants) > 0 && cfg.Tenants[s] == nil:
				p.errorf(path, "%q is not a configured tenant; use one of %s, or add a [tenants.%s] table",
					s, strings.Join(cfg.TenantNames(), ", "), s)
			default:
				cfg.DefaultTenant = s
			}
		}
	}
	return cfg
}

func (p *parser) unknownKey(path []string, valid []string) {
	k := path[len(path)-1]
	switch {
	case len(path) == 1 && slices.Contains(tenantKeys, k):
		p.errorf(path, "unknown top-level key; %s belongs in a [tenants.NAME] table", k)
	case suggest.Closest(k, valid) != "":
		p.errorf(path, "unknown key; did you mean %s?", suggest.Closest(k, valid))
	default:
		p.errorf(path, "unknown key; valid keys are %s", strings.Join(valid, ", "))
	}
}

func (p *parser) tenants(cfg *Config, path []string, v any) {
	tbl, ok := v.(map[string]any)
	if !ok {
		p.errorf(path, "must be a table of tenants such as [tenants.designsafe] (got %s)", tomlType(v))
		return
	}
	if len(tbl) > MaxTenants {
		p.errorf(path, "%d tenants, more than the %d a config may hold; is it the right file?", len(tbl), MaxTenants)
		return
	}
	for _, name := range sortedKeys(tbl) {
		tpath := []string{"tenants", name}
		if err := ValidTenantName(name); err != nil {
			p.errorf(tpath, "%v", err)
			continue
		}
		ttbl, ok := tbl[name].(map[string]any)
		if !ok {
			p.errorf(tpath, "must be a table such as [tenants.%s] (got %s)", name, tomlType(tbl[name]))
			continue
		}
		if t := p.tenant(name, ttbl); t != nil {
			cfg.Tenants[name] = t
		}
	}
}

func (p *parser) tenant(name string, raw map[string]any) *Tenant {
	nerr := p.errCount()
	t := &Tenant{Name: name, BaseURL: baseurl.Default(name)}
	var (
		pwCmd       any
		shell       bool
		tokenFormat string
	)
	at := func(k string) []string { return []string{"tenants", name, k} }
	for _, k := range sortedKeys(raw) {
		v, path := raw[k], at(k)
		switch k {
		case "base_url":
			if s, ok := p.str(path, v); ok {
				u, err := baseurl.Normalize(s)
				if err != nil {
					p.errorf(path, "%v", err)
				}
				t.BaseURL = u
			}
		case "username":
			t.Username = p.word(path, v, "remove the line to be asked at login")
		case "client_id":
			t.ClientID = p.word(path, v, "remove the line to let the agent register its own client")
		case "client_key_file":
			t.ClientKeyFile = p.path(path, v)
		case "password_command":
			pwCmd = v // checked with password_command_shell below
		case "password_command_shell":
			b, ok := v.(bool)
			if !ok {
				p.errorf(path, "must be true or false (got %s)", tomlType(v))
			}
			shell = b
		case "token_file":
			t.TokenFile = p.path(path, v)
		case "token_format":
			tokenFormat = p.oneOf(path, v, TokenFormats)
		case "ca_file":
			if f := p.path(path, v); f != "" {
				if err := checkCAFile(f); err != nil {
					p.errorf(path, "%v", err)
				}
				t.CAFile = f
			}
		case "refresh_margin":
			t.RefreshMargin = p.duration(path, v)
		default:
			p.unknownKey(path, tenantKeys)
		}
	}

	// Settings that depend on each other.
	switch {
	case t.ClientKeyFile != "" && t.ClientID == "" && raw["client_id"] == nil:
		p.errorf(at("client_key_file"), "needs client_id, the id of the OAuth client this key belongs to")
	case t.ClientID != "" && raw["client_key_file"] == nil:
		p.errorf(at("client_id"), "needs client_key_file, a file holding the client's key (chmod 600)")
	case t.ClientKeyFile != "":
		key, err := readKeyFile(t.ClientKeyFile)
		if err != nil {
			p.errorf(at("client_key_file"), "%v", err)
		}
		t.ClientKey = key
	}
	if pwCmd != nil {
		t.PasswordCommand, t.PasswordShell = p.passwordCommand(at("password_command"), pwCmd, shell)
	} else if shell {
		p.errorf(at("password_command_shell"), "is set but there is no password_command to run")
	}
	switch {
	case tokenFormat != "" && raw["token_file"] == nil:
		p.errorf(at("token_format"), "needs token_file, the file to keep current")
	case tokenFormat != "":
		t.TokenFormat = tokenFormat
	case t.TokenFile != "":
		t.TokenFormat = FormatConnectTapis
	}
	if p.errCount() > nerr {
		return nil
	}
	return t
}

// str returns v as a string or reports that it is not one.
func (p *parser) str(path []string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(path, "must be a string (got %s)", tomlType(v))
		return s, false
	}
	return s, p.checkLength(path, s)
}

// oneOf returns v as a string, reporting it unless it is one of valid.
func (p *parser) oneOf(path []string, v any, valid []string) string {
	s, ok := p.str(path, v)
	if ok && !slices.Contains(valid, s) {
		p.errorf(path, "must be one of %s (got %q)", strings.Join(valid, ", "), s)
	}
	return s
}

// word returns v as a non-empty string without blanks or control characters.
func (p *parser) word(path []string, v any, emptyHint string) string {
	s, ok := p.str(path, v)
	switch {
	case !ok:
	case s == "":
		p.errorf(path, "must not be empty; %s", emptyHint)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		p.errorf(path, "must not contain blanks or control characters")
	}
	return s
}

func (p *parser) duration(path []string, v any) time.Duration {
	s, ok := v.(string)
	if !ok {
		p.errorf(path, `must be a duration string such as "30m" or "1h" (got %s)`, tomlType(v))
		return 0
	}
	if !p.checkLength(path, s) {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(path, `must be a duration such as "30m" or "1h" (got %q)`, s)
	case d <= 0 || d >= MaxRefreshMargin:
		p.errorf(path, "must be above 0 and below 24h (got %q)", s)
	}
	return d
}

// path returns v as an absolute path, expanding a leading ~ and anchoring
// relative paths at the config file's directory.
func (p *parser) path(path []string, v any) string {
	s, ok := p.str(path, v)
	if !ok {
		return ""
	}
	if strings.TrimSpace(s) == "" {
		p.errorf(path, "must not be empty; remove the line instead")
		return ""
	}
	f, err := expandPath(s, p.dir)
	if err != nil {
		p.errorf(path, "%v", err)
	}
	return f
}

func (p *parser) passwordCommand(path []string, v any, shell bool) ([]string, bool) {
	var argv []string
	switch v := v.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			p.errorf(path, "must not be empty; remove the line to be asked for the password")
			return nil, false
		}
		if !p.checkLength(path, v) {
			return nil, false
		}
		if shell {
			argv = []string{"/bin/sh", "-c", v}
			break
		}
		words, err := splitWords(v)
		if err != nil {
			p.errorf(path, "%v", err)
			return nil, false
		}
		argv = words
	case []any:
		if shell {
			p.errorf(path, "must be a string when password_command_shell = true (got array)")
			return nil, false
		}
		if len(v) == 0 {
			p.errorf(path, "must not be an empty array; remove the line to be asked for the password")
			return nil, false
		}
		total := 0
		for i, w := range v {
			s, ok := w.(string)
			if !ok {
				p.errorf(path, "must be an array of strings (element %d is %s)", i+1, tomlType(w))
				return nil, false
			}
			if total += len(s) + 1; total > maxString["password_command"] {
				p.errorf(path, "is more than %d bytes long; is it the right command?", maxString["password_command"])
				return nil, false
			}
			argv = append(argv, s)
		}
	default:
		p.errorf(path, "must be a string or an array of strings (got %s)", tomlType(v))
		return nil, false
	}
	if strings.HasPrefix(argv[0], "~/") {
		if f, err := expandPath(argv[0], ""); err == nil {
			argv[0] = f
		}
	}
	// Only the program is named in these messages: the arguments may
	// hold a secret.
	prog := argv[0]
	switch {
	case prog == "":
		p.errorf(path, "starts with an empty program name")
		return nil, false
	case !filepath.IsAbs(prog) && strings.ContainsRune(prog, '/'):
		p.errorf(path, "program %q must be an absolute path or a command name found on $PATH", prog)
		return nil, false
	}
	if _, err := exec.LookPath(prog); err != nil {
		if filepath.IsAbs(prog) {
			p.errorf(path, "program %s is not an executable file", prog)
		} else {
			p.errorf(path, "program %q is not found on $PATH; use an absolute path", prog)
		}
		return nil, false
	}
	return argv, shell
}

// readKeyFile reads a client key: the trimmed first line of a regular file
// that group and others cannot access. Its errors never hold the content.
func readKeyFile(name string) (secret.Value, error) {
	f, fi, err := openRegular(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s is accessible by group or others (mode %04o); run chmod 600 %s", name, perm, name)
	}
	line, err := bufio.NewReader(io.LimitReader(f, maxKeyFile)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("cannot read %s: %s", name, errText(err))
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", fmt.Errorf("%s is empty; its first line must be the client key", name)
	}
	return secret.Value(key), nil
}

// checkCAFile reports whether name is readable and holds a PEM certificate.
func checkCAFile(name string) error {
	f, _, err := openRegular(name)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile))
	if err != nil {
		return fmt.Errorf("cannot read %s: %s", name, errText(err))
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", name)
		}
		if b.Type == "CERTIFICATE" && len(bytes.TrimSpace(b.Bytes)) > 0 {
			return nil
		}
	}
}

// openRegular opens a regular file for reading, without blocking on a
// named pipe or a terminal put in its place.
func openRegular(name string) (*os.File, fs.FileInfo, error) {
	f, fi, err := safefile.Open(name, safefile.Options{})
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, nil, err
	case err != nil:
		return nil, nil, fmt.Errorf("cannot read %s: %s", name, errText(err))
	}
	return f, fi, nil
}

// errText returns the reason of a file error without repeating the path.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return "datetime"
	case []any:
		return "array"
	case []map[string]any:
		return "array of tables"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
