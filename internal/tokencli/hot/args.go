package hot

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/wire"
)

// Flag is a command-line flag: a switch when B is set, else a flag that
// takes the value stored in V.
type Flag struct {
	Name string
	B    *bool
	V    *string
}

// BoolFlag is a switch named name.
func BoolFlag(name string, b *bool) Flag { return Flag{Name: name, B: b} }

// ValueFlag is a flag named name that takes a value.
func ValueFlag(name string, v *string) Flag { return Flag{Name: name, V: v} }

var errNoValue = errors.New("needs a value")

// ParseArgs splits args into positionals and the given flags; flags may
// come before or after positionals, as --f v or --f=v. A slice, not a map:
// tapis-token parses a command line on every call, and a map costs its
// start more than a search through four flags.
func ParseArgs(args []string, flags ...Flag) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		f := findFlag(flags, name)
		switch {
		case f == nil:
			return nil, Usagef("unknown flag %s", name)
		case f.B != nil:
			if hasVal {
				return nil, Usagef("%s takes no value", name)
			}
			*f.B = true
			continue
		case !hasVal:
			if i+1 >= len(args) {
				return nil, Usagef("%s %v", name, errNoValue)
			}
			i++
			val = args[i]
		}
		*f.V = val
	}
	return pos, nil
}

func findFlag(flags []Flag, name string) *Flag {
	for i := range flags {
		if flags[i].Name == name {
			return &flags[i]
		}
	}
	return nil
}

// OneTenant returns the optional single TENANT argument.
func OneTenant(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	}
	return "", Usagef("expected at most one TENANT, got %q", strings.Join(pos, " "))
}

// TenantOnly reads the command line of a command that takes only an
// optional TENANT.
func TenantOnly(args []string) (string, error) {
	pos, err := ParseArgs(args)
	if err != nil {
		return "", err
	}
	return OneTenant(pos)
}

// ParseMinValid reads a duration such as 2h or 90m, or whole seconds.
func ParseMinValid(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, Usagef("--min-valid %q: give a duration such as 2h, 90m or 300s", s)
	}
	return d, nil
}

// TokenArgs is a parsed token command line:
// [TENANT] [--min-valid DURATION] [-H | --json | --env].
type TokenArgs struct {
	Tenant            string
	MinValid          time.Duration // -1: the agent's default
	Header, JSON, Env bool
}

// ParseTokenArgs parses a token command line.
func ParseTokenArgs(args []string) (*TokenArgs, error) {
	ta := &TokenArgs{MinValid: -1}
	minValid := ""
	pos, err := ParseArgs(args,
		BoolFlag("-H", &ta.Header), BoolFlag("--header", &ta.Header), BoolFlag("--json", &ta.JSON), BoolFlag("--env", &ta.Env),
		ValueFlag("--min-valid", &minValid))
	if err != nil {
		return nil, err
	}
	if ta.Tenant, err = OneTenant(pos); err != nil {
		return nil, err
	}
	if n := btoi(ta.Header) + btoi(ta.JSON) + btoi(ta.Env); n > 1 {
		return nil, Usagef("-H, --json and --env exclude each other")
	}
	if minValid != "" {
		if ta.MinValid, err = ParseMinValid(minValid); err != nil {
			return nil, err
		}
	}
	return ta, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WritePlain prints the token, or with header an X-Tapis-Token header
// line.
func WritePlain(w io.Writer, tok *wire.TokenResponse, header bool) error {
	line := tok.AccessToken + "\n"
	if header {
		line = "X-Tapis-Token: " + line
	}
	_, err := io.WriteString(w, line) // not fmt: its printer costs a cold start more
	return err
}

// ShellQuote quotes s for sh in single quotes, closing and reopening
// them around each single quote s holds.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellArg returns s as one sh word: as it is when that is safe, else
// quoted.
func ShellArg(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%=,", r))
	}) < 0
	if safe {
		return s
	}
	return ShellQuote(s)
}
