package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// statusEvery is how often the STATUS= line sent to systemd is refreshed.
// The agent has no change events to hook: tokens age and refreshes happen
// in the background, so it polls its own status.
const statusEvery = 5 * time.Second

// notifier tells systemd about the agent through $NOTIFY_SOCKET (the
// sd_notify protocol). Without NOTIFY_SOCKET every method does nothing. It
// is safe for concurrent use.
type notifier struct {
	log     *slog.Logger
	enabled bool

	mu         sync.Mutex // guards lastStatus and the order of messages
	lastStatus string
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, enabled: os.Getenv("NOTIFY_SOCKET") != ""}
}

// send sends one message of newline-separated assignments.
func (n *notifier) send(lines ...string) {
	if !n.enabled {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendLocked(lines...)
}

func (n *notifier) sendLocked(lines ...string) {
	if _, err := sd.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		n.log.Warn("sd_notify_failed", "err", err)
	}
}

// ready reports that the agent serves, with its current status line.
func (n *notifier) ready(status string) {
	n.send(sd.SdNotifyReady, "STATUS="+status)
}

// reloading reports that a config reload begins. systemd wants the
// monotonic clock with it, to order it against the READY=1 that ends it.
func (n *notifier) reloading() {
	n.send(sd.SdNotifyReloading, sd.SdNotifyMonotonicUsec())
}

// stopping reports that the agent shuts down.
func (n *notifier) stopping() { n.send(sd.SdNotifyStopping) }

// status sends a STATUS= line if it differs from the last one sent.
func (n *notifier) status(s string) {
	if !n.enabled {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == n.lastStatus {
		return
	}
	n.lastStatus = s
	n.sendLocked("STATUS=" + s)
}

// run keeps the status line current and, when systemd asks for them
// (WATCHDOG_USEC), sends watchdog pings at half the interval, until ctx is
// done. A ping follows a successful status call, so an agent whose state
// is stuck behind a lock stops pinging and systemd restarts it.
func (n *notifier) run(ctx context.Context, status func() (*ipc.StatusResponse, error)) {
	if !n.enabled {
		return
	}
	var watchdog <-chan time.Time
	if d, err := sd.SdWatchdogEnabled(false); err != nil {
		n.log.Warn("watchdog_invalid", "err", err)
	} else if d > 0 {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		watchdog = t.C
		n.log.Info("watchdog_enabled", "interval", d)
	}
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if st, err := status(); err == nil {
				n.status(statusLine(st))
			}
		case <-watchdog:
			if st, err := status(); err == nil {
				n.status(statusLine(st))
				n.send(sd.SdNotifyWatchdog)
			}
		}
	}
}

// statusLine summarises st for systemctl status, e.g. "2 tenants ready,
// 1 needs login".
func statusLine(st *ipc.StatusResponse) string {
	var ready, login, retrying, pending int
	for _, t := range st.Tenants {
		switch t.State {
		case ipc.StateReady, ipc.StateAccessOnly, ipc.StateRefreshing:
			ready++
		case ipc.StateRetrying:
			retrying++
		case ipc.StateDevicePending:
			pending++
		default: // login_required, expired
			login++
		}
	}
	var parts []string
	if ready > 0 {
		parts = append(parts, plural(ready, "tenant ready", "tenants ready"))
	}
	if login > 0 {
		parts = append(parts, plural(login, "needs login", "need login"))
	}
	if retrying > 0 {
		parts = append(parts, fmt.Sprintf("%d retrying", retrying))
	}
	if pending > 0 {
		parts = append(parts, fmt.Sprintf("%d awaiting device login", pending))
	}
	if len(parts) == 0 {
		parts = append(parts, "no tenants")
	}
	s := strings.Join(parts, ", ")
	if st.ConfigError != "" {
		s += "; config invalid, see tapis-token status"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
