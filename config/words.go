package config

import (
	"errors"
	"strings"
)

// splitWords splits a command line into words the way a POSIX shell would
// for the simple cases, without running or expanding anything: blanks
// separate words; '…' is literal; "…" is literal except for \" \\ \$ and \`;
// a backslash outside quotes escapes the next character. Unquoted shell
// syntax (| & ; < > ( ) $ `) is an error rather than a literal argument,
// because a user who writes it expects a shell. The errors never quote s,
// which may hold a secret.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("ends with a lone backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`", c) >= 0:
			return nil, errors.New("contains unquoted shell syntax " + strconvQuoteByte(c) +
				"; set password_command_shell = true to run it with /bin/sh, or quote the character")
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func strconvQuoteByte(c byte) string { return "'" + string(c) + "'" }
