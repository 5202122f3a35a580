package main

import (
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

// Flags that several commands share.
var (
	socketFlag = cmdline.FlagHelp{Names: "--socket PATH", Doc: "the agent's socket (default: $TAPIS_AGENT_SOCK, else " +
		"$XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on macOS ~/Library/Application Support/tapis-agent/agent.sock, " +
		"else /tmp/tapis-agent-$UID/agent.sock)"}
	configFlag = cmdline.FlagHelp{Names: "--config PATH", Doc: "the config file (default: $TAPIS_AGENT_CONFIG, else " +
		"$XDG_CONFIG_HOME/tapis-agent/config.toml, else ~/.config/tapis-agent/config.toml)"}
	levelFlag  = cmdline.FlagHelp{Names: "--log-level LEVEL", Doc: "debug, info, warn or error (default: the config's log_level, else info)"}
	syntaxFlag = cmdline.FlagHelp{Names: "-c, -s", Doc: "print csh or sh commands (default: sh, unless $SHELL is a csh)"}
	quietFlag  = cmdline.FlagHelp{Names: "-q", Doc: "nothing on stderr unless something fails"}
)

// commands is the help of every tapis-agent command: `tapis-agent help`
// lists them, and `tapis-agent CMD --help` and `tapis-agent help CMD`
// print one. A new command adds its entry here and its case to run.
var commands = []cmdline.Command{
	{
		Name:    "serve",
		Usage:   []string{"serve [--socket PATH] [--config PATH] [--log-level LEVEL]"},
		Summary: "run the agent in the foreground, logging to stderr (systemd starts it so)",
		About: "Stops cleanly on SIGINT or SIGTERM: answers in flight finish, tokens are dropped, the socket is removed. " +
			"SIGHUP re-reads the config.",
		Flags:   []cmdline.FlagHelp{socketFlag, configFlag, levelFlag},
		Example: []string{"tapis-agent serve --log-level debug"},
	},
	{
		Name:    "start",
		Usage:   []string{"start [-c | -s] [-q] [--socket PATH] [--config PATH] [--log-level LEVEL]"},
		Summary: "start an agent in the background unless one runs, and print the shell commands that point tapis-token at it",
		About: "A started agent logs to $XDG_STATE_HOME/tapis-agent/agent.log (default ~/.local/state/tapis-agent/agent.log). " +
			"Put the example into ~/.bashrc: every shell then finds the one agent.",
		Flags:   []cmdline.FlagHelp{syntaxFlag, quietFlag, socketFlag, configFlag, levelFlag},
		Example: []string{`eval "$(tapis-agent start)"`},
	},
	{
		Name:    "stop",
		Usage:   []string{"stop [-c | -s] [-q] [--socket PATH]"},
		Summary: "stop the running agent and print the shell commands that unset TAPIS_AGENT_SOCK; its sessions are lost",
		Flags:   []cmdline.FlagHelp{syntaxFlag, quietFlag, socketFlag},
		Example: []string{`eval "$(tapis-agent stop)"`},
	},
	{
		Name:    "forward",
		Usage:   []string{"forward [--socket PATH] [--remote-socket PATH] HOST [COMMAND [ARG]...]"},
		Summary: "log in to HOST (a compute node) with ssh, the agent's socket forwarded there, as ssh -A forwards ssh-agent",
		About: "Runs ssh twice: once to make a private directory on HOST (mktemp -d), then with -R to bind a socket there to the agent's, " +
			"and a login shell or COMMAND with TAPIS_AGENT_SOCK naming it, so that tapis-token and the Python client on HOST reach the agent here. " +
			"The directory is removed when the shell or COMMAND ends. COMMAND is run as ssh runs one: its words joined by spaces, by sh. " +
			"$TAPIS_AGENT_SSH is the ssh command to run, with options of its own (default: ssh). Exits with ssh's status.",
		Flags: []cmdline.FlagHelp{socketFlag,
			{Names: "--remote-socket PATH", Doc: "bind the socket at PATH on HOST, in a directory of yours with mode 0700 that exists there, instead of a fresh one"}},
		Example: []string{"tapis-agent forward c401-001", "tapis-agent forward c401-001 jupyter lab --no-browser"},
	},
	{
		Name:    "version",
		Usage:   []string{"version"},
		Summary: "print the version",
	},
	{
		Name:    "help",
		Usage:   []string{"help [COMMAND]"},
		Summary: "print this help, or a command's",
		Example: []string{"tapis-agent help start"},
	},
}

// usage is the program's help.
func usage() string {
	var b strings.Builder
	b.WriteString(`usage: tapis-agent COMMAND [FLAG]...

The agent holds your Tapis sessions in memory and keeps their access tokens
fresh; tapis-token asks it for them.

Commands:
`)
	b.WriteString(cmdline.CommandList(commands))
	b.WriteString(`
tapis-agent COMMAND --help, or tapis-agent help COMMAND, says more.
`)
	return b.String()
}
