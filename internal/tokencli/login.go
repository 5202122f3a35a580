package tokencli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/launch"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
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

// loginDevice runs a device-code login: the agent starts it and polls
// Tapis; this prints where to approve it and waits for the outcome. Ctrl-C
// abandons it in the agent too.
func loginDevice(ctx context.Context, c *ipcclient.Client, tenant, clientID string, keyStdin bool, stdin io.Reader, stderr io.Writer) error {
	req := &ipc.LoginRequest{Tenant: tenant, Device: true, ClientID: clientID}
	if keyStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
		req.ClientKey = strings.TrimSpace(line)
		if req.ClientKey == "" {
			return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: fmt.Sprintf("reading the client key from stdin: no line given (%v)", err),
				Hint: "tapis-token login " + tenant + " --device --client-id ID --client-key-stdin < keyfile"}
		}
	}
	resp, err := c.Login(ctx, req)
	req.ClientKey = ""
	if err != nil {
		return err
	}
	name := resp.Tenant.Tenant
	if d := resp.Device; d != nil {
		fmt.Fprintf(stderr, "tapis-token: to log in to %s, open\n\n    %s\n\nand enter the code\n\n    %s\n\n", name, d.VerificationURI, d.UserCode)
		if !d.ExpiresAt.IsZero() {
			fmt.Fprintf(stderr, "tapis-token: the code expires at %s; waiting for approval (Ctrl-C to give up)\n", d.ExpiresAt.Local().Format("15:04:05"))
		}
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
			r, err := c.Login(ctx, &ipc.LoginRequest{Tenant: name, Device: true, Wait: true})
			if err != nil || r.Device == nil {
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
		fmt.Fprintf(stderr, "tapis-token: logged in to %s as %s with the device code; the token is refreshed before it expires\n", t.Tenant, t.Username)
		return nil
	case s := <-sig:
		abandon := &ipcclient.Client{Path: c.Path, Timeout: 10 * time.Second}
		if _, err := abandon.Login(ctx, &ipc.LoginRequest{Tenant: name, Device: true, Cancel: true}); err != nil {
			fmt.Fprintf(stderr, "tapis-token: telling the agent to abandon the login: %v\n", err)
		}
		return &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("device-code login to %s abandoned (%v)", name, s),
			Hint: "tapis-token login " + name + " --device"}
	}
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
