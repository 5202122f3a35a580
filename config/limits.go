package config

import (
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
)

// Limits on a configuration file, checked before it is decoded: the TOML
// decoder's memory grows with the square of the nesting depth, so that a
// few hundred kilobytes of nested inline tables or dotted keys would take
// gigabytes. A tapis-agent config nests four deep at most
// (tenants.NAME.password_command = [ … ]).
const (
	// MaxSize is the largest config file accepted.
	MaxSize = 1 << 20
	// MaxNesting is the deepest nesting accepted: open arrays and inline
	// tables, plus the pieces of a dotted key or table header.
	MaxNesting = 16
	// MaxItems is the most keys, tables and array items accepted: the
	// decoder takes about a kilobyte for each, and a config of a thousand
	// tenants with a base_url and a username each holds three thousand.
	MaxItems = 10000
	// LoadTimeout bounds Load: reading the file and the key and CA files
	// it names, on a network file system that may hang.
	LoadTimeout = 10 * time.Second
)

// MaxTenants is the most tenants a config may hold: Tapis has a few dozen,
// an agent serves a thousand (make bench measures it), and each is a
// session, a line of status and, with password_command, a process at
// start.
const MaxTenants = 1000

// maxErrors bounds the errors reported for one file: a file of a hundred
// thousand mistakes is the wrong file, and listing them all would take
// megabytes of status and log.
const maxErrors = 20

// maxString bounds the string values of the file; one longer is surely a
// mistake, and would end up in every status and log line.
var maxString = map[string]int{
	"default_tenant":   maxTenantName,
	"username":         256,
	"client_id":        256,
	"base_url":         2048,
	"log_level":        16,
	"token_format":     32,
	"refresh_margin":   64,
	"client_key_file":  4096,
	"token_file":       4096,
	"ca_file":          4096,
	"password_command": 4096,
}

// checkShape refuses data that is too large or nests too deep to decode.
func checkShape(path string, data []byte) error {
	if len(data) > MaxSize {
		return &Error{File: path, Msg: fmt.Sprintf("the file is %s, more than the %s a config may hold; is it the right file?",
			safefile.SizeAbove(int64(len(data)), MaxSize), safefile.Size(MaxSize))}
	}
	deep, crowded := scanShape(data)
	if deep > 0 {
		return &Error{File: path, Line: deep, Msg: fmt.Sprintf("tables, arrays or dotted keys nest more than %d deep here; a tapis-agent config needs 4 at most",
			MaxNesting)}
	}
	if crowded > 0 {
		return &Error{File: path, Line: crowded, Msg: fmt.Sprintf("the file holds more than %d keys, tables and array items by here; a tapis-agent config needs a few hundred; is it the right file?",
			MaxItems)}
	}
	return nil
}

// scanShape returns the line where data nests more than MaxNesting deep,
// or 0: open arrays and inline tables, plus the dots of the dotted key (or
// number) being read; and the line where it holds more than MaxItems
// keys, tables and array items, or 0. It knows just enough TOML to skip
// strings and comments, and runs in one pass whatever the input.
func scanShape(data []byte) (deep, crowded int) {
	depth, dots, n, items := 0, 0, 1, 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			n++
			dots = 0
		case c == '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			if i+2 < len(data) && data[i+1] == c && data[i+2] == c {
				var lines int
				i, lines = skipMultiline(data, i+3, c)
				n += lines
				continue
			}
			for i++; i < len(data) && data[i] != c && data[i] != '\n'; i++ {
				if c == '"' && data[i] == '\\' {
					i++
				}
			}
			if i < len(data) && data[i] == '\n' {
				n++
				dots = 0
			}
		case c == '.':
			dots++
		case c == '[' || c == '{':
			depth++
			dots = 0
			items++
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
			dots = 0
		case c == '=' || c == ',':
			dots = 0
			items++
		}
		if depth+dots > MaxNesting {
			return n, 0
		}
		if items > MaxItems && crowded == 0 {
			crowded = n
		}
	}
	return 0, crowded
}

// skipMultiline returns the index of the last quote closing the multi-line
// string whose content starts at data[i], quoted with q, and the newlines
// it spans.
func skipMultiline(data []byte, i int, q byte) (end, lines int) {
	for ; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			lines++
		case q == '"' && data[i] == '\\':
			if i+1 < len(data) && data[i+1] == '\n' {
				lines++
			}
			i++
		case i+2 < len(data) && data[i] == q && data[i+1] == q && data[i+2] == q:
			// Up to two more quotes may end the string's content.
			i += 2
			for k := 0; k < 2 && i+1 < len(data) && data[i+1] == q; k++ {
				i++
			}
			return i, lines
		}
	}
	return i, lines
}

// checkLength reports a string longer than its key allows.
func (p *parser) checkLength(path []string, s string) bool {
	limit, ok := maxString[path[len(path)-1]]
	if !ok || len(s) <= limit {
		return true
	}
	p.errorf(path, "is %d bytes long, more than the %d allowed; is it the right value?", len(s), limit)
	return false
}
