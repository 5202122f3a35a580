package logflood

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedWarningsCounted(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return now }
	log := slog.New(h)
	dev, prod := log.With("tenant", "dev"), log.With("tenant", "prod")

	for range 1000 {
		log.Warn("ipc_accept_failed", "err", "too many open files")
		dev.Warn("refresh_failed", "err", "down")
		prod.Warn("refresh_failed", "err", "down")
		log.Info("ipc_request")
	}
	now = now.Add(61 * time.Second)
	log.Warn("ipc_accept_failed", "err", "too many open files")
	out := buf.String()
	count := func(s string) int { return strings.Count(out, s) }
	if n := count("msg=ipc_accept_failed"); n != 2 {
		t.Errorf("ipc_accept_failed logged %d times; want 2 (the first, then once after the interval):\n%s", n, out)
	}
	if !strings.Contains(out, "msg=ipc_accept_failed err=\"too many open files\" repeated=999 repeated_within=1m0s") {
		t.Errorf("the line after the interval lacks the count:\n%s", out)
	}
	if n1, n2 := count("msg=refresh_failed tenant=dev"), count("msg=refresh_failed tenant=prod"); n1 != 1 || n2 != 1 {
		t.Errorf("refresh_failed logged %d times for dev, %d for prod; want once each", n1, n2)
	}
	// Another error of the same message is news: logged at once, and
	// then counted as its own.
	for range 3 {
		log.Error("config_invalid", "err", "config.toml:5: unknown key")
		log.Error("config_invalid", "err", "config.toml:6: nest more than 16 deep")
	}
	out = buf.String()
	if n1, n2 := count("config.toml:5: unknown key"), count("config.toml:6: nest more than 16 deep"); n1 != 1 || n2 != 1 {
		t.Errorf("two config errors, three times each, logged %d and %d times; want once each:\n%s", n1, n2, out)
	}
	if n := count("msg=ipc_request"); n != 1000 {
		t.Errorf("info lines logged %d times; want all 1000", n)
	}
}
