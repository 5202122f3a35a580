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
	// LoadTimeout bounds Load: reading the file and the key and CA files
	// it names, on a network file system that may hang.
	LoadTimeout = 10 * time.Second
)

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
			safefile.Size(int64(len(data))), safefile.Size(MaxSize))}
	}
	if line := tooDeep(data); line > 0 {
		return &Error{File: path, Line: line, Msg: fmt.Sprintf("tables, arrays or dotted keys nest more than %d deep here; a tapis-agent config needs 4 at most",
			MaxNesting)}
	}
	return nil
}

// tooDeep returns the line where data nests more than MaxNesting deep, or
// 0: open arrays and inline tables, plus the dots of the dotted key (or
// number) being read. It knows just enough TOML to skip strings and
// comments, and runs in one pass whatever the input.
func tooDeep(data []byte) (line int) {
	depth, dots, n := 0, 0, 1
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
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
			dots = 0
		case c == '=' || c == ',':
			dots = 0
		}
		if depth+dots > MaxNesting {
			return n
		}
	}
	return 0
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
