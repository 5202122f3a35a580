package cmdline

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/suggest"
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
			return nil, unknownFlag(name, flags)
		case f.B != nil:
			if hasVal {
				return nil, Usage(name + " takes no value")
			}
			*f.B = true
			continue
		case !hasVal:
			if i+1 >= len(args) {
				return nil, Usage(name + " " + errNoValue.Error())
			}
			i++
			val = args[i]
		}
		*f.V = val
	}
	return pos, nil
}

// unknownFlag is the usage error for flag name, naming the flag of flags
// it is a likely typo of.
func unknownFlag(name string, flags []Flag) error {
	var names []string
	for _, f := range flags {
		names = append(names, f.Name)
	}
	msg := "unknown flag " + name
	if s := suggest.Closest(name, names); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return Usage(msg)
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
	return "", Usage("expected at most one TENANT, got " + strconv.Quote(strings.Join(pos, " ")))
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
	d, ok := parseDuration(s)
	if !ok || d < 0 {
		return 0, Usage("--min-valid " + strconv.Quote(s) + ": give a duration such as 2h, 90m or 300s")
	}
	return d, nil
}

// parseDuration is time.ParseDuration (FuzzParseDuration holds it to
// that), without the unit table that time initialises at every start of
// a program that links ParseDuration.
func parseDuration(s string) (time.Duration, bool) {
	const maxD = 1 << 63
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, true
	}
	if s == "" {
		return 0, false
	}
	var d uint64
	for s != "" {
		if !(s[0] == '.' || '0' <= s[0] && s[0] <= '9') {
			return 0, false
		}
		// The integer part.
		var v uint64
		i := 0
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if v > maxD/10 {
				return 0, false
			}
			v = v*10 + uint64(s[i]-'0')
			if v > maxD {
				return 0, false
			}
		}
		pre := i > 0
		s = s[i:]
		// The fraction, whose digits past what fits are dropped.
		var f uint64
		scale := 1.0
		post := false
		if s != "" && s[0] == '.' {
			s = s[1:]
			i, overflow := 0, false
			for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
				if overflow || f > (maxD-1)/10 {
					overflow = true
					continue
				}
				y := f*10 + uint64(s[i]-'0')
				if y > maxD {
					overflow = true
					continue
				}
				f = y
				scale *= 10
			}
			post = i > 0
			s = s[i:]
		}
		if !pre && !post {
			return 0, false
		}
		i = 0
		for ; i < len(s) && s[i] != '.' && !('0' <= s[i] && s[i] <= '9'); i++ {
		}
		unit := durationUnit(s[:i])
		if unit == 0 {
			return 0, false
		}
		s = s[i:]
		if v > maxD/unit {
			return 0, false
		}
		v *= unit
		if f > 0 {
			v += uint64(float64(f) * (float64(unit) / scale))
			if v > maxD {
				return 0, false
			}
		}
		d += v
		if d > maxD {
			return 0, false
		}
	}
	if neg {
		return -time.Duration(d), true
	}
	if d > maxD-1 {
		return 0, false
	}
	return time.Duration(d), true
}

// durationUnit is the length of a time.ParseDuration unit, or 0.
func durationUnit(u string) uint64 {
	switch u {
	case "ns":
		return uint64(time.Nanosecond)
	case "us", "\u00b5s", "\u03bcs": // U+00B5 micro sign, U+03BC Greek mu
		return uint64(time.Microsecond)
	case "ms":
		return uint64(time.Millisecond)
	case "s":
		return uint64(time.Second)
	case "m":
		return uint64(time.Minute)
	case "h":
		return uint64(time.Hour)
	}
	return 0
}

// TokenArgs is a parsed token command line:
// [TENANT] [--min-valid DURATION] [-H | --curl-config | --json | --env [--csh | --sh]].
type TokenArgs struct {
	Tenant   string
	MinValid time.Duration // -1: the agent's default
	// Format is how the token is printed: FormatPlain, FormatHeader or
	// FormatCurlConfig; JSON and Env are tokencli's.
	Format    Format
	JSON, Env bool
	Csh, Sh   bool // --env's syntax, when given
}

// Format is a way of printing the token that tapis-token answers itself.
type Format int

const (
	FormatPlain      Format = iota // the token and a newline
	FormatHeader                   // "X-Tapis-Token: <token>", for curl -H @file
	FormatCurlConfig               // header = "X-Tapis-Token: <token>", for curl -K file
)

// ParseTokenArgs parses a token command line.
func ParseTokenArgs(args []string) (*TokenArgs, error) {
	ta := &TokenArgs{MinValid: -1}
	minValid := ""
	var header, curlConfig bool
	pos, err := ParseArgs(args,
		BoolFlag("-H", &header), BoolFlag("--header", &header), BoolFlag("--curl-config", &curlConfig),
		BoolFlag("--json", &ta.JSON), BoolFlag("--env", &ta.Env), BoolFlag("--csh", &ta.Csh), BoolFlag("--sh", &ta.Sh),
		ValueFlag("--min-valid", &minValid))
	if err != nil {
		return nil, err
	}
	if ta.Tenant, err = OneTenant(pos); err != nil {
		return nil, err
	}
	if n := btoi(header) + btoi(curlConfig) + btoi(ta.JSON) + btoi(ta.Env); n > 1 {
		return nil, Usage("-H, --curl-config, --json and --env exclude each other")
	}
	switch {
	case header:
		ta.Format = FormatHeader
	case curlConfig:
		ta.Format = FormatCurlConfig
	}
	if (ta.Csh || ta.Sh) && !ta.Env {
		return nil, Usage("--csh and --sh choose the syntax of --env; add --env")
	}
	if ta.Csh && ta.Sh {
		return nil, Usage("--csh and --sh exclude each other: choose the syntax of your shell")
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

// WritePlain prints an access token in format f. The header forms are
// for curl to read from a file (-H @file, -K file), which keeps the token
// out of curl's argument list: every user of the node can read a
// process's command line in /proc, but not its files or environment.
func WritePlain(w io.Writer, token string, f Format) error {
	var line string
	switch f {
	case FormatHeader:
		line = "X-Tapis-Token: " + token + "\n"
	case FormatCurlConfig:
		// curl's config syntax: a quoted value takes backslash escapes.
		line = "header = \"X-Tapis-Token: " + curlQuoted(token) + "\"\n"
	default:
		line = token + "\n"
	}
	_, err := io.WriteString(w, line) // not fmt: its printer costs a cold start more
	return err
}

// curlQuoted escapes s for a double-quoted value of a curl config file.
// A JWT holds no character that needs it; a token that did would still
// reach curl intact.
func curlQuoted(s string) string {
	if !strings.ContainsAny(s, "\\\"\n\r\t") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case '\t':
			b.WriteString("\\t")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
