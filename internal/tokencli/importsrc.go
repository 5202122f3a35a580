package tokencli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// importSource is what `import --from-env` or `--from-file` found: the
// request for the agent, and what to tell the user about it afterwards.
type importSource struct {
	req  ipc.ImportRequest
	what string // the source in the user's words, e.g. "agavepy's cache ~/.agave/current"
	// path is the file read, "" for the environment; raw its content.
	path string
	raw  []byte
	// plaintext names the secrets beyond access tokens the source holds
	// in plain text and the agent now holds ("the refresh token"); the
	// user is offered to remove them (remove names their JSON keys).
	plaintext []string
	remove    []string
	// envSecrets are the variables holding a refresh token or password.
	envSecrets []string
}

// maxImportFile bounds the files --from-file reads; the real ones are a
// few hundred bytes.
const maxImportFile = 1 << 20

// The environment variables of AgavePy (its "Environment Variables"
// table), each with the shorter spelling agavepy's code also reads.
var agaveEnv = struct{ baseURL, token, refresh, key, secret, username, password []string }{
	baseURL:  []string{"TAPIS_BASE_URL"},
	token:    []string{"TAPIS_API_TOKEN", "TAPIS_TOKEN"},
	refresh:  []string{"TAPIS_API_REFRESH_TOKEN", "TAPIS_REFRESH_TOKEN"},
	key:      []string{"TAPIS_API_KEY"},
	secret:   []string{"TAPIS_API_SECRET"},
	username: []string{"TAPIS_API_USERNAME", "TAPIS_USERNAME"},
	password: []string{"TAPIS_API_PASSWORD", "TAPIS_PASSWORD"},
}

// envHint lists the combinations --from-env understands.
const envHint = "set TAPIS_API_TOKEN (an access token), or TAPIS_API_REFRESH_TOKEN with TAPIS_API_KEY and TAPIS_API_SECRET (its OAuth client), " +
	"or TAPIS_API_USERNAME and TAPIS_API_PASSWORD (with TAPIS_API_KEY and TAPIS_API_SECRET for a client of yours); TAPIS_BASE_URL names the tenant"

// fromEnv reads AgavePy's TAPIS_* variables through lookup, in the
// combinations AgavePy's table lists: a refresh token with its client
// (key and secret) gives a full session, a username and password a login
// (through the client when key and secret are set), an access token alone
// an access-only session. The most capable combination set wins.
func fromEnv(tenant string, lookup func(string) (string, bool)) (*importSource, error) {
	bad := func(format string, args ...any) error {
		return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: fmt.Sprintf(format, args...), Hint: envHint}
	}
	var conflict error
	get := func(names []string) (string, string) {
		val, from := "", ""
		for _, n := range names {
			v, ok := lookup(n)
			v = strings.TrimSpace(v)
			if !ok || v == "" {
				continue
			}
			if from != "" && v != val && conflict == nil {
				conflict = bad("%s and %s are both set, to different values: unset one", from, n)
			}
			if from == "" {
				val, from = v, n
			}
		}
		return val, from
	}
	baseURL, _ := get(agaveEnv.baseURL)
	token, _ := get(agaveEnv.token)
	refresh, refreshVar := get(agaveEnv.refresh)
	key, keyVar := get(agaveEnv.key)
	secret, secretVar := get(agaveEnv.secret)
	username, userVar := get(agaveEnv.username)
	password, passwordVar := get(agaveEnv.password)
	if conflict != nil {
		return nil, conflict
	}
	switch {
	case key != "" && secret == "":
		return nil, bad("%s is set without TAPIS_API_SECRET: an OAuth client needs both", keyVar)
	case secret != "" && key == "":
		return nil, bad("%s is set without TAPIS_API_KEY: an OAuth client needs both", secretVar)
	case password != "" && username == "":
		return nil, bad("%s is set without TAPIS_API_USERNAME", passwordVar)
	}
	src := &importSource{what: "the environment (AgavePy's TAPIS_* variables)"}
	src.req = ipc.ImportRequest{Tenant: tenant, BaseURL: baseURL, Source: "environment", ClientID: key, ClientKey: secret}
	switch {
	case refresh != "":
		src.req.RefreshToken = refresh
		src.envSecrets = append(src.envSecrets, refreshVar)
	case password != "":
		src.req.Username, src.req.Password = username, password
		src.envSecrets = append(src.envSecrets, passwordVar)
	case token != "":
		src.req.AccessToken = token
		src.req.ClientID, src.req.ClientKey = "", ""
	case username != "":
		return nil, bad("%s is set without TAPIS_API_PASSWORD", userVar)
	default:
		return nil, bad("none of AgavePy's variables is set (TAPIS_API_TOKEN, TAPIS_API_REFRESH_TOKEN, TAPIS_API_USERNAME and TAPIS_API_PASSWORD)")
	}
	if err := checkV3(src.req, src.what); err != nil {
		return nil, err
	}
	return src, nil
}

// fileHint names what --from-file reads.
const fileHint = "--from-file reads agavepy's ~/.agave/current, DesignSafe's ~/.tapis_tokens.json or tapisv3-cli's ~/tapis/v3/configs/config.json"

// fromFile reads the credentials another tool left in path, the format
// told by the content: agavepy's and agave-cli's cache (~/.agave/current,
// one object or a list of one), DesignSafe's connect_tapis cache
// (~/.tapis_tokens.json) or tapisv3-cli's config. It changes nothing.
func fromFile(tenant, path string) (*importSource, error) {
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		var b []byte
		b, err = io.ReadAll(io.LimitReader(f, maxImportFile+1))
		if err == nil {
			if len(b) > maxImportFile {
				return nil, &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("%s is larger than %d bytes: not a token cache", path, maxImportFile), Hint: fileHint}
			}
			return parseImportFile(tenant, path, b)
		}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	return nil, &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("reading %s: %v", path, err),
		Hint: "check the path and that you may read the file: ls -l " + path}
}

// parseImportFile detects the format of b, the content of path.
func parseImportFile(tenant, path string, b []byte) (*importSource, error) {
	bad := func(format string, args ...any) error {
		return &cmdline.Failure{Code: cmdline.ExitError, Msg: path + ": " + fmt.Sprintf(format, args...), Hint: fileHint}
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, bad("not a file tapis-token can import (not JSON)")
	}
	if list, ok := v.([]any); ok {
		// agavepy also writes its cache as a list.
		if len(list) != 1 {
			return nil, bad("a list of %d entries; tapis-token imports a cache that holds one", len(list))
		}
		v = list[0]
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bad("not a file tapis-token can import (JSON, but not an object)")
	}
	str := func(k string) string {
		s, _ := obj[k].(string)
		return strings.TrimSpace(s)
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := obj[k]; ok {
				return true
			}
		}
		return false
	}
	src := &importSource{path: path}
	src.req = ipc.ImportRequest{Tenant: tenant, Source: path}
	switch {
	case has("profiles"):
		src.what = "tapisv3-cli's config " + path
		if err := tapisV3CLI(src, obj); err != nil {
			return nil, bad("%v", err)
		}
	case has("sessions"):
		return nil, bad("agavepy's sessions file; import its current session instead: tapis-token import %s --from-file %s", tenant, filepath.Join(filepath.Dir(path), "current"))
	case has("baseurl", "apikey", "apisecret", "refresh_token", "tenantid"):
		src.what = "agavepy's cache " + path
		src.req.BaseURL = str("baseurl")
		if rt := str("refresh_token"); rt != "" {
			src.req.RefreshToken = rt
			src.req.ClientID, src.req.ClientKey = str("apikey"), str("apisecret")
			src.plaintext, src.remove = []string{"the refresh token"}, []string{"refresh_token"}
		} else {
			src.req.AccessToken = str("access_token")
		}
	case has("access_token"):
		src.what = "DesignSafe's token cache " + path
		src.req.AccessToken = str("access_token")
	default:
		return nil, bad("not a file tapis-token can import (no token in it)")
	}
	if src.req.AccessToken == "" && src.req.RefreshToken == "" {
		return nil, bad("%s holds no token", src.what)
	}
	if err := checkV3(src.req, src.what); err != nil {
		return nil, err
	}
	src.raw = b
	return src, nil
}

// tapisV3CLI fills src from tapisv3-cli's config obj: the token its
// `tapis` package uses, profiles[username == current_user].auths[base_url
// == current_base_url].jwt, else the profile's top-level jwt.
func tapisV3CLI(src *importSource, obj map[string]any) error {
	profiles, _ := obj["profiles"].([]any)
	user, _ := obj["current_user"].(string)
	var prof map[string]any
	for _, p := range profiles {
		m, _ := p.(map[string]any)
		if u, _ := m["username"].(string); m != nil && (u == user || user == "" && len(profiles) == 1) {
			prof = m
			break
		}
	}
	if prof == nil {
		return fmt.Errorf("tapisv3-cli's config has no profile for its current user %q", user)
	}
	base, _ := prof["current_base_url"].(string)
	if base == "" {
		base, _ = prof["base_url"].(string)
	}
	auths, _ := prof["auths"].([]any)
	for _, a := range auths {
		m, _ := a.(map[string]any)
		if b, _ := m["base_url"].(string); m != nil && b == base {
			src.req.AccessToken, _ = m["jwt"].(string)
		}
	}
	if src.req.AccessToken == "" {
		src.req.AccessToken, _ = prof["jwt"].(string)
	}
	src.req.BaseURL = base
	if src.req.AccessToken == "" {
		return fmt.Errorf("tapisv3-cli's config holds no token for %s at %s", user, base)
	}
	return nil
}

// checkV3 refuses a request whose token is not a JWT: Tapis v2 (Agave)
// tokens are opaque strings, and v3 does not accept them. The agent checks
// JWTs further (type, expiry, tenant).
func checkV3(req ipc.ImportRequest, what string) error {
	tok := req.RefreshToken
	if tok == "" {
		tok = req.AccessToken
	}
	if tok == "" || strings.Count(tok, ".") == 2 {
		return nil
	}
	return &cmdline.Failure{Code: cmdline.ExitError,
		Msg:  what + " holds a token that is not a Tapis v3 token (a Tapis v2 / Agave token?): Tapis v3 does not accept it",
		Hint: "log in to the tenant instead: tapis-token login " + req.Tenant}
}

// removeFromFile deletes keys from the JSON object (or list of one
// object) in path, or in the file it links to, which must still hold
// want: the file the import read.
// It writes a temporary file beside it with the same mode and renames it
// over the original, so that a reader never sees half a file.
func removeFromFile(path string, want []byte, keys []string) error {
	// Rewrite the file a symlink points to: renaming over the link would
	// leave the secret in its target.
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, want) {
		return errors.New("the file changed since it was read; left as it is")
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	obj, _ := v.(map[string]any)
	if list, ok := v.([]any); ok && len(list) == 1 {
		obj, _ = list[0].(map[string]any)
	}
	if obj == nil {
		return errors.New("not a JSON object")
	}
	for _, k := range keys {
		delete(obj, k)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// importFrom runs `import TENANT --from-env` or `--from-file PATH`.
func importFrom(ctx context.Context, tenant string, env bool, path string, stderr io.Writer) error {
	var src *importSource
	var err error
	if env {
		src, err = fromEnv(tenant, os.LookupEnv)
	} else {
		src, err = fromFile(tenant, path)
	}
	if err != nil {
		return err
	}
	st, err := client().Import(ctx, &src.req)
	if err != nil {
		return err
	}
	what := "an access token"
	switch {
	case src.req.Password != "":
		what = "a login with the username and password"
	case src.req.RefreshToken != "":
		what = "a refresh token"
	}
	fmt.Fprintf(stderr, "tapis-token: imported %s from %s: %s is %s\n", what, src.what, st.Tenant, st.State)
	for _, v := range src.envSecrets {
		fmt.Fprintf(stderr, "tapis-token: the agent holds it now; unset %s so that it stays out of the environment of what you run\n", v)
	}
	if len(src.remove) > 0 {
		offerRemoval(src, stderr)
	}
	return nil
}

// offerRemoval asks on the terminal whether to remove the secrets just
// imported from the plaintext file they came from, and does so only on a
// yes. Without a terminal it only says they are still there.
func offerRemoval(src *importSource, stderr io.Writer) {
	what := strings.Join(src.plaintext, " and ")
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "tapis-token: %s still holds %s in plain text; remove it once no other tool needs it (on a terminal, tapis-token offers to)\n", src.path, what)
		return
	}
	defer tty.Close()
	fmt.Fprintf(tty, "%s still holds %s in plain text; the agent holds it now. Remove it from the file? [y/N] ", src.path, what)
	line, _ := bufio.NewReader(tty).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		fmt.Fprintf(stderr, "tapis-token: left %s as it is\n", src.path)
		return
	}
	if err := removeFromFile(src.path, src.raw, src.remove); err != nil {
		fmt.Fprintf(stderr, "tapis-token: could not remove %s from %s: %v\n", what, src.path, err)
		return
	}
	fmt.Fprintf(stderr, "tapis-token: removed %s from %s\n", what, src.path)
}
