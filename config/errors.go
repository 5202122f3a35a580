package config

import (
	"strconv"
	"strings"
)

// Error is a problem with a configuration file. It is comparable by fields
// and safe to share between goroutines. Its message never holds a secret:
// neither a client key nor a password command's arguments.
type Error struct {
	// File is the configuration file's path; "" when parsing bytes that
	// came from nowhere.
	File string
	// Line is the 1-based line of the problem, 0 when unknown.
	Line int
	// Key is the dotted key at fault, e.g. "tenants.ds.base_url"; "" for
	// syntax errors and file-level problems.
	Key string
	// Msg says what is wrong and what would be valid.
	Msg string

	err error // the cause, e.g. a toml.ParseError or an *fs.PathError
}

// Error formats e as "file:line: key: msg", leaving out the parts that are
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// keyString formats a key path the TOML way, quoting pieces that are not
// bare keys.
func keyString(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		if isBareKey(p) {
			parts[i] = p
		} else {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, ".")
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isBareRune(r) {
			return false
		}
	}
	return true
}

func isBareRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}
