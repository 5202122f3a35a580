package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/launch"
	"github.com/tapis-agent/tapis-agent/internal/shell"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// shellFlags are the flags start and stop share.
type shellFlags struct {
	csh, sh, quiet bool
	socket         string
}

func (f *shellFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.csh, "c", false, "print csh commands")
	fs.BoolVar(&f.sh, "s", false, "print sh commands (the default unless $SHELL is a csh)")
	fs.BoolVar(&f.quiet, "q", false, "say nothing on stderr unless something fails")
	fs.StringVar(&f.socket, "socket", "", "socket path")
}

// useCsh reports whether to print csh syntax: -c, else $SHELL ending in
// csh (csh, tcsh) unless -s, as ssh-agent decides.
func (f *shellFlags) useCsh() bool {
	if f.csh || f.sh {
		return f.csh
	}
	return strings.HasSuffix(os.Getenv("SHELL"), "csh")
}

func (f *shellFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), fs.Arg(0))}
	}
	if f.csh && f.sh {
		return usageError{"-c and -s exclude each other: choose the syntax of your shell"}
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
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f shellFlags
	f.register(fs)
	cfgPath := fs.String("config", "", "config file")
	// No default: a level given here would override the config's log_level.
	level := fs.String("log-level", "", "log level of a new agent")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	a, err := launch.Start(ctx, launch.Options{Socket: f.socket, ConfigPath: *cfgPath, LogLevel: *level})
	if err != nil {
		return err
	}
	if a.Started {
		f.say(stderr, "started agent pid %d on %s (log: %s)", a.PID, f.socket, a.LogPath)
	} else {
		f.say(stderr, "agent pid %d already runs on %s", a.PID, f.socket)
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
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f shellFlags
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
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
