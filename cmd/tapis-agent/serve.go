package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tapis-agent/tapis-agent/internal/daemon"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// serve runs the agent in the foreground until ctx is done.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "socket path")
	cfgPath := fs.String("config", "", "config file")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Arg(0))}
	}
	var lvl slog.LevelVar
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", *level)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &lvl}))
	// The level follows the config's log_level, unless --log-level was
	// given: the command line wins.
	configLevel := &lvl
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "log-level" {
			configLevel = nil
		}
	})
	daemon.Harden(log)
	if *socket == "" {
		*socket = ipc.SocketPath()
	}
	ln, activated, err := daemon.Listen(*socket, log)
	if err != nil {
		return err
	}
	d, err := daemon.New(daemon.Options{
		Socket:     ln.Addr().String(),
		Activated:  activated,
		ConfigPath: *cfgPath,
		Logger:     log,
		Level:      configLevel,
		Version:    version,
		HostsDir:   ipc.HostsDir(),
	})
	if err != nil {
		ln.Close()
		return err
	}
	return d.Serve(ctx, ln)
}
