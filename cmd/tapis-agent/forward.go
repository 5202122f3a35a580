package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/forward"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// forwardCmd runs `forward [--socket PATH] [--remote-socket PATH] HOST
// [COMMAND [ARG]...]`: the flags come before HOST, and everything after
// it is the remote command, as with ssh.
func forwardCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var socket, remote string
	flags := []cmdline.Flag{cmdline.ValueFlag("--socket", &socket), cmdline.ValueFlag("--remote-socket", &remote)}
	host := forwardHost(args)
	if _, err := cmdline.ParseArgs(args[:host], flags...); err != nil {
		return err
	}
	if host == len(args) {
		return cmdline.Usage("forward needs a HOST")
	}
	if remote != "" && !filepath.IsAbs(remote) {
		return cmdline.Usage(fmt.Sprintf("--remote-socket %q: give an absolute path on the remote host", remote))
	}
	if socket == "" {
		socket = ipc.SocketPath()
	}
	socket, err := filepath.Abs(socket)
	if err != nil {
		return fmt.Errorf("resolving socket path %s: %w", socket, err)
	}
	// A forward to no agent would fail only at the first call there.
	if _, err := (&ipcclient.Client{Path: socket}).Status(ctx); err != nil {
		if errors.Is(err, ipc.ErrAgentUnreachable) {
			return &cmdline.Failure{Code: cmdline.ExitUnreachable, Msg: "no agent answers at " + socket + " to forward",
				Hint: `start one and log in: eval "$(tapis-agent start)"; tapis-token login`}
		}
		return err
	}
	command := args[host+1:]
	opts := forward.Options{
		SSH:          strings.Fields(os.Getenv("TAPIS_AGENT_SSH")),
		Host:         args[host],
		Command:      command,
		TTY:          len(command) == 0 && isTerminal(stdin),
		LocalSocket:  socket,
		RemoteSocket: remote,
		Stdin:        stdin, Stdout: stdout, Stderr: stderr,
	}
	return forward.Run(ctx, opts)
}

// forwardHost returns the index of HOST in forward's arguments args, or
// len(args): the first argument that is no flag or a flag's value, or the
// one after "--".
func forwardHost(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return min(i+1, len(args))
		case !strings.HasPrefix(a, "-"):
			return i
		case a == "-h" || a == "--help":
		case !strings.Contains(a, "="):
			i++ // every other flag of forward takes a value
		}
	}
	return len(args)
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
