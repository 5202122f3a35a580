// Command tapis-agent is the per-user daemon that holds Tapis sessions in
// memory and serves fresh access tokens over a Unix socket.
//
//	tapis-agent serve [--socket PATH] [--config PATH] [--log-level LEVEL]
//	tapis-agent start [-c | -s] [-q] [--socket PATH] [--config PATH]
//	tapis-agent stop [-c | -s] [-q] [--socket PATH]
//	tapis-agent version
//
// Started under the name tapis-token (as tapis-token executes it for every
// command but the token itself), it runs that command line instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/tokencli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if filepath.Base(os.Args[0]) == "tapis-token" {
		tokencli.Version = version
		os.Exit(tokencli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tapis-agent: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: tapis-agent COMMAND [flags]

Commands:
  serve     run the agent in the foreground (systemd starts it so)
  start     start an agent in the background unless one runs, and print
            the shell commands that point tapis-token at it:
              eval "$(tapis-agent start)"     (in ~/.bashrc)
  stop      stop the running agent; its sessions are lost
  version   print the version

Flags:
  --socket PATH     the agent's socket (default: $TAPIS_AGENT_SOCK, else
                    $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on
                    macOS ~/Library/Application Support/tapis-agent/agent.sock,
                    else /tmp/tapis-agent-$UID/agent.sock)
  --config PATH     config file, serve and start (default: $TAPIS_AGENT_CONFIG,
                    else $XDG_CONFIG_HOME/tapis-agent/config.toml)
  --log-level LEVEL debug, info, warn or error, serve and start (default: the
                    config's log_level, else info)
  -c, -s            start and stop: print csh or sh commands (default: sh,
                    unless $SHELL is a csh)
  -q                start and stop: nothing on stderr unless something fails

A started agent logs to $XDG_STATE_HOME/tapis-agent/agent.log
(default ~/.local/state/tapis-agent/agent.log; on macOS
~/Library/Logs/tapis-agent/agent.log).
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "start":
		return start(ctx, args[1:], stdout, stderr)
	case "stop":
		return stop(ctx, args[1:], stdout, stderr)
	}
	if cmdline.Info(args[0], "tapis-agent", version, usage, stdout) {
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
