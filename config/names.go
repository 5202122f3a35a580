package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReservedNames are the tapis-token subcommands. A tenant may not be named
// like one, or `tapis-token login` would be ambiguous. Do not modify it.
var ReservedNames = []string{"login", "logout", "status", "claims", "import", "exec", "lease", "sbatch", "version", "help", "completion"}

// maxTenantName is the longest tenant name: a DNS label, since the name
// becomes one in https://<name>.tapis.io.
const maxTenantName = 63

// ValidTenantName reports why name cannot name a tenant, or nil. A tenant
// name is 1 to 63 characters of lower-case letters, digits, '.', '_' and
// '-', starting with a letter or digit (Tapis tenant ids such as
// "designsafe", "tacc", "dev"), and not one of ReservedNames.
func ValidTenantName(name string) error {
	const rule = "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
	switch {
	case name == "":
		return errors.New("tenant name is empty; " + rule)
	case len(name) > maxTenantName:
		return fmt.Errorf("tenant name is %d characters long; at most %d are allowed", len(name), maxTenantName)
	case !isAlnum(name[0]):
		return fmt.Errorf("tenant name %q is invalid; %s", name, rule)
	case strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !isAlnum(byte(r)) && r != '.' && r != '_' && r != '-' }) >= 0:
		return fmt.Errorf("tenant name %q is invalid; %s", name, rule)
	case slices.Contains(ReservedNames, name):
		return fmt.Errorf("tenant name %q is reserved for a tapis-token subcommand; choose another name", name)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// DefaultPath returns where the configuration file is looked for:
// $TAPIS_AGENT_CONFIG, else $XDG_CONFIG_HOME/tapis-agent/config.toml (when
// it is an absolute path, as the XDG spec requires), else
// ~/.config/tapis-agent/config.toml. It returns "" only when none of these
// can be determined (no $HOME).
func DefaultPath() string {
	if p := os.Getenv("TAPIS_AGENT_CONFIG"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "tapis-agent", "config.toml")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "tapis-agent", "config.toml")
}

// expandPath expands a leading "~" or "~/" to the home directory and makes
// a relative path absolute against dir (the working directory when dir is
// ""). "~user" is not supported: write the full path.
func expandPath(p, dir string) (string, error) {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot expand ~: %w", err)
		}
		p = filepath.Join(home, p[1:])
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("~user paths are not supported (got %q); write the full path", p)
	case !filepath.IsAbs(p) && dir != "":
		p = filepath.Join(dir, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("cannot make %q absolute: %w", p, err)
	}
	return abs, nil
}
