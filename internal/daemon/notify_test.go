package daemon

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

func TestStatusLine(t *testing.T) {
	tenants := func(states ...string) []ipc.TenantStatus {
		var ts []ipc.TenantStatus
		for _, s := range states {
			ts = append(ts, ipc.TenantStatus{State: s})
		}
		return ts
	}
	cases := []struct {
		name string
		st   ipc.StatusResponse
		want string
	}{
		{"empty", ipc.StatusResponse{}, "no tenants"},
		{"issue example", ipc.StatusResponse{Tenants: tenants(ipc.StateReady, ipc.StateAccessOnly, ipc.StateLoginRequired)},
			"2 tenants ready, 1 needs login"},
		{"one ready", ipc.StatusResponse{Tenants: tenants(ipc.StateRefreshing)}, "1 tenant ready"},
		{"need login", ipc.StatusResponse{Tenants: tenants(ipc.StateExpired, ipc.StateLoginRequired)}, "2 need login"},
		{"retrying and device", ipc.StatusResponse{Tenants: tenants(ipc.StateRetrying, ipc.StateDevicePending)},
			"1 retrying, 1 awaiting device login"},
		{"config error", ipc.StatusResponse{ConfigError: "bad", Tenants: tenants(ipc.StateReady)},
			"1 tenant ready; config invalid, see tapis-token status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusLine(&tc.st); got != tc.want {
				t.Errorf("statusLine = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestNotifier(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	recv := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading notification: %v", err)
		}
		return string(buf[:n])
	}
	n := newNotifier(slog.New(slog.DiscardHandler))
	n.ready("1 tenant ready")
	if got := recv(); got != "READY=1\nSTATUS=1 tenant ready" {
		t.Errorf("ready sent %q", got)
	}
	n.reloading()
	if got := recv(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || len(got) <= len("RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reloading sent %q; want RELOADING=1 and MONOTONIC_USEC", got)
	}
	n.status("a")
	n.status("a") // unchanged: not sent again
	n.status("b")
	if got := recv(); got != "STATUS=a" {
		t.Errorf("status sent %q; want STATUS=a", got)
	}
	if got := recv(); got != "STATUS=b" {
		t.Errorf("status sent %q; want STATUS=b once the first STATUS=a was deduplicated", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, func() (*ipc.StatusResponse, error) { return &ipc.StatusResponse{}, nil })
	}()
	var got []string
	for len(got) < 2 || got[len(got)-1] != "WATCHDOG=1" {
		got = append(got, recv())
	}
	if got[0] != "STATUS=no tenants" {
		t.Errorf("first message of run = %q; want the status line before the ping", got[0])
	}
	cancel()
	<-done
	n.stopping()
	for {
		if m := recv(); m == "STOPPING=1" {
			break
		} else if m != "WATCHDOG=1" {
			t.Fatalf("got %q; want STOPPING=1", m)
		}
	}
}

func TestNotifierWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	// A nil logger: logging a failed send would panic, so this also proves
	// that nothing is sent.
	n := newNotifier(nil)
	n.ready("x")
	n.reloading()
	n.status("y")
	n.stopping()
	n.run(context.Background(), nil) // returns at once without NOTIFY_SOCKET
}
