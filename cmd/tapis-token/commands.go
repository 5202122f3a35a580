package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"golang.org/x/term"
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

func cmdToken(args []string, stdout io.Writer) error {
	var header, asJSON, env bool
	minValid := ""
	pos, err := parseArgs(args,
		map[string]*bool{"-H": &header, "--header": &header, "--json": &asJSON, "--env": &env},
		map[string]*string{"--min-valid": &minValid})
	if err != nil {
		return err
	}
	tenant, err := oneTenant(pos)
	if err != nil {
		return err
	}
	if n := btoi(header) + btoi(asJSON) + btoi(env); n > 1 {
		return usageErr("-H, --json and --env exclude each other")
	}
	d := time.Duration(-1) // the agent's default
	if minValid != "" {
		if d, err = parseMinValid(minValid); err != nil {
			return err
		}
	}
	tok, err := client().Token(tenant, d)
	if err != nil {
		return err
	}
	switch {
	case header:
		_, err = fmt.Fprintf(stdout, "X-Tapis-Token: %s\n", tok.AccessToken)
	case asJSON:
		err = writeJSON(stdout, tok)
	case env:
		_, err = fmt.Fprintf(stdout, "export TAPIS_BASE_URL=%s\nexport TAPIS_TOKEN=%s\n", shellQuote(tok.BaseURL), shellQuote(tok.AccessToken))
	default:
		_, err = fmt.Fprintln(stdout, tok.AccessToken)
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
	var password string
	if passwordStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return &failure{code: exitError, msg: "reading the password from stdin: no line given",
				hint: "echo \"$PASSWORD\" | tapis-token login " + tenant + " --password-stdin"}
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return &failure{code: exitError, msg: "no terminal to prompt for the password",
				hint: "pipe it in: tapis-token login " + tenant + " --password-stdin"}
		}
		defer tty.Close()
		if username == "" {
			fmt.Fprintf(tty, "Username for %s: ", label)
			line, err := bufio.NewReader(tty).ReadString('\n')
			if err != nil {
				return fmt.Errorf("reading the username: %w", err)
			}
			username = strings.TrimSpace(line)
		}
		fmt.Fprintf(tty, "Password for %s@%s: ", username, label)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return fmt.Errorf("reading the password: %w", err)
		}
		password = string(b)
	}
	if password == "" {
		return &failure{code: exitUsage, msg: "empty password", hint: "tapis-token login " + tenant}
	}
	resp, err := c.Login(&ipc.LoginRequest{Tenant: tenant, Username: username, Password: password})
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
	pos, err := parseArgs(args, nil, nil)
	if err != nil {
		return err
	}
	tenant, err := oneTenant(pos)
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
		fmt.Fprintf(stdout, "config error (the previous config stays in force): %s\n", st.ConfigError)
	}
	if len(st.Tenants) == 0 {
		fmt.Fprintln(stdout, "no tenants; log in with: tapis-token login TENANT")
		return nil
	}
	fmt.Fprintln(stdout)
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSTATE\tUSER\tTOKEN EXPIRES\tNEXT REFRESH\tREFRESHES\tREFRESH TOKEN EXPIRES")
	for _, t := range st.Tenants {
		name := t.Tenant
		if t.Default {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, t.State, dash(t.Username),
			when(t.AccessExpiresAt, now), when(t.NextRefresh, now), t.RefreshCount, when(t.RefreshExpiresAt, now))
	}
	tw.Flush()
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

func cmdClaims(args []string, stdout io.Writer) error {
	pos, err := parseArgs(args, nil, nil)
	if err != nil {
		return err
	}
	tenant, err := oneTenant(pos)
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

// classify maps an error to its exit code, message and hint.
func classify(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, ipc.ErrAgentUnreachable) {
		return &failure{code: exitUnreachable, msg: err.Error(),
			hint: `start the agent: eval "$(tapis-agent start)", or systemctl --user start tapis-agent.socket`}
	}
	var ie *ipc.Error
	if errors.As(err, &ie) {
		code := exitError
		switch ie.Code {
		case ipc.CodeLoginRequired:
			code = exitLogin
		case ipc.CodeUpstreamUnavailable:
			code = exitUpstream
		}
		return &failure{code: code, msg: ie.Message, hint: ie.Hint}
	}
	return &failure{code: exitError, msg: err.Error()}
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

// short renders a duration as 3h12m, 4m10s or 12s.
func short(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d >= time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s") // 3h12m0s → 3h12m
	}
	return d.Truncate(time.Second).String()
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
