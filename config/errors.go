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

// suggest returns the candidate closest to key, or "" when none is close:
// the same letters ignoring case, '_' and '-', or an edit distance of at
// most 2 (or a third of the length for long keys).
func suggest(key string, candidates []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3
	if n := len(key) / 3; n > bestDist {
		bestDist = n
	}
	for _, c := range candidates {
		if norm(c) == norm(key) {
			return c
		}
		if d := editDistance(key, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not worth it: nothing that long is a typo of a key
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
