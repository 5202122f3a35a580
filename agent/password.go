package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/refresher"
	"github.com/tapis-agent/tapis-agent/secret"
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
func runPasswordCommand(ctx context.Context, argv []string, timeout time.Duration) (secret.Value, error) {
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
	return secret.Value(line), nil
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

// unattendedLogin is a tenant's password_command login running in the
// background. After a transient upstream failure it waits and tries again
// until it succeeds, fails for good, or is stopped: by logout, by the
// tenant's removal from the config, by another login or by Close.
type unattendedLogin struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has ended

	// Guarded by Agent.mu.
	attempts int       // transient failures in a row
	lastErr  string    // the last of them, for status
	retryAt  time.Time // when the next attempt runs; zero while one runs
	// attempt is closed when the attempt running now has ended, after it
	// installed its session if it got one; nil between attempts. Token
	// requests that need the login wait on it.
	attempt chan struct{}
}

// endAttemptLocked marks the running attempt, if any, as ended. The
// caller holds Agent.mu.
func (u *unattendedLogin) endAttemptLocked() {
	if u.attempt != nil {
		close(u.attempt)
		u.attempt = nil
	}
}

// loginBackoff returns the delay before unattended login attempt+1, after
// attempt transient failures in a row: the refresher's backoff, 1 s … 5 min
// with full jitter from rnd in [0, 1).
func loginBackoff(attempt int, rnd float64) time.Duration {
	return refresher.Backoff(attempt, rnd)
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
	ts := a.stateLocked(name)
	if a.closed || ts.unattended != nil {
		a.pruneLocked(name)
		a.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	// The first attempt counts as running from now, so that a token
	// request that caused this login finds it to wait for.
	u := &unattendedLogin{cancel: cancel, done: make(chan struct{}), attempt: make(chan struct{})}
	ts.unattended = u
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer close(u.done)
		defer cancel()
		defer func() {
			a.mu.Lock()
			u.endAttemptLocked()
			if ts := a.tenants[name]; ts != nil && ts.unattended == u {
				ts.unattended = nil
				a.pruneLocked(name)
			}
			a.mu.Unlock()
		}()
		a.unattended(ctx, u, name, why)
	}()
}

// stopUnattended stops the unattended login of name, if one runs or waits
// to retry, and clears the error it left. With wait it returns only once
// the login has ended, so that it cannot install a session afterwards. It
// reports whether there was one.
func (a *Agent) stopUnattended(name string, wait bool) bool {
	var u *unattendedLogin
	a.mu.Lock()
	if ts := a.tenants[name]; ts != nil && ts.unattended != nil {
		u = ts.unattended
		ts.unattended = nil
		if u.attempts > 0 {
			ts.loginErr = ""
		}
		a.pruneLocked(name)
	}
	a.mu.Unlock()
	if u == nil {
		return false
	}
	u.cancel()
	if wait {
		<-u.done
	}
	return true
}

// stopUnattendedRemoved stops the unattended logins of tenants that cfg
// removed or left without a password_command.
func (a *Agent) stopUnattendedRemoved(cfg *config.Config) {
	a.mu.Lock()
	var gone []string
	for name, ts := range a.tenants {
		if ts.unattended == nil {
			continue
		}
		if t := cfg.Lookup(name); t == nil || len(t.PasswordCommand) == 0 || t.Username == "" {
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	for _, name := range gone {
		a.stopUnattended(name, false)
		a.log.Info("password_command_login_stopped", "tenant", name, "reason", "tenant or its password_command removed from config")
	}
}

// loginRetryError is the answer to a token request for a tenant without a
// session whose unattended login is retrying, nil otherwise: upstream is
// what failed, not the user's credentials.
func (a *Agent) loginRetryError(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := a.tenants[name]
	if ts == nil {
		return nil
	}
	retrying, next := ts.retrying()
	if !retrying {
		return nil
	}
	msg := fmt.Sprintf("%s: the unattended login failed (%s)", name, ts.unattended.lastErr)
	if !next.IsZero() {
		msg += "; the agent tries again at " + next.UTC().Format(time.RFC3339)
	} else {
		msg += "; the agent is trying again"
	}
	return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: msg,
		Hint: "the agent keeps retrying; see tapis-token status"}
}

// awaitUnattended waits for the end of the password_command login attempt
// of tenant name that runs now, if one does, or for ctx. It reports
// whether there was one and it ended: the caller may then find a new
// session, or the attempt's error (see unattendedError).
func (a *Agent) awaitUnattended(ctx context.Context, name string) bool {
	a.mu.Lock()
	var attempt chan struct{}
	if ts := a.tenants[name]; ts != nil && ts.unattended != nil {
		attempt = ts.unattended.attempt
	}
	a.mu.Unlock()
	if attempt == nil {
		return false
	}
	select {
	case <-attempt:
		return true
	case <-ctx.Done():
		return false
	}
}

// unattendedError is the answer to a token request that waited for the
// unattended login of name in vain, or nil when the login left no error.
func (a *Agent) unattendedError(name string) error {
	if err := a.loginRetryError(name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ts := a.tenants[name]; ts != nil && ts.loginErr != "" {
		return &ipc.Error{Code: ipc.CodeLoginRequired, Message: ts.loginErr,
			Hint: "tapis-token login " + name + ", or fix password_command; tapis-token status shows the error"}
	}
	return nil
}

// unattended runs the password_command login of tenant name until it
// succeeds, fails definitively, or ctx ends. Transient upstream failures
// are retried with exponential backoff and full jitter.
func (a *Agent) unattended(ctx context.Context, u *unattendedLogin, name, why string) {
	log := a.log.With("tenant", name)
	had := a.session(name)
	for attempt := 1; ; attempt++ {
		t := a.Config().Lookup(name)
		if t == nil || len(t.PasswordCommand) == 0 || t.Username == "" {
			return
		}
		if attempt > 1 && a.session(name) != had {
			// Another login (the user's, or an import) came first.
			return
		}
		log.Info("password_command_login", "reason", why, "command", t.PasswordCommand[0], "attempt", attempt)
		msg, transient := a.unattendedOnce(ctx, log, name, t)
		if msg == "" || ctx.Err() != nil {
			return
		}
		if !transient {
			a.mu.Lock()
			u.attempts = 0 // status shows the error, not a retry
			a.stateLocked(name).loginErr = msg
			a.mu.Unlock()
			return
		}
		delay := loginBackoff(attempt, rand.Float64())
		next := a.opts.Now().Add(delay)
		a.mu.Lock()
		u.attempts, u.lastErr, u.retryAt = attempt, msg, next
		a.stateLocked(name).loginErr = msg
		u.endAttemptLocked()
		a.mu.Unlock()
		log.Warn("password_command_login_retry", "attempts", attempt, "retry_at", next, "retry_in", delay.String())
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		a.mu.Lock()
		u.retryAt = time.Time{}
		u.attempt = make(chan struct{})
		a.mu.Unlock()
		why = "retry after a transient failure"
	}
}

// unattendedOnce is one password_command login of tenant t. It returns ""
// on success, else the message for status and whether the failure was
// transient (upstream unavailable), worth retrying.
func (a *Agent) unattendedOnce(ctx context.Context, log *slog.Logger, name string, t *config.Tenant) (msg string, transient bool) {
	password, err := runPasswordCommand(ctx, t.PasswordCommand, a.opts.PasswordTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return "stopped", false
		}
		log.Warn("password_command_failed", "err", err)
		msg := err.Error()
		var ce *commandError
		if errors.As(err, &ce) {
			msg = ce.Detail()
		}
		return name + ": " + msg, false
	}
	_, err = a.passwordLogin(ctx, name, t, t.Username, password)
	if err == nil {
		return "", false
	}
	if ctx.Err() != nil {
		return "stopped", false
	}
	var ie *ipc.Error
	transient = errors.As(err, &ie) && ie.Code == ipc.CodeUpstreamUnavailable
	log.Warn("password_command_login_failed", "err", err, "transient", transient)
	msg = err.Error()
	if ie != nil {
		msg = ie.Message
	}
	return msg + " (password from password_command)", transient
}
