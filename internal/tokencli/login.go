package tokencli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/launch"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
	"golang.org/x/term"
)

// startTimeout bounds starting an agent for login.
const startTimeout = 30 * time.Second

// loginTries is how often an interactive login asks for the password
// before it gives up, as sudo and the DesignSafe helper do.
const loginTries = 3

// loginStdin logs in with the password on the first line of stdin. A
// wrong password fails at once: a script that pipes one in would only
// pipe the same one again.
func loginStdin(ctx context.Context, c *ipcclient.Client, tenant, label, username, again string, stdin io.Reader) (*ipc.LoginResponse, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return nil, &cmdline.Failure{Code: cmdline.ExitError, Msg: "reading the password from stdin: no line given",
			Hint: "echo \"$PASSWORD\" | " + again + " --password-stdin"}
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return nil, &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "empty password", Hint: "echo \"$PASSWORD\" | " + again + " --password-stdin"}
	}
	resp, err := c.Login(ctx, &ipc.LoginRequest{Tenant: tenant, Username: username, Password: password})
	if isCode(err, ipc.CodeBadCredentials) {
		return nil, &cmdline.Failure{Code: cmdline.ExitLogin,
			Msg:  fmt.Sprintf("Tapis refused the username or password for %s; --password-stdin does not ask again", label),
			Hint: "check the password piped in (and --username), then: " + again + " --password-stdin; or type it: " + again}
	}
	return resp, err
}

// loginPrompted asks for the password on the terminal, and for the
// username unless one is known, up to loginTries times while Tapis refuses
// them. Only a refused username or password is asked again: a wrong
// OAuth client or an unreachable Tapis would fail the same way every time.
//
// held says whether the agent holds a session of the tenant, which a
// failed login leaves as it is.
func loginPrompted(ctx context.Context, c *ipcclient.Client, tenant, label, username, again string, held bool) (*ipc.LoginResponse, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, &cmdline.Failure{Code: cmdline.ExitError, Msg: "no terminal to prompt for the password",
			Hint: "pipe it in: " + again + " --password-stdin"}
	}
	defer tty.Close()
	// A username typed here may be the wrong half: ask it again too, with
	// the last one as the default.
	askUser := username == ""
	// In canonical mode a read returns at most one line, so this reader
	// never swallows the password that term.ReadPassword reads next.
	in := bufio.NewReader(tty)
	for try := 1; ; try++ {
		if askUser {
			if username == "" {
				fmt.Fprintf(tty, "Username for %s: ", label)
			} else {
				fmt.Fprintf(tty, "Username for %s [%s]: ", label, username)
			}
			line, err := in.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("reading the username: %w", err)
			}
			if u := strings.TrimSpace(line); u != "" {
				username = u
			}
		}
		b, err := readPassword(tty, fmt.Sprintf("Password for %s@%s: ", username, label), tty)
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		if len(b) == 0 {
			return nil, &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "empty password", Hint: again}
		}
		resp, err := c.Login(ctx, &ipc.LoginRequest{Tenant: tenant, Username: username, Password: string(b)})
		clear(b)
		if !isCode(err, ipc.CodeBadCredentials) {
			return resp, err
		}
		if try == loginTries {
			outcome := "not logged in"
			if held {
				outcome = "the session the agent held stays as it was"
			}
			return nil, &cmdline.Failure{Code: cmdline.ExitLogin,
				Msg:  fmt.Sprintf("Tapis refused the username or password for %s %d times; %s", label, loginTries, outcome),
				Hint: "check them (a forgotten password is reset on the tenant's web portal), then: " + again + " (or " + again + " --username NAME)"}
		}
		fmt.Fprintf(tty, "Tapis refused the username or password for %s; try again (%d of %d).\n", label, try+1, loginTries)
	}
}

// readPassword shows prompt on out and reads a password on the terminal
// tty without echo. Echo goes off before the prompt shows: what is typed as
// soon as it appears is not shown either. Ctrl-C there would end the
// process with echo still off and leave the user's shell blind, so an
// interrupt first restores the terminal, then exits as the signal would
// (128+n).
func readPassword(tty *os.File, prompt string, out io.Writer) ([]byte, error) {
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	defer term.Restore(fd, state)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	go func() {
		select {
		case s := <-sig:
			_ = term.Restore(fd, state)
			fmt.Fprintln(tty)
			n, _ := s.(syscall.Signal)
			os.Exit(128 + int(n))
		case <-done:
		}
	}()
	echoOff(fd)
	io.WriteString(out, prompt)
	return term.ReadPassword(fd)
}

// isCode reports whether err is an answer of the agent with code.
func isCode(err error, code string) bool {
	var e *ipc.Error
	return errors.As(err, &e) && e.Code == code
}

// Grant types, as the tenant's OAuth metadata names them.
const (
	tapisGrantPassword = "password"
	tapisGrantBrowser  = "authorization_code"
	tapisGrantDevice   = "device_code"
)

// probeTenant asks the agent which logins the tenant allows, before the
// user types any secret: a tenant that does not answer is reported
// within 10 s, and a wait of more than a second is shown.
func probeTenant(ctx context.Context, c *ipcclient.Client, tenant, label, baseURL string, stderr io.Writer) ([]string, error) {
	where := baseURL
	if where == "" {
		where = label
		if tenant != "" {
			where = baseurl.Default(tenant)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(stderr, "tapis-token: waiting for %s to answer (at most 7s)...\n", where)
		case <-done:
		}
	}()
	resp, err := c.Login(ctx, &ipc.LoginRequest{Tenant: tenant, Probe: true})
	close(done)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return resp.GrantTypes, nil
}

// offerFlows says that the tenant does not allow the login asked for,
// and which it does.
func offerFlows(label, want string, grants []string) error {
	again := "tapis-token login " + label
	what := map[string]string{tapisGrantPassword: "a password", tapisGrantBrowser: "the browser", tapisGrantDevice: "a device code"}
	cmd := map[string]string{tapisGrantPassword: again, tapisGrantBrowser: again + " --browser", tapisGrantDevice: again + " --device"}
	var offers []string
	for _, g := range []string{tapisGrantBrowser, tapisGrantDevice, tapisGrantPassword} {
		if slices.Contains(grants, g) {
			offers = append(offers, cmd[g]+" ("+what[g]+")")
		}
	}
	if len(offers) == 0 {
		return &cmdline.Failure{Code: cmdline.ExitError,
			Msg:  fmt.Sprintf("%s allows no login tapis-agent can do (it allows %s)", label, strings.Join(grants, ", ")),
			Hint: "ask the tenant's administrators; or import a token from its web page: tapis-token import " + label}
	}
	return &cmdline.Failure{Code: cmdline.ExitError,
		Msg:  fmt.Sprintf("%s does not allow logging in with %s here", label, what[want]),
		Hint: "log in with " + strings.Join(offers, ", or ")}
}

// flowOptions are the command-line options of a device-code or browser
// login.
type flowOptions struct {
	browser              bool
	clientID             string
	keyStdin, tokenStdin bool
}

// loginFlow runs a device-code or browser login: the agent starts it;
// this shows the user what to do and waits for the outcome. Ctrl-C
// abandons it in the agent too. Without an OAuth client of the agent for
// this host, it asks once for a token from the tenant's Token Web App,
// with which the agent finds or registers one.
func loginFlow(ctx context.Context, c *ipcclient.Client, tenant, label string, o flowOptions, stdin io.Reader, stderr io.Writer) error {
	flag := "--device"
	if o.browser {
		flag = "--browser"
	}
	again := "tapis-token login " + label + " " + flag
	req := &ipc.LoginRequest{Tenant: tenant, Device: !o.browser, Browser: o.browser, ClientID: o.clientID}
	in := bufio.NewReader(io.LimitReader(stdin, 64<<10))
	if o.keyStdin {
		line, err := in.ReadString('\n')
		req.ClientKey = strings.TrimSpace(line)
		if req.ClientKey == "" {
			return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: fmt.Sprintf("reading the client key from stdin: no line given (%v)", err),
				Hint: again + " --client-id ID --client-key-stdin < keyfile"}
		}
	}
	resp, err := c.Login(ctx, req)
	var need *ipc.Error
	if errors.As(err, &need) && need.Code == ipc.CodeClientNeeded {
		tok, terr := readBootstrapToken(need, o.tokenStdin, in, stderr, again)
		if terr != nil {
			return terr
		}
		req.BootstrapToken = tok
		resp, err = c.Login(ctx, req)
	}
	req.ClientKey, req.BootstrapToken = "", ""
	if err != nil {
		return err
	}
	name := resp.Tenant.Tenant
	wait := &ipc.LoginRequest{Tenant: name, Device: !o.browser, Browser: o.browser, Wait: true}
	if d := resp.Device; d != nil {
		fmt.Fprintf(stderr, "tapis-token: to log in to %s, open\n\n    %s\n\nand enter the code (upper and lower case matter)\n\n    %s\n\n", name, d.VerificationURI, d.UserCode)
		fmt.Fprintf(stderr, "tapis-token: entering the code grants the login; there is no way to refuse it afterwards. The page then asks\n"+
			"for how many days to allow it (30 by default): that is only how long the first token lives. The agent keeps\n"+
			"the login fresh until you log out either way, so the default is fine.\n")
		if !d.ExpiresAt.IsZero() {
			fmt.Fprintf(stderr, "tapis-token: the code expires at %s; waiting for approval (Ctrl-C to give up)\n", d.ExpiresAt.Local().Format("15:04:05"))
		}
	}
	if b := resp.Browser; b != nil {
		showBrowser(name, b, stderr)
		wait.Flow = b.Flow
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	type outcome struct {
		resp *ipc.LoginResponse
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		for {
			r, err := c.Login(ctx, wait)
			if err != nil || (r.Device == nil && r.Browser == nil) {
				done <- outcome{r, err}
				return
			}
		}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return o.err
		}
		t := o.resp.Tenant
		how := "the device code"
		if wait.Browser {
			how = "the browser"
		}
		fmt.Fprintf(stderr, "tapis-token: logged in to %s as %s with %s; the token is refreshed before it expires\n", t.Tenant, t.Username, how)
		return nil
	case s := <-sig:
		abandon := &ipcclient.Client{Path: c.Path, Timeout: 10 * time.Second}
		cancel := *wait
		cancel.Wait, cancel.Cancel = false, true
		if _, err := abandon.Login(ctx, &cancel); err != nil {
			fmt.Fprintf(stderr, "tapis-token: telling the agent to abandon the login: %v\n", err)
		}
		return &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("login to %s abandoned (%v)", name, s), Hint: again}
	}
}

// readBootstrapToken shows why the agent needs a token (need says where
// to get one) and reads it: from stdin with --token-stdin, else on the
// terminal without echo.
func readBootstrapToken(need *ipc.Error, fromStdin bool, in *bufio.Reader, stderr io.Writer, again string) (string, error) {
	fmt.Fprintf(stderr, "tapis-token: %s\n", need.Message)
	if fromStdin {
		line, _ := in.ReadString('\n')
		if tok := strings.TrimSpace(line); tok != "" {
			return tok, nil
		}
		return "", &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "no token on stdin", Hint: "echo \"$TOKEN\" | " + again + " --token-stdin"}
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", &cmdline.Failure{Code: cmdline.ExitError, Msg: "no terminal to paste the token on", Hint: "pipe it in: echo \"$TOKEN\" | " + again + " --token-stdin"}
	}
	defer tty.Close()
	b, err := readPassword(tty, "Paste the access token (it is not shown): ", tty)
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	clear(b)
	if tok == "" {
		return "", &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "no token pasted", Hint: again}
	}
	return tok, nil
}

// showBrowser opens the login address in the user's browser when there
// is one here, and otherwise says how to reach it: the address, and in an
// SSH session the ssh -L line that carries the browser's redirect back
// to the agent's port.
func showBrowser(name string, b *ipc.BrowserLogin, stderr io.Writer) {
	if openBrowser(b.URL) {
		fmt.Fprintf(stderr, "tapis-token: opened a browser to log in to %s; if none appeared, open\n\n    %s\n\n", name, b.URL)
	} else {
		fmt.Fprintf(stderr, "tapis-token: to log in to %s, open this address in a browser:\n\n    %s\n\n", name, b.URL)
		if os.Getenv("SSH_CONNECTION") != "" {
			host, _ := os.Hostname()
			user := os.Getenv("USER")
			if user != "" {
				host = user + "@" + host
			}
			fmt.Fprintf(stderr, "tapis-token: the browser's last step goes to port %d of this machine: in an SSH session, forward it\n"+
				"from the machine with the browser first:\n\n    ssh -L %d:127.0.0.1:%d %s\n\n", b.Port, b.Port, b.Port, host)
		}
	}
	fmt.Fprintf(stderr, "tapis-token: waiting for the browser until %s (Ctrl-C to give up)\n", b.ExpiresAt.Local().Format("15:04:05"))
}

// openBrowser starts the user's browser on url: $BROWSER (the first of
// its colon-separated commands; %s stands for the address), else open on
// macOS, else xdg-open under a graphical session. It reports whether one
// was started.
func openBrowser(url string) bool {
	var argv []string
	if env := os.Getenv("BROWSER"); env != "" {
		first, _, _ := strings.Cut(env, ":")
		argv = strings.Fields(first)
		if len(argv) == 0 {
			return false
		}
		if i := slices.IndexFunc(argv, func(a string) bool { return strings.Contains(a, "%s") }); i >= 0 {
			argv[i] = strings.ReplaceAll(argv[i], "%s", url)
		} else {
			argv = append(argv, url)
		}
	} else {
		switch {
		case runtime.GOOS == "darwin":
			argv = []string{"open", url}
		case os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "":
			argv = []string{"xdg-open", url}
		default:
			return false
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if err := cmd.Start(); err != nil {
		return false
	}
	go cmd.Wait()
	return true
}

// ensureAgent starts an agent when there is none at the well-known socket,
// as gpg-agent does, so that `tapis-token login` is the whole setup on a
// fresh login node. TAPIS_AGENT_SOCK naming that socket, as
// `eval "$(tapis-agent start)"` in ~/.bashrc leaves it in every shell,
// changes nothing; naming another, the user chose an agent, and starting
// one elsewhere would hide that it is gone. It returns the status of the
// agent that answers.
func ensureAgent(ctx context.Context, c *ipcclient.Client, stderr io.Writer) (*ipc.StatusResponse, error) {
	st, err := c.Status(ctx)
	if err == nil || !errors.Is(err, ipc.ErrAgentUnreachable) || !isDefaultSocket(os.Getenv("TAPIS_AGENT_SOCK")) {
		return st, err
	}
	// An agent started there would be refused the same way.
	if cmdline.SocketDirHint(filepath.Dir(c.Path)) != "" {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// Ctrl-C while the agent starts stops it too.
	sctx, stop := signal.NotifyContext(sctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// This runs inside the tapis-agent binary (tapis-token executes it for
	// login), which launch starts as the agent.
	a, err := launch.Start(sctx, launch.Options{Socket: c.Path})
	if err != nil {
		return nil, &cmdline.Failure{Code: cmdline.ExitUnreachable, Msg: "no agent is running and none could be started: " + err.Error(),
			Hint: `start one: eval "$(tapis-agent start)", or systemctl --user start tapis-agent.socket`}
	}
	c.Path = a.Socket
	if a.Started {
		fmt.Fprintf(stderr, "tapis-token: started an agent (socket %s); add eval \"$(tapis-agent start)\" to ~/.bashrc so that every shell finds it\n", a.Socket)
	}
	return c.Status(ctx)
}

// isDefaultSocket reports whether TAPIS_AGENT_SOCK's value sock leaves
// the socket where it is without it: unset, or the same path.
func isDefaultSocket(sock string) bool {
	if sock == "" {
		return true
	}
	abs, err := filepath.Abs(sock)
	return err == nil && abs == filepath.Clean(ipc.DefaultSocketPath())
}
