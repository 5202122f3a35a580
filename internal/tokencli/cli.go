// Package tokencli is the command line of tapis-token, which prints a
// fresh Tapis access token held by tapis-agent and manages the agent's
// sessions:
//
//	curl -H @<(tapis-token -H designsafe) https://designsafe.tapis.io/v3/systems
//
// tapis-token is started for every such call, so its binary holds only
// package hot, the token path; every other command line runs Main inside
// the tapis-agent binary, which tapis-token executes for it under the
// name tapis-token (see cmd/tapis-token). A binary that initialises
// fewer packages starts faster.
package tokencli

import (
	"context"
	"io"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

// Version is what `tapis-token version` prints; the binary's main sets it.
var Version = "dev"

// Main runs one tapis-token command line and returns the exit code. ctx
// bounds the calls to the agent.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cmdline.Report(dispatch(ctx, args, stdin, stdout, stderr), stderr)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	name := ""
	if len(args) > 0 && cmdline.IsCommand(args[0]) {
		name = args[0]
	}
	cmd := cmdline.FindCommand(Commands, name)
	if cmd == nil {
		cmd = &tokenCommand
	}
	// --help anywhere among a command's flags prints its help, as git and
	// go do; the token command line's help is the program's.
	if cmdline.WantsHelp(args) {
		text := usage()
		if name != "" && name != "-h" && name != "--help" {
			text = cmd.Help("tapis-token")
		}
		_, err := io.WriteString(stdout, text)
		return err
	}
	return cmdline.WithUsage(run(ctx, name, args, stdin, stdout, stderr), "tapis-token", cmd)
}

// run runs command name ("" for the token command line) with args, the
// whole command line.
func run(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch name {
	case "login":
		return cmdLogin(ctx, args[1:], stdin, stderr)
	case "logout":
		return cmdLogout(ctx, args[1:], stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout)
	case "claims":
		return cmdClaims(ctx, args[1:], stdout)
	case "import":
		return cmdImport(ctx, args[1:], stdin, stderr)
	case "exec":
		return cmdExec(ctx, args[1:])
	case "lease":
		return cmdLease(ctx, args[1:], stdout, stderr)
	case "sbatch":
		return cmdSbatch(ctx, args[1:], stdout, stderr)
	case "help":
		text, err := cmdline.HelpText("tapis-token", Commands, usage(), args[1:])
		if err == nil {
			_, err = io.WriteString(stdout, text)
		}
		return err
	case "":
		return cmdToken(ctx, args, stdout, stderr)
	}
	if cmdline.Info(name, "tapis-token", Version, "", stdout) {
		return nil
	}
	return cmdToken(ctx, args, stdout, stderr)
}
