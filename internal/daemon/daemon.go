// Package daemon runs tapis-agent as a daemon: an agent.Agent served on a
// Unix socket, its config loaded from a file and reloaded when the file
// changes, on SIGHUP and on request over the socket, and systemd kept
// informed through sd_notify (readiness, reloads, a status line and
// watchdog pings).
//
// A daemon starts in this order:
//
//	daemon.Harden(log)                               // before any secret enters memory
//	ln, activated, err := daemon.Listen(socket, log) // or the socket systemd passed
//	d, err := daemon.New(daemon.Options{Socket: ln.Addr().String(), …})
//	err = d.Serve(ctx, ln)
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/agent"
	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
	"github.com/tapis-agent/tapis-agent/lease"
)

// watchDebounce is how long the config watcher waits for a burst of
// writes to a config file to end before it reloads.
const watchDebounce = 200 * time.Millisecond

// settleDelay is how long a config file that would end a session must
// stay unchanged before it is put in force. A save that truncates the file
// and writes it later (cat >, some editors, a slow network file system)
// shows an empty or cut file for longer than watchDebounce; applying that
// would log out every tenant it lost, and a file cut between two tenants,
// or inside one, loses some of them only.
const settleDelay = 5 * time.Second

// Options configure a Daemon.
type Options struct {
	// Socket is the path of the listener Serve gets; status reports it.
	// It must not be empty.
	Socket string
	// Activated reports whether systemd passed the listener (see Listen).
	// It is only logged.
	Activated bool
	// ConfigPath is the config file; "" means config.DefaultPath().
	ConfigPath string
	// Logger receives the daemon's and the agent's logs; nil discards them.
	Logger *slog.Logger
	// Level is the level of Logger's handler, which the config's log_level
	// sets (info when unset) at every load. Nil leaves the level as it is:
	// a level given on the command line wins over the config.
	Level *slog.LevelVar
	// Version is reported by status and logged.
	Version string
	// Warnings are the agent's own, for status: what Harden could not do.
	Warnings []string
	// HostsDir is where Serve records on which host the agent runs (see
	// ipc.WriteHostRecord), for tapis-token on other nodes of a cluster
	// that shares the home directory; "" records nothing.
	HostsDir string
}

// Daemon is the agent of one socket and one config file. Create it with
// New; its methods are safe for concurrent use.
type Daemon struct {
	log        *slog.Logger
	level      *slog.LevelVar // nil: the level is not the config's
	socket     string
	activated  bool
	configPath string
	version    string
	hostsDir   string
	agent      *agent.Agent
	notify     *notifier

	settle time.Duration // settleDelay; tests shorten it

	loadMu      sync.Mutex      // serialises loads of the config; guards the fields below
	loaded      bool            // a config was put in force
	serveCtx    context.Context // Serve's; nil before Serve and after it returns
	pending     fileSig         // the file that would end sessions, when first seen as it is; zero for none
	pendingAt   time.Time       // when pending was first seen
	settleTimer *time.Timer     // reloads once pending has settled; nil when none is due
}

// fileSig tells versions of a file apart without reading it.
type fileSig struct {
	ino, size int64
	mtime     time.Time
}

// New returns a Daemon with an agent of no tenants: Serve loads the config.
// New changes nothing outside the Daemon; harden the process (Harden)
// before.
func New(opts Options) (*Daemon, error) {
	if opts.Socket == "" {
		return nil, errors.New("creating the daemon: no socket path")
	}
	if opts.ConfigPath == "" {
		opts.ConfigPath = config.DefaultPath()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{
		log:        opts.Logger,
		level:      opts.Level,
		socket:     opts.Socket,
		activated:  opts.Activated,
		configPath: opts.ConfigPath,
		version:    opts.Version,
		hostsDir:   opts.HostsDir,
		notify:     newNotifier(opts.Logger),
		settle:     settleDelay,
	}
	d.agent = agent.New(agent.Options{
		Logger:  opts.Logger,
		Version: opts.Version,
		Socket:  opts.Socket,
		Reload:  d.ReloadAsked,
		// The leases of an earlier agent are found there, and warned of.
		LeaseDir: lease.Dir(),
		Warnings: opts.Warnings,
	})
	return d, nil
}

// Serve loads the config and serves the agent on ln until ctx is done,
// then closes ln and the agent: every secret it holds is dropped. Call it
// once. While it runs, the config is reloaded on SIGHUP and when the file
// changes, and systemd hears of readiness, reloads, the agent's status and
// the shutdown (with NOTIFY_SOCKET set).
//
// A config that does not load does not stop the daemon: the error shows
// in status and the log, and fixing the file reloads it. Refusing to start
// would leave the user with nothing.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	defer d.agent.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.loadMu.Lock()
	d.serveCtx = ctx
	_ = d.loadLocked(true) // no session yet to wait for
	d.loadMu.Unlock()
	defer func() {
		d.loadMu.Lock()
		d.serveCtx = nil
		if d.settleTimer != nil {
			d.settleTimer.Stop()
		}
		d.loadMu.Unlock()
	}()

	// STOPPING=1 as soon as shutdown begins, not when it ends; and sent
	// before Serve returns, which may end the process.
	stopSent := make(chan struct{})
	stopNotify := context.AfterFunc(ctx, func() { d.notify.stopping(); close(stopSent) })
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
				d.log.Info("reload", "reason", "SIGHUP")
				_ = d.ReloadAsked()
			}
		}
	})
	wg.Go(func() {
		err := config.Watch(ctx, d.configPath, watchDebounce, func() {
			d.log.Info("reload", "reason", "config file changed")
			_ = d.Reload()
		})
		if err != nil && ctx.Err() == nil {
			d.log.Warn("config_watch_failed", "path", d.configPath, "err", err)
		}
	})
	wg.Go(func() {
		d.notify.run(ctx, func() (*ipc.StatusResponse, error) { return d.agent.Status(ctx) })
	})

	d.log.Info("serving", "socket", d.socket, "activated", d.activated, "config", d.configPath, "version", d.version, "pid", os.Getpid())
	if rec, ok := d.recordHost(); ok {
		defer ipc.RemoveHostRecord(d.hostsDir, rec)
	}
	// The listener accepts already: connections queue until Serve takes them.
	d.notify.ready(d.statusLine())
	err := ipcserver.New(d.agent, d.log).Serve(ctx, ln)
	d.log.Info("stopped")
	return err
}

// recordHost records on which host the agent runs, and reports whether
// it did. A record that cannot be written costs only the hint on other
// nodes: it is a warning.
func (d *Daemon) recordHost() (ipc.HostRecord, bool) {
	if d.hostsDir == "" {
		return ipc.HostRecord{}, false
	}
	host, err := ipc.Hostname()
	if err != nil {
		d.log.Warn("host_record_failed", "err", err)
		return ipc.HostRecord{}, false
	}
	rec := ipc.HostRecord{Host: host, Socket: d.socket, PID: os.Getpid()}
	if err := ipc.WriteHostRecord(d.hostsDir, rec); err != nil {
		d.log.Warn("host_record_failed", "dir", d.hostsDir, "err", err)
		return ipc.HostRecord{}, false
	}
	return rec, true
}

// Reload reads the config file again and puts it in force, framed for
// systemd by RELOADING=1 and READY=1. It returns why the file did not
// load; the config in force then stays, and status shows the error. A
// config that would end a session waits until the file has settled.
// Reload is meant for while Serve runs; the config watcher calls it.
func (d *Daemon) Reload() error { return d.reload(false) }

// ReloadAsked is Reload for a reload the user asked for (SIGHUP, systemctl
// reload, the agent's reload request): the user says the file is ready,
// and a config that ends sessions is put in force at once.
func (d *Daemon) ReloadAsked() error { return d.reload(true) }

func (d *Daemon) reload(asked bool) error {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	d.notify.reloading()
	err := d.loadLocked(asked)
	d.notify.ready(d.statusLine())
	return err
}

// loadLocked loads the config file and hands it to the agent; unless
// asked, one that would end sessions waits for the file to settle.
// d.loadMu must be held.
func (d *Daemon) loadLocked(asked bool) error {
	if _, err := os.Stat(d.configPath); os.IsNotExist(err) && len(d.agent.Config().Tenants) > 0 {
		// Some editors delete the file before writing the new one, and
		// a file deleted by mistake must not log out every tenant: the
		// config stays, and status says so until a file is back.
		// Emptying the file is the way to drop them all.
		d.log.Warn("config_missing", "path", d.configPath, "action", "keeping the last loaded config")
		d.agent.SetConfigError(fmt.Errorf("config file %s was removed; the last loaded config stays in force until it is back", d.configPath))
		return nil
	}
	cfg, err := config.Load(d.configPath)
	if err != nil {
		d.log.Error("config_invalid", "path", d.configPath, "err", err)
		if !d.loaded {
			err = fmt.Errorf("%w\nno config was loaded: the agent runs without configured tenants until the file is fixed", err)
		}
		d.agent.SetConfigError(err)
		return err
	}
	// A file cut short by a save under way looks like an edit that
	// removes tenants: either waits until the file has settled.
	if ending := d.agent.SessionsEnding(cfg); len(ending) > 0 && !asked {
		if wait := d.settleWaitLocked(); wait > 0 {
			// Kept from the log: how long the file stayed which way.
			d.log.Warn("config_settling", "path", d.configPath, "ending", strings.Join(ending, ","), "wait", wait.Round(time.Millisecond).String())
			sessions := "the session of "
			if len(ending) > 1 {
				sessions = "the sessions of "
			}
			d.agent.SetConfigError(fmt.Errorf("config file %s changed and would end %s%s; it is put in force once it has stayed unchanged for %s, in case a save is still under way; kill -HUP %d puts it in force at once",
				d.configPath, sessions, strings.Join(ending, ", "), d.settle, os.Getpid()))
			d.reloadAfterLocked(wait)
			return nil
		}
	}
	d.pending, d.pendingAt = fileSig{}, time.Time{}
	if asked && d.settleTimer != nil {
		d.settleTimer.Stop()
	}
	d.loaded = true
	if d.level != nil {
		setLogLevel(d.log, d.level, cfg.LogLevel)
	}
	d.agent.ApplyConfig(cfg)
	return nil
}

// settleWaitLocked returns how much longer the config file must stay as it
// is before a config that ends sessions is put in force. d.loadMu must be
// held.
func (d *Daemon) settleWaitLocked() time.Duration {
	sig := fileSig{}
	if fi, err := os.Stat(d.configPath); err == nil {
		sig.size, sig.mtime = fi.Size(), fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			sig.ino = int64(st.Ino)
		}
	}
	now := time.Now()
	if d.pendingAt.IsZero() || sig != d.pending {
		d.pending, d.pendingAt = sig, now
	}
	return d.pendingAt.Add(d.settle).Sub(now)
}

// reloadAfterLocked reloads the config after wait, unless Serve has
// returned by then. d.loadMu must be held.
func (d *Daemon) reloadAfterLocked(wait time.Duration) {
	ctx := d.serveCtx
	if ctx == nil {
		return
	}
	if d.settleTimer != nil {
		d.settleTimer.Stop()
	}
	d.settleTimer = time.AfterFunc(wait, func() {
		if ctx.Err() != nil {
			return
		}
		d.log.Info("reload", "reason", "config file settled")
		_ = d.Reload()
	})
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

// statusLine is the agent's status line for systemd.
func (d *Daemon) statusLine() string {
	st, err := d.agent.Status(context.Background())
	if err != nil {
		return "status unavailable: " + err.Error()
	}
	return statusLine(st)
}
