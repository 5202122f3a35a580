package tokencli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// parseArgs splits args into positionals and the flags named in bools and
// values; flags may come before or after positionals, as --f v or --f=v.
func parseArgs(args []string, bools map[string]*bool, values map[string]*string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if b, ok := bools[name]; ok {
			if hasVal {
				return nil, usageErr("%s takes no value", name)
			}
			*b = true
			continue
		}
		v, ok := values[name]
		if !ok {
			return nil, usageErr("unknown flag %s", name)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, usageErr("%s %v", name, errNoValue)
			}
			i++
			val = args[i]
		}
		*v = val
	}
	return pos, nil
}

// oneTenant returns the optional single TENANT argument.
func oneTenant(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	}
	return "", usageErr("expected at most one TENANT, got %q", strings.Join(pos, " "))
}

// tenantOnly reads the command line of a command that takes only an
// optional TENANT.
func tenantOnly(args []string) (string, error) {
	pos, err := parseArgs(args, nil, nil)
	if err != nil {
		return "", err
	}
	return oneTenant(pos)
}

// parseMinValid reads a duration such as 2h or 90m, or whole seconds.
func parseMinValid(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usageErr("--min-valid %q: give a duration such as 2h, 90m or 300s", s)
	}
	return d, nil
}

func client() *ipc.Client { return &ipc.Client{Path: ipc.SocketPath()} }

// tokenArgs is a parsed token command line.
type tokenArgs struct {
	tenant            string
	minValid          time.Duration // -1: the agent's default
	header, json, env bool
}

func parseTokenArgs(args []string) (*tokenArgs, error) {
	ta := &tokenArgs{minValid: -1}
	minValid := ""
	pos, err := parseArgs(args,
		map[string]*bool{"-H": &ta.header, "--header": &ta.header, "--json": &ta.json, "--env": &ta.env},
		map[string]*string{"--min-valid": &minValid})
	if err != nil {
		return nil, err
	}
	if ta.tenant, err = oneTenant(pos); err != nil {
		return nil, err
	}
	if n := btoi(ta.header) + btoi(ta.json) + btoi(ta.env); n > 1 {
		return nil, usageErr("-H, --json and --env exclude each other")
	}
	if minValid != "" {
		if ta.minValid, err = parseMinValid(minValid); err != nil {
			return nil, err
		}
	}
	return ta, nil
}

func cmdToken(args []string, stdout io.Writer) error {
	ta, err := parseTokenArgs(args)
	if err != nil {
		return err
	}
	tok, err := client().Token(ta.tenant, ta.minValid)
	if err != nil {
		return err
	}
	switch {
	case ta.json:
		return writeJSON(stdout, tok)
	case ta.env:
		_, err = fmt.Fprintf(stdout, "export TAPIS_BASE_URL=%s\nexport TAPIS_TOKEN=%s\n", shellQuote(tok.BaseURL), shellQuote(tok.AccessToken))
		return err
	}
	return writePlain(stdout, tok, ta.header)
}

// writePlain prints the token, or with header an X-Tapis-Token header line.
func writePlain(w io.Writer, tok *ipc.TokenResponse, header bool) error {
	var err error
	if header {
		_, err = fmt.Fprintf(w, "X-Tapis-Token: %s\n", tok.AccessToken)
	} else {
		_, err = fmt.Fprintln(w, tok.AccessToken)
	}
	return err
}

func cmdLogin(args []string, stdin io.Reader, stderr io.Writer) error {
	var passwordStdin, device, keyStdin bool
	var username, clientID string
	pos, err := parseArgs(args,
		map[string]*bool{"--password-stdin": &passwordStdin, "--device": &device, "--client-key-stdin": &keyStdin},
		map[string]*string{"--username": &username, "-u": &username, "--client-id": &clientID})
	if err != nil {
		return err
	}
	tenant, err := oneTenant(pos)
	if err != nil {
		return err
	}
	if device && (passwordStdin || username != "") {
		return usageErr("--device takes no username or password: the user approves the login in a browser")
	}
	if !device && (keyStdin || clientID != "") {
		return usageErr("--client-id and --client-key-stdin go with --device")
	}
	c := client()
	st, err := ensureAgent(c, stderr)
	if err != nil {
		return err
	}
	if device {
		return loginDevice(c, tenant, clientID, keyStdin, stdin, stderr)
	}
	// The agent knows the configured username and default tenant.
	label := tenant
	for _, t := range st.Tenants {
		if t.Tenant == tenant || (tenant == "" && t.Default) {
			label = t.Tenant
			if username == "" {
				username = t.Username
			}
		}
	}
	if label == "" {
		label = "Tapis"
	}
	again := "tapis-token login"
	if label != "Tapis" {
		again += " " + label
	}
	var resp *ipc.LoginResponse
	if passwordStdin {
		resp, err = loginStdin(c, tenant, label, username, again, stdin)
	} else {
		resp, err = loginPrompted(c, tenant, label, username, again)
	}
	if err != nil {
		return err
	}
	t := resp.Tenant
	fmt.Fprintf(stderr, "tapis-token: logged in to %s as %s", t.Tenant, t.Username)
	if t.AccessExpiresAt != nil {
		fmt.Fprintf(stderr, "; the token is refreshed before it expires at %s", t.AccessExpiresAt.Local().Format(time.RFC3339))
	}
	fmt.Fprintln(stderr)
	return nil
}

func cmdLogout(args []string, stderr io.Writer) error {
	tenant, err := tenantOnly(args)
	if err != nil {
		return err
	}
	st, err := client().Logout(tenant)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tapis-token: logged out of %s\n", st.Tenant)
	return nil
}

func cmdStatus(args []string, stdout io.Writer) error {
	var asJSON bool
	pos, err := parseArgs(args, map[string]*bool{"--json": &asJSON}, nil)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("status takes no arguments, got %q", pos[0])
	}
	st, err := client().Status()
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "agent %s, pid %d, socket %s\n", st.Version, st.PID, st.Socket)
	if st.Config != "" {
		fmt.Fprintf(stdout, "config %s\n", st.Config)
	}
	if st.ConfigError != "" {
		fmt.Fprintf(stdout, "config error: %s\n", st.ConfigError)
	}
	if len(st.Tenants) == 0 {
		fmt.Fprintln(stdout, "no tenants; log in with: tapis-token login TENANT")
		return nil
	}
	fmt.Fprintln(stdout)
	writeTable(stdout, st.Tenants, time.Now())
	for _, t := range st.Tenants {
		if t.LastError != "" {
			fmt.Fprintf(stdout, "%s: last error: %s\n", t.Tenant, t.LastError)
		}
		for _, w := range t.Warnings {
			fmt.Fprintf(stdout, "%s: warning: %s\n", t.Tenant, w)
		}
	}
	return nil
}

// writeTable writes one aligned line per tenant, times relative to now;
// the default tenant is marked with a star.
func writeTable(w io.Writer, tenants []ipc.TenantStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSTATE\tUSER\tTOKEN EXPIRES\tLAST REFRESH\tNEXT REFRESH\tREFRESHES\tREFRESH TOKEN EXPIRES")
	for _, t := range tenants {
		name := t.Tenant
		if t.Default {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, t.State, dash(t.Username),
			when(t.AccessExpiresAt, now), when(t.LastRefresh, now), when(t.NextRefresh, now), t.RefreshCount, when(t.RefreshExpiresAt, now))
	}
	tw.Flush()
}

func cmdClaims(args []string, stdout io.Writer) error {
	tenant, err := tenantOnly(args)
	if err != nil {
		return err
	}
	tok, err := client().Token(tenant, 0)
	if err != nil {
		return err
	}
	c, err := jwt.Decode(tok.AccessToken)
	if err != nil {
		return fmt.Errorf("decoding the token of %s: %w", tok.Tenant, err)
	}
	return writeJSON(stdout, c)
}

func cmdImport(args []string, stdin io.Reader, stderr io.Writer) error {
	var refresh, keyStdin bool
	var clientID string
	pos, err := parseArgs(args,
		map[string]*bool{"--refresh-token": &refresh, "--client-key-stdin": &keyStdin},
		map[string]*string{"--client-id": &clientID})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("import needs exactly one TENANT")
	}
	if !refresh && (keyStdin || clientID != "") {
		return usageErr("--client-id and --client-key-stdin go with --refresh-token")
	}
	r := bufio.NewReader(io.LimitReader(stdin, 1<<20))
	first, _ := r.ReadString('\n')
	req := &ipc.ImportRequest{Tenant: pos[0], ClientID: clientID}
	tok := strings.TrimSpace(first)
	if refresh {
		req.RefreshToken = tok
		if keyStdin {
			second, _ := r.ReadString('\n')
			req.ClientKey = strings.TrimSpace(second)
			if req.ClientKey == "" {
				return &failure{code: exitUsage, msg: "no client key on the line after the refresh token",
					hint: "printf '%s\\n%s\\n' \"$REFRESH_TOKEN\" \"$CLIENT_KEY\" | tapis-token import " + pos[0] + " --refresh-token --client-id ID --client-key-stdin"}
			}
		}
	} else {
		req.AccessToken = tok
	}
	if tok == "" {
		return &failure{code: exitUsage, msg: "no token on stdin",
			hint: "paste the token: tapis-token import " + pos[0] + " < token.txt"}
	}
	st, err := client().Import(req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tapis-token: imported a token for %s (%s)\n", st.Tenant, st.State)
	return nil
}

// startHint is the hint when no agent answers.
const startHint = `start the agent: eval "$(tapis-agent start)", or systemctl --user start tapis-agent.socket`

// classify maps an error to its exit code, message and hint. The hint is
// never empty: every error names the next command to run.
func classify(err error) *failure {
	f := *classifyErr(err)
	if f.hint == "" {
		f.hint = fallbackHint(f.code)
	}
	return &f
}

func classifyErr(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, ipc.ErrAgentUnreachable) {
		hint := socketDirHint(filepath.Dir(ipc.SocketPath()))
		if hint == "" {
			hint = startHint
		}
		return &failure{code: exitUnreachable, msg: err.Error(), hint: hint}
	}
	var ie *ipc.Error
	if errors.As(err, &ie) {
		code := exitError
		hint := ie.Hint
		switch ie.Code {
		case ipc.CodeLoginRequired, ipc.CodeBadCredentials:
			code = exitLogin
		case ipc.CodeUpstreamUnavailable:
			code = exitUpstream
		case ipc.CodeInternal:
			if hint == "" {
				hint = logHint()
			}
		}
		return &failure{code: code, msg: ie.Message, hint: hint}
	}
	return &failure{code: exitError, msg: err.Error(), hint: "tapis-token status shows whether the agent is healthy; " + logHint()}
}

// fallbackHint is the hint of an error that came without one, chosen by
// its exit code.
func fallbackHint(code int) string {
	switch code {
	case exitUsage:
		return "tapis-token help"
	case exitUnreachable:
		return startHint
	case exitLogin:
		return "tapis-token login TENANT"
	case exitUpstream:
		return "Tapis did not answer; try again in a minute, and see tapis-token status"
	}
	return "tapis-token status shows the agent's tenants and their last errors"
}

// logHint says where the agent's log is: the journal under systemd, else
// the file `tapis-agent start` writes (cmd/tapis-agent agentLogPath).
func logHint() string {
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" || !filepath.IsAbs(state) {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "~"
		}
		state = filepath.Join(home, ".local", "state")
	}
	return "the agent's log says more: journalctl --user -u tapis-agent, or " + filepath.Join(state, "tapis-agent", "agent.log")
}

// socketDirHint returns the fix for a socket directory that exists but
// that ipc refuses to trust (as tmux refuses one), or "" when it is fine or
// missing: a missing directory only means that no agent runs.
func socketDirHint(dir string) string {
	fi, err := os.Lstat(dir)
	if err != nil || ipc.CheckDir(dir) == nil {
		return ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.IsDir() && int(st.Uid) == os.Getuid() {
		return "chmod 0700 " + shellArg(dir) + ", or set TAPIS_AGENT_SOCK to a socket in a directory of yours"
	}
	return "remove " + shellArg(dir) + ", or set TAPIS_AGENT_SOCK to a socket in a directory of yours"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shellQuote quotes s for sh: single quotes, with ' written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellArg returns s as one sh word: as it is when that is safe, else
// quoted.
func shellArg(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%=,", r))
	}) < 0
	if safe {
		return s
	}
	return shellQuote(s)
}

func when(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d >= 0:
		return "in " + short(d)
	default:
		return short(-d) + " ago"
	}
}

// short renders a duration as 3d, 3h12m, 2h, 4m10s, 48m or 12s.
func short(d time.Duration) string {
	var s string
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d >= time.Hour:
		s = d.Truncate(time.Minute).String()
	default:
		s = d.Truncate(time.Second).String()
	}
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s") // 3h12m0s → 3h12m, 48m0s → 48m
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m") // 2h0m → 2h
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
