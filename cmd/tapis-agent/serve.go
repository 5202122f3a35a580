package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/agent"
	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
)

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
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", *level)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if *socket == "" {
		*socket = ipc.SocketPath()
	}
	if *cfgPath == "" {
		*cfgPath = config.DefaultPath()
	}

	ln, err := ipcserver.Listen(*socket)
	if err != nil {
		return err
	}

	// reloadMu serialises reloads from SIGHUP, the watcher and the socket.
	var reloadMu sync.Mutex
	var a *agent.Agent
	reload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		if _, err := os.Stat(*cfgPath); os.IsNotExist(err) && len(a.Config().Tenants) > 0 {
			// Some editors delete the file before writing the new one: a
			// vanished file must not log out every tenant. Emptying the
			// file is the way to drop them all.
			log.Warn("config_missing", "path", *cfgPath, "action", "keeping the tenants in force")
			return nil
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			a.SetConfigError(err)
			return err
		}
		a.ApplyConfig(cfg)
		return nil
	}
	a = agent.New(agent.Options{
		Logger:  log,
		Version: version,
		Socket:  *socket,
		Reload:  reload,
	})
	defer a.Close()
	if err := reload(); err != nil {
		// Start anyway: the error shows in status, and fixing the file
		// reloads it. Refusing to start would leave the user with nothing.
		log.Error("config_invalid", "path", *cfgPath, "err", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("reload", "reason", "SIGHUP")
				_ = reload()
			}
		}
	}()
	go func() {
		err := config.Watch(ctx, *cfgPath, 200*time.Millisecond, func() {
			log.Info("reload", "reason", "config file changed")
			_ = reload()
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("config_watch_failed", "path", *cfgPath, "err", err)
		}
	}()

	log.Info("serving", "socket", *socket, "config", *cfgPath, "version", version, "pid", os.Getpid())
	err = ipcserver.New(a, log).Serve(ctx, ln)
	log.Info("stopped")
	return err
}
