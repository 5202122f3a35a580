package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/internal/safefile"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// maxTokenFile bounds the token file the agent reads back (tapisv3-cli's
// config, which it updates): the CLI's own is a few kilobytes.
const maxTokenFile = 1 << 20

// sinkFile is where a tenant's access token is kept on disk for other
// tools (`token_file`), in one of config.TokenFormats.
type sinkFile struct {
	path   string
	format string
}

func sinkOf(t *config.Tenant) sinkFile {
	if t == nil || t.TokenFile == "" {
		return sinkFile{}
	}
	f := t.TokenFormat
	if f == "" {
		f = config.FormatConnectTapis
	}
	return sinkFile{path: t.TokenFile, format: f}
}

// sinkToken is what a token file holds.
type sinkToken struct {
	baseURL  string
	username string
	access   string
	exp      time.Time // the JWT's exp
}

// write rewrites the file atomically with tok.
func (f sinkFile) write(tok sinkToken) error {
	var data []byte
	var err error
	switch f.format {
	case config.FormatConnectTapis:
		data, err = connectTapis(tok)
	case config.FormatTapisV3CLI:
		data, err = tapisV3CLI(f.path, tok)
	case config.FormatTapisCmd:
		data = []byte("BASE_URL=" + tok.baseURL + "\nUSER_JWT=" + tok.access + "\n")
	default:
		err = fmt.Errorf("unknown token_format %q", f.format)
	}
	if err != nil {
		return err
	}
	return writeAtomic(f.path, data)
}

// remove deletes the file; a file that is already gone is no error. For
// the tapisv3-cli format only the tenant's profile entry would be ours,
// but the file is the CLI's own config: it is left in place and only the
// token is taken out.
func (f sinkFile) remove(tok sinkToken) error {
	if f.format == config.FormatTapisV3CLI {
		data, err := tapisV3CLIWithout(f.path, tok)
		if err != nil || data == nil {
			return err
		}
		return writeAtomic(f.path, data)
	}
	fi, err := os.Lstat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is %s, not a token file the agent wrote; leaving it", f.path, safefile.Kind(fi.Mode()))
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sinkWarning is the status warning for the token file at path that
// could not be written, saying what to do: a file the agent refuses to
// replace is to be moved away, a place it may not write to made writable.
func sinkWarning(path string, err error) string {
	why := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		why = pe.Err.Error() // "permission denied", without the system call
	}
	fix := "make its directory writable"
	if errors.Is(err, safefile.ErrNotRegular) || errors.Is(err, safefile.ErrTooLarge) || errors.Is(err, errForeign) {
		fix = "move that file away"
	}
	return fmt.Sprintf("token_file %s: cannot write it (%s); %s, or change token_file in the config; "+
		"the agent keeps the session and retries at the next refresh", path, why, fix)
}

// connectTapis renders DesignSafe's ~/.tapis_tokens.json exactly as
// Python's json.dump writes it: ", " and ": " separators, expires_at the
// isoformat of the JWT exp in UTC, whole seconds, "+00:00" (older readers
// crash on "Z" or a naive time; tapis-protocol.md §8.1).
func connectTapis(tok sinkToken) ([]byte, error) {
	at, err := json.Marshal(tok.access)
	if err != nil {
		return nil, err
	}
	exp := tok.exp.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05") + "+00:00"
	return []byte(`{"access_token": ` + string(at) + `, "expires_at": "` + exp + `"}`), nil
}

// tapisV3CLI updates tapisv3-cli's config.json (tapis-protocol.md §8.2):
// the user's profile gets the token for the tenant's base URL and moves
// to the front; `output`, other profiles and unknown keys are kept.
func tapisV3CLI(path string, tok sinkToken) ([]byte, error) {
	top, profiles, err := readV3CLI(path)
	if err != nil {
		return nil, err
	}
	var mine map[string]any
	rest := make([]any, 0, len(profiles))
	for _, p := range profiles {
		if m, ok := p.(map[string]any); ok && mine == nil && m["username"] == tok.username {
			mine = m
			continue
		}
		rest = append(rest, p)
	}
	if mine == nil {
		mine = map[string]any{"username": tok.username}
	}
	auths := []any{map[string]any{"base_url": tok.baseURL, "jwt": tok.access}}
	if old, ok := mine["auths"].([]any); ok {
		for _, a := range old {
			if m, ok := a.(map[string]any); ok && m["base_url"] == tok.baseURL {
				continue
			}
			auths = append(auths, a)
		}
	}
	mine["auths"] = auths
	mine["current_base_url"] = tok.baseURL
	// The tapiscustom and tapisetl packages read these two.
	mine["base_url"] = tok.baseURL
	mine["jwt"] = tok.access
	top["profiles"] = append([]any{mine}, rest...)
	top["current_user"] = tok.username
	if _, ok := top["current_package"]; !ok {
		top["current_package"] = "tapis"
	}
	if _, ok := top["output"]; !ok {
		top["output"] = map[string]any{"type": "table", "dir": nil, "settings": map[string]any{
			"max_columns": 8, "max_chars_per_column": 16,
			"never_truncate": []any{"id", "uuid"}, "first_column": "id"}}
	}
	return marshalIndent(top)
}

// tapisV3CLIWithout takes the token of tok's base URL out of the user's
// profile. It returns nil data when there is nothing to change.
func tapisV3CLIWithout(path string, tok sinkToken) ([]byte, error) {
	top, profiles, err := readV3CLI(path)
	if err != nil || profiles == nil {
		return nil, err
	}
	changed := false
	for _, p := range profiles {
		m, ok := p.(map[string]any)
		if !ok || m["username"] != tok.username {
			continue
		}
		if old, ok := m["auths"].([]any); ok {
			kept := []any{}
			for _, a := range old {
				if am, ok := a.(map[string]any); ok && am["base_url"] == tok.baseURL {
					changed = true
					continue
				}
				kept = append(kept, a)
			}
			m["auths"] = kept
		}
		if m["base_url"] == tok.baseURL {
			delete(m, "jwt")
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	return marshalIndent(top)
}

// errForeign is wrapped by the errors for a file at a token_file path
// that holds something else than what the agent would update in it.
var errForeign = errors.New("not overwriting it")

// readV3CLI reads an existing tapisv3-cli config; a missing file is an
// empty one. A file that is not the CLI's JSON is refused rather than
// overwritten: it is the user's.
func readV3CLI(path string) (map[string]any, []any, error) {
	top := map[string]any{}
	data, err := safefile.Read(path, safefile.Options{Max: maxTokenFile, NoFollow: true})
	if errors.Is(err, fs.ErrNotExist) {
		return top, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return nil, nil, fmt.Errorf("the file is not a tapisv3-cli config (not a JSON object); %w", errForeign)
	}
	profiles, ok := top["profiles"].([]any)
	if !ok && top["profiles"] != nil {
		return nil, nil, fmt.Errorf(`the file's "profiles" is not a list; %w`, errForeign)
	}
	return top, profiles, nil
}

// marshalIndent writes JSON as the CLI does (indent=2), keeping <, > and &.
func marshalIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, mode 0600, synced, then renamed over path, so a reader sees
// the old token or the new one, never half of one. A missing directory is
// made, mode 0700, as the tool that reads the file would (tapisv3-cli's
// ~/tapis/v3/configs, say). Anything but a regular file at path (a
// symlink, a named pipe, a directory) is refused: it is not the agent's to
// replace.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, %w", path, safefile.Kind(fi.Mode()), safefile.ErrNotRegular)
	}
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	removeStaleTemps(path)
	// Make the rename durable; a directory that cannot be synced is no
	// reason to report the token as unwritten.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// tempHost is this host's name as it goes into the names of temporary
// files: agents on other hosts may write the same token file on a shared
// home, and must never take this one's temporaries for orphans.
var tempHost = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, h)
	if h == "" {
		h = "localhost"
	}
	return h
})

// tempPrefix is how the names of path's temporary files written by this
// process start: .NAME.tmp.HOST.PID.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".tmp." + tempHost() + "." + strconv.Itoa(os.Getpid()) + "."
}

// removeStaleTemps removes the temporary files of path that a process of
// this host killed mid-write (kill -9, power loss) left beside it: those of
// a process that is gone, and this process's own (its writes of one file
// are serialised, so any that remain after a rename are orphans). Those of
// other hosts, and of other live processes, are theirs.
func removeStaleTemps(path string) {
	hostPrefix := "." + filepath.Base(path) + ".tmp." + tempHost() + "."
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(hostPrefix)+"*"))
	for _, m := range matches {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(m), hostPrefix), ".")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.Remove(m)
		}
	}
}

// globEscape quotes the metacharacters of filepath.Match in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jwtExpiry returns the exp claim of token, or fallback.
func jwtExpiry(token string, fallback time.Time) time.Time {
	if c, err := jwt.Decode(token); err == nil {
		if exp, ok := c.Expiry(); ok {
			return exp
		}
	}
	return fallback
}
