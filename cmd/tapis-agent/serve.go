package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
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
	// The level changes with the config's log_level, unless --log-level
	// was given: the command line wins.
	var lvl slog.LevelVar
	levelGiven := false
	fs.Visit(func(f *flag.Flag) { levelGiven = levelGiven || f.Name == "log-level" })
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", *level)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: &lvl}))
	// Before any secret enters memory.
	for _, w := range harden() {
		log.Warn("hardening_incomplete", "detail", w)
	}
	if *socket == "" {
		*socket = ipc.SocketPath()
	}
	if *cfgPath == "" {
		*cfgPath = config.DefaultPath()
	}

	ln, activated, err := listen(*socket)
	if err != nil {
		return err
	}
	if activated {
		if p := ln.Addr().String(); p != *socket {
			log.Info("socket_activated", "socket", p, "ignored", *socket)
			*socket = p
		}
	}
	n := newNotifier(log)

	// reloadMu serialises reloads from SIGHUP, the watcher and the socket.
	var reloadMu sync.Mutex
	var a *agent.Agent
	loaded := false // a config was put in force
	load := func() error {
		if _, err := os.Stat(*cfgPath); os.IsNotExist(err) && len(a.Config().Tenants) > 0 {
			// Some editors delete the file before writing the new one, and
			// a file deleted by mistake must not log out every tenant: the
			// config stays, and status says so until a file is back.
			// Emptying the file is the way to drop them all.
			log.Warn("config_missing", "path", *cfgPath, "action", "keeping the last loaded config")
			a.SetConfigError(fmt.Errorf("config file %s was removed; the last loaded config stays in force until it is back", *cfgPath))
			return nil
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			log.Error("config_invalid", "path", *cfgPath, "err", err)
			if !loaded {
				err = fmt.Errorf("%w\nno config was loaded: the agent runs without configured tenants until the file is fixed", err)
			}
			a.SetConfigError(err)
			return err
		}
		loaded = true
		if !levelGiven {
			setLogLevel(log, &lvl, cfg.LogLevel)
		}
		a.ApplyConfig(cfg)
		return nil
	}
	// reload is load while the agent runs, framed for systemd.
	reload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		n.reloading()
		err := load()
		n.ready(statusOf(a))
		return err
	}
	a = agent.New(agent.Options{
		Logger:  log,
		Version: version,
		Socket:  *socket,
		Reload:  reload,
	})
	defer a.Close()
	// On an error, start anyway: it shows in status and the log, and
	// fixing the file reloads it. Refusing to start would leave the user
	// with nothing.
	_ = load()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// STOPPING=1 as soon as shutdown begins, not when it ends; and sent
	// before the process exits, which would otherwise lose it.
	stopSent := make(chan struct{})
	stopNotify := context.AfterFunc(ctx, func() { n.stopping(); close(stopSent) })
	defer func() {
		if !stopNotify() {
			<-stopSent
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("reload", "reason", "SIGHUP")
				_ = reload()
			}
		}
	})
	wg.Go(func() {
		err := config.Watch(ctx, *cfgPath, 200*time.Millisecond, func() {
			log.Info("reload", "reason", "config file changed")
			_ = reload()
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("config_watch_failed", "path", *cfgPath, "err", err)
		}
	})
	wg.Go(func() { n.run(ctx, func() (*ipc.StatusResponse, error) { return a.Status(ctx) }) })

	log.Info("serving", "socket", *socket, "activated", activated, "config", *cfgPath, "version", version, "pid", os.Getpid())
	// The listener accepts already: connections queue until Serve takes them.
	n.ready(statusOf(a))
	err = ipcserver.New(a, log).Serve(ctx, ln)
	log.Info("stopped")
	return err
}

// listen returns the socket systemd passed (socket activation), else a new
// one at path. It reports whether the socket came from systemd: systemd
// owns that file, and closing the listener leaves it in place.
func listen(path string) (net.Listener, bool, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("taking the sockets systemd passed: %w", err)
	}
	switch len(lns) {
	case 0:
		ln, err := ipcserver.Listen(path)
		return ln, false, err
	case 1:
		if ul, ok := lns[0].(*net.UnixListener); ok {
			return ul, true, nil
		}
		if lns[0] != nil {
			lns[0].Close()
			return nil, false, fmt.Errorf("systemd passed a %s socket; tapis-agent.socket needs ListenStream= with a path", lns[0].Addr().Network())
		}
		return nil, false, fmt.Errorf("systemd passed a socket that is not a stream socket; tapis-agent.socket needs ListenStream= with a path")
	default:
		for _, l := range lns {
			if l != nil {
				l.Close()
			}
		}
		return nil, false, fmt.Errorf("systemd passed %d sockets; tapis-agent.socket must have exactly one ListenStream=", len(lns))
	}
}

// setLogLevel puts the config's log_level in force: name is one of
// config.LogLevels, or "" for info.
func setLogLevel(log *slog.Logger, lvl *slog.LevelVar, name string) {
	want := slog.LevelInfo
	if name != "" {
		if err := want.UnmarshalText([]byte(name)); err != nil {
			return // config.Load accepts only valid names
		}
	}
	old := lvl.Level()
	if old == want {
		return
	}
	// Logged at the more verbose of the two levels, while it is in force.
	if want < old {
		lvl.Set(want)
	}
	log.Log(context.Background(), min(old, want), "log_level_changed", "from", old, "to", want)
	lvl.Set(want)
}

// statusOf is the agent's status line for systemd.
func statusOf(a *agent.Agent) string {
	st, err := a.Status(context.Background())
	if err != nil {
		return "status unavailable: " + err.Error()
	}
	return statusLine(st)
}
