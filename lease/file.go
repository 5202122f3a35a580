// Package lease is the lease file: the access token that tapis-agent keeps
// on the shared home for one batch job (`tapis-token lease`), where the job
// finds it, its format, and how a job reads it when no agent answers.
//
// A lease file is a shell-style list of variables, one per line, that a
// job script may also source:
//
//	# tapis-agent lease of job 1234; rewritten before the token expires
//	TAPIS_TENANT=designsafe
//	TAPIS_BASE_URL=https://designsafe.tapis.io
//	TAPIS_USERNAME=jdoe
//	TAPIS_TOKEN=eyJ…
//	TAPIS_TOKEN_EXPIRES_AT=1765000000
//	TAPIS_LEASE_MIN_VALID=3600
//
// Values are written as internal/shell quotes them. It never holds a
// refresh token. tapis-token links this package, so it keeps to the
// standard library's basics: no fmt, no encoding/json, no time parsing.
package lease

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/shell"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// MaxFileBytes bounds a lease file: a reader refuses a larger one.
const MaxFileBytes = 64 << 10

// FileEnv names the environment variable through which a job names its
// lease file.
const FileEnv = "TAPIS_TOKEN_FILE"

// Token is what a lease file holds.
type Token struct {
	ipc.TokenResponse // ExpiresIn is not stored: readers compute it
	// MinValid is the validity the agent keeps the file's token above
	// while the job runs.
	MinValid time.Duration
}

// Append appends the lease file of job holding t to b. It refuses values
// that would not read back as written (a newline, say).
func Append(b []byte, job string, t *Token) ([]byte, error) {
	b = append(b, "# tapis-agent lease of job "...)
	b = append(b, job...)
	b = append(b, "; rewritten before the token expires\n"...)
	for _, kv := range [...][2]string{
		{"TAPIS_TENANT", t.Tenant},
		{"TAPIS_BASE_URL", t.BaseURL},
		{"TAPIS_USERNAME", t.Username},
		{"TAPIS_TOKEN", t.AccessToken},
		{"TAPIS_TOKEN_EXPIRES_AT", strconv.FormatInt(t.ExpiresAt.Unix(), 10)},
		{"TAPIS_LEASE_MIN_VALID", strconv.FormatInt(int64(t.MinValid/time.Second), 10)},
	} {
		if strings.ContainsAny(kv[1], "\n\r\x00") {
			return b, errors.New("lease file: " + kv[0] + " holds a line break or NUL")
		}
		b = append(b, kv[0]+"="+shell.Quote(kv[1])+"\n"...)
	}
	return b, nil
}

// Parse reads a lease file. It refuses a file without a token, a tenant
// and an expiry, and any line it does not understand: a file that is not
// a lease file is not one to trust.
func Parse(data []byte) (*Token, error) {
	if len(data) > MaxFileBytes {
		return nil, errors.New("over " + strconv.Itoa(MaxFileBytes) + " bytes; not a lease file")
	}
	t := &Token{}
	var exp, minValid string
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		val, vok := unquote(raw)
		if !ok || !vok {
			return nil, errors.New("line " + strconv.Itoa(i+1) + " is not NAME=VALUE; not a lease file")
		}
		switch key {
		case "TAPIS_TENANT":
			t.Tenant = val
		case "TAPIS_BASE_URL":
			t.BaseURL = val
		case "TAPIS_USERNAME":
			t.Username = val
		case "TAPIS_TOKEN":
			t.AccessToken = val
		case "TAPIS_TOKEN_EXPIRES_AT":
			exp = val
		case "TAPIS_LEASE_MIN_VALID":
			minValid = val
		default:
			return nil, errors.New("line " + strconv.Itoa(i+1) + ": unknown name " + strconv.Quote(key) + "; not a lease file")
		}
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return nil, errors.New("no valid TAPIS_TOKEN_EXPIRES_AT; not a lease file")
	}
	t.ExpiresAt = time.Unix(sec, 0).UTC()
	if t.AccessToken == "" || t.Tenant == "" {
		return nil, errors.New("no TAPIS_TOKEN or TAPIS_TENANT; not a lease file")
	}
	if minValid != "" {
		n, err := strconv.ParseInt(minValid, 10, 64)
		if err != nil || n < 0 || n > 1<<32 {
			return nil, errors.New("TAPIS_LEASE_MIN_VALID is not a number of seconds; not a lease file")
		}
		t.MinValid = time.Duration(n) * time.Second
	}
	return t, nil
}

// unquote undoes shell.Quote: a word of safe characters, or single-quoted
// pieces joined by \' for each quote.
func unquote(s string) (string, bool) {
	if !strings.HasPrefix(s, "'") {
		return s, s == shell.Quote(s)
	}
	var b strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, `\'`):
			b.WriteByte('\'')
			s = s[2:]
		case s[0] == '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(s[1 : 1+end])
			s = s[2+end:]
		default:
			return "", false
		}
	}
	return b.String(), true
}

// ValidJob reports whether job can name a lease: a Slurm job id (1234, or
// 1234_7 for an array task), or with --until any scheduler's id of
// letters, digits and ._-+ (1234.pbs01), at most 128 bytes, not starting
// with a dot. It is also a directory name under Dir.
func ValidJob(job string) bool {
	if job == "" || len(job) > 128 || job[0] == '.' || job[0] == '-' {
		return false
	}
	for i := 0; i < len(job); i++ {
		c := job[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}

// ValidSlurmJob reports whether job is a Slurm job id the agent can ask
// about: digits, optionally _ and the digits of an array task. squeue
// reads "12abc" as job 12, so anything else is refused before it gets
// there.
func ValidSlurmJob(job string) bool {
	id, task, isTask := strings.Cut(job, "_")
	return digits(id) && (!isTask || digits(task))
}

func digits(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}

// Dir is where lease files live by default, on the home directory that
// login and compute nodes share: $XDG_STATE_HOME/tapis-agent/jobs, else
// ~/.local/state/tapis-agent/jobs.
func Dir() string {
	return filepath.Join(ipc.StateDir(), "jobs")
}

// DefaultPath is the lease file of job for tenant under Dir.
func DefaultPath(job, tenant string) string {
	return filepath.Join(Dir(), job, tenant+".token")
}
