package tokencli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/human"
	"github.com/tapis-agent/tapis-agent/internal/shell"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"golang.org/x/term"
)

// usagef returns a usage error with the message format gives.
func usagef(format string, args ...any) error { return cmdline.Usage(fmt.Sprintf(format, args...)) }

// client returns a client of the agent at ipc.SocketPath.
func client() *ipcclient.Client { return &ipcclient.Client{Path: ipc.SocketPath()} }

// token asks the agent for a token, and when none answers, reads the
// lease file of the batch job this runs in, if any.
func token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	tok, err := client().Token(ctx, tenant, minValid)
	if err != nil {
		return cmdline.LeaseFallback(tenant, minValid, err)
	}
	return tok, nil
}

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ta, err := cmdline.ParseTokenArgs(args)
	if err != nil {
		return err
	}
	tok, err := token(ctx, ta.Tenant, ta.MinValid)
	if err != nil {
		return mistypedCommand(ctx, ta.Tenant, err)
	}
	warnConfig(ctx, stderr)
	switch {
	case ta.JSON:
		return writeJSON(stdout, tok)
	case ta.Env:
		format := "export %s=%s\n"
		if ta.Csh || !ta.Sh && shell.IsCsh(os.Getenv("SHELL")) {
			format = "setenv %s %s;\n"
		}
		_, err = fmt.Fprintf(stdout, format+format, "TAPIS_BASE_URL", shell.Quote(tok.BaseURL), "TAPIS_TOKEN", shell.Quote(tok.AccessToken))
		return err
	}
	return cmdline.WritePlain(stdout, tok.AccessToken, ta.Format)
}

// warnConfig prints a line on stderr when the agent's config file is not
// in force, for a command whose answer depends on it: the base URL, the
// default tenant, the client.
func warnConfig(ctx context.Context, stderr io.Writer) {
	st, err := client().Status(ctx)
	if err != nil || st.ConfigError == "" {
		return
	}
	first, _, _ := strings.Cut(st.ConfigError, "\n")
	fmt.Fprintf(stderr, "tapis-token: warning: the config file is not in force (%s); tapis-token status says more\n", first)
}

// mistypedCommand returns, for a token call that failed with err, the
// usage error of a mistyped command (tapis-token lgoin) when tenant is
// close to a command's name and the agent knows no such tenant; else err.
func mistypedCommand(ctx context.Context, tenant string, err error) error {
	cmd := cmdline.ClosestCommand(Commands, tenant)
	if tenant == "" || cmd == "" || !(isCode(err, ipc.CodeLoginRequired) || isCode(err, ipc.CodeUnknownTenant)) {
		return err
	}
	if st, serr := client().Status(ctx); serr == nil && slices.ContainsFunc(st.Tenants, func(t ipc.TenantStatus) bool { return t.Tenant == tenant }) {
		return err
	}
	return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "unknown command " + tenant + "; did you mean " + cmd + "?",
		Hint: "tapis-token help lists the commands; to log in to a tenant named " + tenant + ": tapis-token login " + tenant}
}

func cmdLogin(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	var passwordStdin, device, browser, keyStdin, tokenStdin bool
	var username, clientID string
	pos, err := cmdline.ParseArgs(args,
		cmdline.BoolFlag("--password-stdin", &passwordStdin), cmdline.BoolFlag("--device", &device), cmdline.BoolFlag("--browser", &browser),
		cmdline.BoolFlag("--client-key-stdin", &keyStdin), cmdline.BoolFlag("--token-stdin", &tokenStdin),
		cmdline.ValueFlag("--username", &username), cmdline.ValueFlag("-u", &username), cmdline.ValueFlag("--client-id", &clientID))
	if err != nil {
		return err
	}
	tenant, err := cmdline.OneTenant(pos)
	if err != nil {
		return err
	}
	flow := device || browser
	switch {
	case device && browser:
		return usagef("--device and --browser exclude each other: pick the one the user approves the login with")
	case device && (passwordStdin || username != ""):
		return usagef("--device takes no username or password: the user approves the login in a browser")
	case browser && (passwordStdin || username != ""):
		return usagef("--browser takes no username or password: the user logs in in the browser")
	case !flow && (keyStdin || clientID != "" || tokenStdin):
		return usagef("--client-id, --client-key-stdin and --token-stdin go with --device or --browser")
	case keyStdin && tokenStdin:
		return usagef("--client-key-stdin and --token-stdin both read stdin: a configured client needs no token")
	}
	c := client()
	st, err := ensureAgent(ctx, c, stderr)
	if err != nil {
		return err
	}
	if st.ConfigError != "" {
		// The agent runs without what the file says now (it is invalid,
		// or waits to settle): a login would go to another base URL, as
		// another user, with another client.
		return &cmdline.Failure{Code: cmdline.ExitError,
			Msg:  "the config file is not in force, and a login now would not use what it says (base_url, username, client):\n" + st.ConfigError,
			Hint: "fix the file if it is wrong (the agent reloads it when it is saved), then log in again"}
	}
	// The agent knows the configured username, base URL and default
	// tenant, and whether a session is held, which a failed login keeps.
	label, baseURL, held := tenant, "", false
	for _, t := range st.Tenants {
		if t.Tenant == tenant || (tenant == "" && t.Default) {
			label, baseURL = t.Tenant, t.BaseURL
			if username == "" {
				username = t.Username
			}
			held = t.State != ipc.StateLoginRequired && t.State != ipc.StateDevicePending && t.State != ipc.StateBrowserPending
			// Before the password is typed: a plain-http base URL, say.
			for _, w := range t.Warnings {
				fmt.Fprintf(stderr, "tapis-token: warning: %s: %s\n", t.Tenant, w)
			}
		}
	}
	if label == "" {
		label = "Tapis"
	}
	// Before asking for any secret: does the tenant answer, and which
	// logins does it allow?
	grants, err := probeTenant(ctx, c, tenant, label, baseURL, stderr)
	if err != nil {
		return err
	}
	want := tapisGrantPassword
	switch {
	case device:
		want = tapisGrantDevice
	case browser:
		want = tapisGrantBrowser
	}
	if !slices.Contains(grants, want) {
		return offerFlows(label, want, grants)
	}
	if flow {
		return loginFlow(ctx, c, tenant, label, flowOptions{browser: browser, clientID: clientID, keyStdin: keyStdin, tokenStdin: tokenStdin}, stdin, stderr)
	}
	again := "tapis-token login"
	if label != "Tapis" {
		again += " " + label
	}
	var resp *ipc.LoginResponse
	if passwordStdin {
		resp, err = loginStdin(ctx, c, tenant, label, username, again, stdin)
	} else {
		resp, err = loginPrompted(ctx, c, tenant, label, username, again, held)
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

func cmdLogout(ctx context.Context, args []string, stderr io.Writer) error {
	tenant, err := cmdline.TenantOnly(args)
	if err != nil {
		return err
	}
	st, err := client().Logout(ctx, tenant)
	if err != nil {
		return err
	}
	if st.ClientDeleted != "" {
		fmt.Fprintf(stderr, "tapis-token: logged out of %s, and deleted the OAuth client %s the agent had registered for this host\n", st.Tenant, st.ClientDeleted)
		return nil
	}
	fmt.Fprintf(stderr, "tapis-token: logged out of %s\n", st.Tenant)
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdout io.Writer) error {
	var asJSON bool
	pos, err := cmdline.ParseArgs(args, cmdline.BoolFlag("--json", &asJSON))
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("status takes no arguments, got %q", pos[0])
	}
	st, err := client().Status(ctx)
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
	for _, w := range st.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if len(st.Tenants) == 0 {
		fmt.Fprintln(stdout, "no tenants; log in with: tapis-token login TENANT")
		writeLeases(stdout, st.Leases, time.Now())
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
	writeLeases(stdout, st.Leases, time.Now())
	return nil
}

// writeTable writes one aligned line per tenant, times relative to now;
// the default tenant is marked with a star.
func writeTable(w io.Writer, tenants []ipc.TenantStatus, now time.Time) {
	tw := newTable(w)
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

// newTable returns a writer of aligned columns.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func cmdClaims(ctx context.Context, args []string, stdout io.Writer) error {
	tenant, err := cmdline.TenantOnly(args)
	if err != nil {
		return err
	}
	tok, err := client().Token(ctx, tenant, 0)
	if err != nil {
		return err
	}
	c, err := jwt.Decode(tok.AccessToken)
	if err != nil {
		return fmt.Errorf("decoding the token of %s: %w", tok.Tenant, err)
	}
	return writeJSON(stdout, c)
}

func cmdImport(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	var refresh, keyStdin, fromEnvFlag bool
	var clientID, fromFilePath string
	pos, err := cmdline.ParseArgs(args,
		cmdline.BoolFlag("--refresh-token", &refresh), cmdline.BoolFlag("--client-key-stdin", &keyStdin),
		cmdline.ValueFlag("--client-id", &clientID),
		cmdline.BoolFlag("--from-env", &fromEnvFlag), cmdline.ValueFlag("--from-file", &fromFilePath))
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("import needs exactly one TENANT")
	}
	if fromEnvFlag || fromFilePath != "" {
		if fromEnvFlag && fromFilePath != "" {
			return usagef("--from-env and --from-file exclude each other: import one source at a time")
		}
		if refresh || keyStdin || clientID != "" {
			return usagef("--refresh-token, --client-id and --client-key-stdin read stdin; --from-env and --from-file read their own source")
		}
		return importFrom(ctx, pos[0], fromEnvFlag, fromFilePath, stderr)
	}
	if !refresh && (keyStdin || clientID != "") {
		return usagef("--client-id and --client-key-stdin go with --refresh-token")
	}
	what := "access token"
	if refresh {
		what = "refresh token"
	}
	prompts := []string{"Paste the " + what + " for " + pos[0] + " (not shown): "}
	if refresh && keyStdin {
		prompts = append(prompts, "Client key of "+clientID+" (not shown): ")
	}
	lines, err := readSecrets(stdin, stderr, prompts)
	if err != nil {
		return err
	}
	req := &ipc.ImportRequest{Tenant: pos[0], ClientID: clientID}
	tok := lines[0]
	if refresh {
		req.RefreshToken = tok
		if keyStdin {
			req.ClientKey = lines[1]
			if req.ClientKey == "" {
				return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "no client key on the line after the refresh token",
					Hint: "printf '%s\\n%s\\n' \"$REFRESH_TOKEN\" \"$CLIENT_KEY\" | tapis-token import " + pos[0] + " --refresh-token --client-id ID --client-key-stdin"}
			}
		}
	} else {
		req.AccessToken = tok
	}
	if tok == "" {
		return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "no token on stdin",
			Hint: "paste the token: tapis-token import " + pos[0] + " < token.txt"}
	}
	st, err := client().Import(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tapis-token: imported a token for %s (%s)\n", st.Tenant, st.State)
	return nil
}

// readSecrets reads one line of stdin per prompt: on a terminal, each
// after its prompt and without echo, as a password is read; else the
// lines as they come, with no prompt. A missing line is "".
func readSecrets(stdin io.Reader, stderr io.Writer, prompts []string) ([]string, error) {
	lines := make([]string, len(prompts))
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		for i, p := range prompts {
			b, err := readPassword(f, p, stderr)
			io.WriteString(stderr, "\n")
			if err != nil {
				return nil, fmt.Errorf("reading from the terminal: %w", err)
			}
			lines[i] = strings.TrimSpace(string(b))
			clear(b)
		}
		return lines, nil
	}
	r := bufio.NewReader(io.LimitReader(stdin, 1<<20))
	for i := range lines {
		line, _ := r.ReadString('\n')
		lines[i] = strings.TrimSpace(line)
	}
	return lines, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func when(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := t.Sub(now)
	switch {
	case d >= 0:
		return "in " + human.DurationDown(d)
	default:
		return human.DurationDown(-d) + " ago"
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
