package daemon

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
)

// Listen returns the listener the daemon serves: the socket systemd passed
// (socket activation), else a new one at path made by ipcserver.Listen. It
// reports whether systemd passed it. Then it may lie at another path than
// path, which is logged to log (if not nil) as socket_activated:
// ln.Addr().String() is the path to serve and report. And systemd owns the
// file: closing the listener leaves it in place.
//
// systemd must pass one stream socket with a path (ListenStream=/path in
// tapis-agent.socket); anything else is refused and closed.
func Listen(path string, log *slog.Logger) (ln net.Listener, activated bool, err error) {
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
			if p := ul.Addr().String(); p != path && log != nil {
				log.Info("socket_activated", "socket", p, "ignored", path)
			}
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
