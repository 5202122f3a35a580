// Command tapis-agent is the per-user daemon that holds Tapis sessions in
// memory and serves fresh access tokens over a Unix socket.
//
//	tapis-agent serve [--socket PATH] [--config PATH] [--log-level LEVEL]
//	tapis-agent start [-c | -s] [-q] [--socket PATH] [--config PATH] [--log-level LEVEL]
//	tapis-agent stop [-c | -s] [-q] [--socket PATH]
//	tapis-agent forward [--socket PATH] [--remote-socket PATH] HOST [COMMAND [ARG]...]
//	tapis-agent version
//	tapis-agent help [COMMAND]
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
	"github.com/tapis-agent/tapis-agent/internal/forward"
	"github.com/tapis-agent/tapis-agent/internal/tokencli"
)

func main() {
	if filepath.Base(os.Args[0]) == "tapis-token" {
		tokencli.Version = versionLine()
		os.Exit(tokencli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err, if any, on stderr, and returns the exit code: a
// usage error's line, its usage lines and a hint (exit 2); any other
// error's line (exit 1).
func report(err error, stderr io.Writer) int {
	if err == nil {
		return cmdline.ExitOK
	}
	var ee *forward.ExitError
	if errors.As(err, &ee) {
		// 255 is ssh's own failure, which says what went wrong but not
		// in which step; any other status is the remote command's.
		if ee.Code == 255 {
			fmt.Fprintf(stderr, "tapis-agent: %v\n", ee)
		}
		return ee.Code
	}
	var f *cmdline.Failure
	if errors.As(err, &f) {
		fmt.Fprintf(stderr, "tapis-agent: %s\n%s", f.Msg, f.Usage)
		if f.Hint != "" {
			fmt.Fprintf(stderr, "tapis-agent: hint: %s\n", f.Hint)
		}
		return f.Code
	}
	fmt.Fprintf(stderr, "tapis-agent: %v\n", err)
	return cmdline.ExitError
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "no command given",
			Usage: "usage: tapis-agent COMMAND [FLAG]...\n", Hint: "tapis-agent help lists the commands"}
	}
	name := args[0]
	cmd := cmdline.FindCommand(commands, name)
	own := args // the words that may ask for help
	if name == "forward" {
		own = args[:1+forwardHost(args[1:])] // the rest is the remote command's
	}
	if cmdline.WantsHelp(own) {
		text := usage()
		if cmd != nil {
			text = cmd.Help("tapis-agent")
		}
		_, err := io.WriteString(stdout, text)
		return err
	}
	var err error
	switch name {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "start":
		err = start(ctx, args[1:], stdout, stderr)
	case "stop":
		err = stop(ctx, args[1:], stdout, stderr)
	case "forward":
		err = forwardCmd(ctx, args[1:], os.Stdin, stdout, stderr)
	case "help":
		var text string
		if text, err = cmdline.HelpText("tapis-agent", commands, usage(), args[1:]); err == nil {
			_, err = io.WriteString(stdout, text)
		}
	case "version", "--version":
		if len(args) > 1 {
			err = cmdline.Usage("version takes no arguments")
		} else {
			cmdline.Info(name, "tapis-agent", versionLine(), "", stdout)
		}
	default:
		return cmdline.UnknownCommand("tapis-agent", commands, "unknown command ", name)
	}
	return cmdline.WithUsage(err, "tapis-agent", cmd)
}
