package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/launch"
	"github.com/tapis-agent/tapis-agent/internal/shell"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// shellFlags are the flags start and stop share.
type shellFlags struct {
	csh, sh, quiet bool
	socket         string
}

func (f *shellFlags) flags() []cmdline.Flag {
	return []cmdline.Flag{cmdline.BoolFlag("-c", &f.csh), cmdline.BoolFlag("-s", &f.sh), cmdline.BoolFlag("-q", &f.quiet),
		cmdline.ValueFlag("--socket", &f.socket)}
}

// useCsh reports whether to print csh syntax: -c, else $SHELL ending in
// csh (csh, tcsh) unless -s, as ssh-agent decides.
func (f *shellFlags) useCsh() bool {
	if f.csh || f.sh {
		return f.csh
	}
	return shell.IsCsh(os.Getenv("SHELL"))
}

// parse parses the command line of command name, with its own flags
// besides the shared ones.
func (f *shellFlags) parse(name string, args []string, own ...cmdline.Flag) error {
	pos, err := cmdline.ParseArgs(args, append(f.flags(), own...)...)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cmdline.Usage(fmt.Sprintf("%s takes no arguments, got %q", name, pos[0]))
	}
	if f.csh && f.sh {
		return cmdline.Usage("-c and -s exclude each other: choose the syntax of your shell")
	}
	if f.socket == "" {
		f.socket = ipc.SocketPath()
	}
	abs, err := filepath.Abs(f.socket)
	if err != nil {
		return fmt.Errorf("resolving socket path %s: %w", f.socket, err)
	}
	f.socket = abs
	return nil
}

// say writes a note on stderr unless -q.
func (f *shellFlags) say(stderr io.Writer, format string, a ...any) {
	if !f.quiet {
		fmt.Fprintf(stderr, "tapis-agent: "+format+"\n", a...)
	}
}

// start reuses the agent at the socket or starts one detached, then prints
// the shell commands that point TAPIS_AGENT_SOCK at it.
func start(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f shellFlags
	// No default level: one given here overrides the config's log_level.
	var cfgPath, level string
	if err := f.parse("start", args, cmdline.ValueFlag("--config", &cfgPath), cmdline.ValueFlag("--log-level", &level)); err != nil {
		return err
	}
	a, err := launch.Start(ctx, launch.Options{Socket: f.socket, ConfigPath: cfgPath, LogLevel: level})
	if err != nil {
		return err
	}
	if a.Started {
		f.say(stderr, "started agent pid %d on %s (log: %s)", a.PID, f.socket, a.LogPath)
	} else {
		f.say(stderr, "agent pid %d already runs on %s", a.PID, f.socket)
	}
	// Said even with -q: the agent runs, but not with what the file says.
	c := &ipcclient.Client{Path: f.socket}
	if st, err := c.Status(ctx); err == nil && st.ConfigError != "" {
		fmt.Fprintf(stderr, "tapis-agent: the config file is not in force: %s\ntapis-agent: hint: fix the file; the agent loads it once it is saved\n", st.ConfigError)
	}
	if f.useCsh() {
		fmt.Fprintf(stdout, "setenv TAPIS_AGENT_SOCK %s;\n", shell.Quote(f.socket))
	} else {
		fmt.Fprintf(stdout, "TAPIS_AGENT_SOCK=%s; export TAPIS_AGENT_SOCK;\n", shell.Quote(f.socket))
	}
	return nil
}

// stop asks the agent at the socket to exit, waits until it has, and
// prints the shell commands that unset TAPIS_AGENT_SOCK.
func stop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f shellFlags
	if err := f.parse("stop", args); err != nil {
		return err
	}
	pid, err := launch.Stop(ctx, f.socket)
	if err != nil {
		return err
	}
	f.say(stderr, "stopped agent pid %d", pid)
	if _, err := os.Lstat(f.socket); err == nil {
		f.say(stderr, "%s remains: systemd holds it and starts a new agent on the next call; "+
			"run systemctl --user stop tapis-agent.socket tapis-agent.service to stop for good", f.socket)
	}
	if f.useCsh() {
		fmt.Fprintln(stdout, "unsetenv TAPIS_AGENT_SOCK;")
	} else {
		fmt.Fprintln(stdout, "unset TAPIS_AGENT_SOCK;")
	}
	return nil
}
