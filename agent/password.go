package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis"
)

// DefaultPasswordTimeout bounds one run of a tenant's password_command.
const DefaultPasswordTimeout = 30 * time.Second

// Bounds on what a password_command may print: the password is its first
// line; stderr is kept only to explain a failure.
const (
	maxPasswordOutput = 64 << 10
	maxPasswordStderr = 4 << 10
)

// commandError is a password_command that gave no password. Error is safe
// to log: it names the exit status, never the output. Detail adds the
// start of stderr for status, which goes only to the user's own terminal.
type commandError struct {
	msg    string
	stderr string
}

func (e *commandError) Error() string { return e.msg }

// Detail is the message with the start of the command's stderr, if any.
func (e *commandError) Detail() string {
	if e.stderr == "" {
		return e.msg
	}
	return e.msg + "; it said: " + e.stderr
}

// boundedBuffer keeps the first max bytes written and discards the rest,
// so a chatty command never blocks on a full pipe nor fills memory.
type boundedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// wipe overwrites what the buffer held.
func (b *boundedBuffer) wipe() {
	clear(b.buf.Bytes()[:b.buf.Cap()])
	b.buf.Reset()
}

// runPasswordCommand runs argv without a shell (password_command_shell
// makes argv /bin/sh -c …), stdin /dev/null, in its own process group so
// that a timeout kills whatever it started, and returns the first line of
// its stdout.
func runPasswordCommand(ctx context.Context, argv []string, timeout time.Duration) (tapis.Secret, error) {
	if len(argv) == 0 {
		return "", &commandError{msg: "password_command is empty"}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	stdout := &boundedBuffer{max: maxPasswordOutput}
	stderr := &boundedBuffer{max: maxPasswordStderr}
	defer stdout.wipe()
	defer stderr.wipe()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding the pipes open must not hold up the agent.
	cmd.WaitDelay = time.Second
	err := cmd.Run()

	out := stdout.buf.Bytes()
	line, _, _ := bytes.Cut(out, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	said := summarize(stderr.buf.String(), string(line))
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", &commandError{msg: fmt.Sprintf("password_command %s did not finish within %s and was stopped", argv[0], timeout), stderr: said}
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.As(err, &ee):
		return "", &commandError{msg: fmt.Sprintf("password_command %s failed (%s)", argv[0], ee.ProcessState), stderr: said}
	case err != nil:
		// Not started: not found, not executable. The error names the
		// program only.
		return "", &commandError{msg: fmt.Sprintf("running password_command: %v", err)}
	case len(line) == 0:
		return "", &commandError{msg: fmt.Sprintf("password_command %s printed no password (its first line of output is empty)", argv[0]), stderr: said}
	}
	return tapis.Secret(line), nil
}

// summarize returns the first non-empty line of a command's stderr,
// shortened and printable, for status; "" when it might echo the
// password.
func summarize(stderr, password string) string {
	if password != "" && strings.Contains(stderr, password) {
		return ""
	}
	for l := range strings.Lines(stderr) {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		l = strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return '?'
		}, l)
		if len(l) > 200 {
			l = l[:200] + "…"
		}
		return l
	}
	return ""
}

// startUnattended logs in to the configured tenant name with its
// password_command in the background, if it has one and a username and no
// such login is running. why is logged.
func (a *Agent) startUnattended(name, why string) {
	t := a.Config().Lookup(name)
	if t == nil || len(t.PasswordCommand) == 0 || t.Username == "" {
		return
	}
	a.mu.Lock()
	if a.closed || a.unattends[name] {
		a.mu.Unlock()
		return
	}
	a.unattends[name] = true
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.unattends, name)
			a.mu.Unlock()
		}()
		a.unattended(name, why)
	}()
}

// unattended is one password_command login of tenant name.
func (a *Agent) unattended(name, why string) {
	log := a.log.With("tenant", name)
	t := a.Config().Lookup(name)
	if t == nil || len(t.PasswordCommand) == 0 || t.Username == "" {
		return
	}
	log.Info("password_command_login", "reason", why, "command", t.PasswordCommand[0])
	password, err := runPasswordCommand(a.ctx, t.PasswordCommand, a.opts.PasswordTimeout)
	if err != nil {
		if a.ctx.Err() != nil {
			return
		}
		log.Warn("password_command_failed", "err", err)
		msg := err.Error()
		var ce *commandError
		if errors.As(err, &ce) {
			msg = ce.Detail()
		}
		a.setLoginErr(name, name+": "+msg)
		return
	}
	if _, err := a.passwordLogin(a.ctx, name, t, t.Username, password); err != nil {
		if a.ctx.Err() != nil {
			return
		}
		log.Warn("password_command_login_failed", "err", err)
		msg := err.Error()
		var ie *ipc.Error
		if errors.As(err, &ie) {
			msg = ie.Message
		}
		a.setLoginErr(name, msg+" (password from password_command)")
	}
}
