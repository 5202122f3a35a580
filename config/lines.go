package config

import (
	"strconv"
	"strings"
)

// keyLines maps key paths to the line where they are defined. The TOML
// library does not export key positions, so after a successful parse the
// file is scanned again with a deliberately small reader of table headers
// and `key =` lines. Keys it cannot place (inside inline tables, say) fall
// back to the line of their closest placed parent.
type keyLines map[string]int

func joinPath(path []string) string { return strings.Join(path, "\x00") }

func scanKeyLines(data []byte) keyLines {
	lines := keyLines{}
	var (
		table []string
		v     valueScanner
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if v.open() {
			// A line inside a multi-line string, array or inline table
			// defines no key of its own.
			v.scan(line)
			continue
		}
		s := strings.TrimLeft(line, " \t")
		switch {
		case strings.HasPrefix(s, "["):
			s = strings.TrimPrefix(strings.TrimPrefix(s, "["), "[")
			if path, _, ok := parseKeyPath(s); ok {
				table = path
				lines.add(path, n)
			}
		default:
			path, rest, ok := parseKeyPath(s)
			if !ok || !strings.HasPrefix(rest, "=") {
				continue
			}
			full := append(append([]string{}, table...), path...)
			lines.add(full, n)
			v.scan(rest[1:])
		}
	}
	return lines
}

// valueScanner follows a value across lines: just enough of TOML's
// lexical rules to know whether the next line is still part of it. Quotes
// and brackets inside strings and comments do not count, so that three
// single quotes inside a basic string open no multi-line string.
type valueScanner struct {
	ml    string // the delimiter of the open multi-line string, """ or '''
	depth int    // open arrays and inline tables
}

// open reports whether a value continues on the next line.
func (v *valueScanner) open() bool { return v.ml != "" || v.depth > 0 }

// scan reads one line (or the rest of one, after `key =`) of a value.
func (v *valueScanner) scan(s string) {
	for i := 0; i < len(s); {
		if v.ml != "" {
			switch {
			case v.ml == `"""` && s[i] == '\\':
				i += 2 // an escape, perhaps of a quote
			case strings.HasPrefix(s[i:], v.ml):
				// Up to two more quotes may end the string's content.
				i += 3
				for k := 0; k < 2 && i < len(s) && s[i] == v.ml[0]; k++ {
					i++
				}
				v.ml = ""
			default:
				i++
			}
			continue
		}
		switch c := s[i]; {
		case c == '#':
			return // a comment runs to the end of the line
		case strings.HasPrefix(s[i:], `"""`), strings.HasPrefix(s[i:], `'''`):
			v.ml = s[i : i+3]
			i += 3
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return
			}
			i += end + 2
		case c == '[' || c == '{':
			v.depth++
			i++
		case c == ']' || c == '}':
			if v.depth > 0 {
				v.depth--
			}
			i++
		default:
			i++
		}
	}
}

// add records line n for path and for every prefix of it not yet seen, so
// that dotted keys place their implicit parent tables too.
func (l keyLines) add(path []string, n int) {
	for i := 1; i <= len(path); i++ {
		k := joinPath(path[:i])
		if _, ok := l[k]; !ok {
			l[k] = n
		}
	}
}

// line returns the line of path or of its longest placed prefix, 0 if none.
func (l keyLines) line(path []string) int {
	for i := len(path); i > 0; i-- {
		if n, ok := l[joinPath(path[:i])]; ok {
			return n
		}
	}
	return 0
}

// parseKeyPath reads a dotted TOML key at the start of s and returns its
// pieces and the rest of s after the key and any blanks.
func parseKeyPath(s string) (path []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		var piece string
		switch {
		case strings.HasPrefix(s, `"`):
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			u, err := strconv.Unquote(s[:end+1])
			if err != nil {
				u = s[1:end]
			}
			piece, s = u, s[end+1:]
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			piece, s = s[1:end+1], s[end+2:]
		default:
			end := 0
			for end < len(s) && isBareRune(rune(s[end])) {
				end++
			}
			if end == 0 {
				return nil, "", false
			}
			piece, s = s[:end], s[end:]
		}
		path = append(path, piece)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return path, s, true
		}
		s = s[1:]
	}
}
