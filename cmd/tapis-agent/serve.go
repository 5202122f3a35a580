package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/daemon"
	"github.com/tapis-agent/tapis-agent/internal/logflood"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// serve runs the agent in the foreground until ctx is done.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var socket, cfgPath, level string
	pos, err := cmdline.ParseArgs(args,
		cmdline.ValueFlag("--socket", &socket), cmdline.ValueFlag("--config", &cfgPath), cmdline.ValueFlag("--log-level", &level))
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cmdline.Usage(fmt.Sprintf("serve takes no arguments, got %q", pos[0]))
	}
	var lvl slog.LevelVar
	// The level follows the config's log_level, unless --log-level was
	// given: the command line wins.
	configLevel := &lvl
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return cmdline.Usage(fmt.Sprintf("--log-level %q: use debug, info, warn or error", level))
		}
		configLevel = nil
	}
	// The daemon starts whatever the file holds, and logs what is wrong;
	// a person starting it by hand reads this first.
	if cfgPath == "" {
		cfgPath = config.DefaultPath()
	}
	if _, err := config.Load(cfgPath); err != nil {
		fmt.Fprintf(stderr, "tapis-agent: %v\ntapis-agent: starting without this config; the agent loads the file once it is fixed\n", err)
	}
	// A warning repeated thousands of times a second (file descriptors
	// exhausted, a hostile client) is logged once a minute with a count.
	log := slog.New(logflood.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &lvl}), time.Minute))
	warnings := daemon.Harden(log)
	if socket == "" {
		socket = ipc.SocketPath()
	}
	ln, activated, err := daemon.Listen(socket, log)
	if err != nil {
		return err
	}
	d, err := daemon.New(daemon.Options{
		Socket:     ln.Addr().String(),
		Activated:  activated,
		ConfigPath: cfgPath,
		Logger:     log,
		Level:      configLevel,
		Version:    version,
		Warnings:   warnings,
		HostsDir:   ipc.HostsDir(),
	})
	if err != nil {
		ln.Close()
		return err
	}
	return d.Serve(ctx, ln)
}
