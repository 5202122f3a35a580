// Package shell writes strings as words of the sh and csh languages, for
// the commands that tapis-agent prints for eval.
package shell

import "strings"

// Quote returns s as one sh or csh word. A non-empty s of safe characters
// only (letters, digits and /._-+,:@%=) comes back unchanged; anything else
// is put in single quotes, which keep $, \ and the rest as they are, and
// each single quote of s is written as
//
//	'\''
//
// which closes the quotes, adds an escaped quote and opens them again. A
// newline in s is beyond csh, which ends a quoted word there.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, unsafe) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// unsafe reports whether r may mean something to a shell.
func unsafe(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%=", r))
}

// IsCsh reports whether the login shell loginShell ($SHELL) is a csh: csh
// or tcsh, as ssh-agent decides which syntax to print.
func IsCsh(loginShell string) bool { return strings.HasSuffix(loginShell, "csh") }
