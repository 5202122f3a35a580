// Package forward reaches the agent from another machine the ssh-agent
// way: an ssh connection whose remote forwarding (ssh -R) binds a socket
// on that machine to the agent's socket here, and a remote shell or
// command that finds it through TAPIS_AGENT_SOCK. It is what
// `tapis-agent forward HOST` runs, for compute nodes that cannot reach a
// login node's agent, whose socket is local to the login node.
//
// The agent sees every forwarded connection as coming from the ssh client,
// a process of the user's: on the far side, only the socket's directory
// (0700, made by mktemp -d) and the socket's mode (0600, as sshd binds it)
// keep other users out.
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/shell"
)

// SocketName is the name of the forwarded socket in the directory made on
// the remote host.
const SocketName = "agent.sock"

// maxSocketPath is the longest Unix socket path Linux binds (sun_path
// holds 108 bytes with the final NUL).
const maxSocketPath = 107

// Options say what Run runs.
type Options struct {
	// SSH is the ssh command and any options of its own; empty means
	// "ssh".
	SSH []string
	// Host is ssh's destination: a host name, user@host, or a Host of
	// ~/.ssh/config.
	Host string
	// Command is the remote command, as ssh takes it: its words joined by
	// spaces and run by sh. Empty means a login shell, on a terminal when
	// TTY is set.
	Command []string
	// TTY asks ssh for a terminal (ssh -t).
	TTY bool
	// LocalSocket is the agent's socket here, an absolute path.
	LocalSocket string
	// RemoteSocket is the socket's path on the remote host, whose
	// directory must exist there, be the user's and have mode 0700. ""
	// makes a fresh directory with mktemp -d, removed again when the
	// remote command ends.
	RemoteSocket string

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitError is ssh's exit status when it is not 0: ssh has printed why.
type ExitError struct {
	Step string // what the ssh run was for
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: ssh exited with status %d", e.Step, e.Code)
}

// Run makes the socket's directory on the remote host unless
// opts.RemoteSocket names one, then runs ssh with the forwarding and the
// remote command, and returns when ssh exits. A remote command that fails
// makes ssh exit with its status: an *ExitError.
func Run(ctx context.Context, opts Options) error {
	if !path.IsAbs(opts.LocalSocket) {
		return fmt.Errorf("forwarding the agent: the local socket %q is not an absolute path", opts.LocalSocket)
	}
	sshCmd := opts.SSH
	if len(sshCmd) == 0 {
		sshCmd = []string{"ssh"}
	}
	remote, cleanup := opts.RemoteSocket, ""
	if remote == "" {
		dir, err := makeRemoteDir(ctx, sshCmd, opts)
		if err != nil {
			return err
		}
		remote, cleanup = path.Join(dir, SocketName), dir
	}
	args := append(append([]string{}, sshCmd[1:]...), Args(opts.LocalSocket, remote, opts.TTY)...)
	args = append(args, opts.Host, RemoteCommand(remote, cleanup, opts.Command))
	cmd := exec.CommandContext(ctx, sshCmd[0], args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	return exitError("running ssh "+opts.Host, cmd.Run())
}

// Args are the ssh options that forward remote to local: ssh -R, failing
// when the forwarding does (else ssh goes on without it, and exits 0).
func Args(local, remote string, tty bool) []string {
	args := []string{"-o", "ExitOnForwardFailure=yes", "-R", remote + ":" + local}
	if tty {
		args = append(args, "-t")
	}
	return args
}

// RemoteCommand is the command line ssh runs on the remote host: sh sets
// TAPIS_AGENT_SOCK to remote and runs command (its words joined by
// spaces, as ssh runs one), or the user's login shell; then it removes
// dir, unless that is "".
func RemoteCommand(remote, dir string, command []string) string {
	var b strings.Builder
	if dir != "" {
		// The directory goes when the command ends, and when the
		// connection drops (SIGHUP) or the session is stopped.
		q := shell.Quote("rm -rf " + shell.Quote(dir))
		b.WriteString("trap " + q + " EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; ")
	}
	b.WriteString("TAPIS_AGENT_SOCK=" + shell.Quote(remote) + "; export TAPIS_AGENT_SOCK; ")
	if len(command) == 0 {
		b.WriteString(`"${SHELL:-/bin/sh}" -l`)
	} else {
		b.WriteString(strings.Join(command, " "))
	}
	// Not exec: the trap must run after the command.
	return "sh -c " + shell.Quote(b.String())
}

// mkdirScript makes a private directory in the remote host's TMPDIR and
// prints its path.
const mkdirScript = `umask 077 && mktemp -d "${TMPDIR:-/tmp}/tapis-agent-fwd.XXXXXXXXXX"`

// makeRemoteDir makes the socket's directory on the remote host with a
// first ssh run: sshd binds the forwarded socket as the user, but makes no
// directory for it.
func makeRemoteDir(ctx context.Context, sshCmd []string, opts Options) (string, error) {
	args := append(append([]string{}, sshCmd[1:]...), "-T", opts.Host, "sh -c "+shell.Quote(mkdirScript))
	cmd := exec.CommandContext(ctx, sshCmd[0], args...)
	cmd.Stdin = opts.Stdin
	cmd.Stderr = opts.Stderr
	out, err := cmd.Output()
	const step = "making the socket's directory on "
	if err != nil {
		return "", exitError(step+opts.Host, err)
	}
	dir, err := ParseDir(string(out))
	if err != nil {
		return "", fmt.Errorf("%s%s: %w", step, opts.Host, err)
	}
	return dir, nil
}

// ParseDir checks the directory that the remote mktemp printed: one
// absolute path, short enough for a socket in it, and of characters
// that need no quoting anywhere.
func ParseDir(out string) (string, error) {
	dir := strings.TrimSuffix(out, "\n")
	switch {
	case dir == "" || strings.ContainsAny(dir, "\n\r"):
		return "", fmt.Errorf("mktemp printed %q, not one directory", out)
	case !path.IsAbs(dir) || path.Clean(dir) != dir:
		return "", fmt.Errorf("mktemp printed %q, not an absolute path", dir)
	case shell.Quote(dir) != dir:
		return "", fmt.Errorf("mktemp printed %q, which holds characters other than letters, digits and /._-+,:@%%=; set TMPDIR on that host to a plainer directory", dir)
	case len(dir)+1+len(SocketName) > maxSocketPath:
		return "", fmt.Errorf("mktemp printed %q, too long for a socket in it (at most %d bytes); set TMPDIR on that host to a shorter directory", dir, maxSocketPath-1-len(SocketName))
	}
	return dir, nil
}

// exitError turns ssh's failure to exit 0 into an *ExitError.
func exitError(step string, err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &ExitError{Step: step, Code: ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}
