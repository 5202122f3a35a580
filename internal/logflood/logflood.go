// Package logflood keeps a repeated warning from flooding the agent's log:
// under file-descriptor exhaustion or a hostile client, the same warning
// may come thousands of times a second, into a log file that counts
// against the user's quota.
package logflood

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Handler is a slog.Handler that passes every record to the handler it
// wraps, except that a record of level Warn or above whose level, message,
// logger attributes (a tenant, say) and "err" attribute were already
// logged within the interval is counted instead: another error is news
// (a config file saved with another mistake), the same one is not. The next one logged carries the count as
// "repeated". Handlers derived with WithAttrs and WithGroup share the
// counts. It is safe for concurrent use.
type Handler struct {
	next     slog.Handler
	interval time.Duration
	now      func() time.Time
	scope    string // the attributes and groups added to the logger
	counts   *counts
}

type counts struct {
	mu   sync.Mutex // guards seen
	seen map[string]*seen
}

// seen is one warning's record: when it was last logged, and how many
// times it came since.
type seen struct {
	logged  time.Time
	dropped int
}

// maxKeys bounds the warnings remembered; past it the memory starts over.
const maxKeys = 1024

// New returns a Handler that logs each repeated warning at most once per
// interval through next.
func New(next slog.Handler, interval time.Duration) *Handler {
	return &Handler{next: next, interval: interval, now: time.Now, counts: &counts{seen: map[string]*seen{}}}
}

// Enabled reports whether next handles records of level l.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle logs r through next, or counts it (see Handler).
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key := r.Level.String() + "\x00" + r.Message + "\x00" + h.scope + "\x00" + errText(r)
	now := h.now()
	c := h.counts
	c.mu.Lock()
	s := c.seen[key]
	if s != nil && now.Sub(s.logged) < h.interval && !now.Before(s.logged) {
		s.dropped++
		c.mu.Unlock()
		return nil
	}
	if s == nil {
		if len(c.seen) >= maxKeys {
			clear(c.seen)
		}
		s = &seen{}
		c.seen[key] = s
	}
	dropped := s.dropped
	s.logged, s.dropped = now, 0
	c.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", dropped), slog.String("repeated_within", h.interval.String()))
	}
	return h.next.Handle(ctx, r)
}

// maxErrKey bounds how much of an error's text tells warnings apart.
const maxErrKey = 512

// errText returns the start of the value of r's "err" attribute; "" when
// it has none.
func errText(r slog.Record) string {
	var s string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		s = a.Value.Resolve().String()
		return false
	})
	if len(s) > maxErrKey {
		s = s[:maxErrKey]
	}
	return s
}

// WithAttrs returns a Handler whose records carry attrs, counted apart
// from those of h.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.next = h.next.WithAttrs(attrs)
	var b strings.Builder
	b.WriteString(h.scope)
	for _, a := range attrs {
		b.WriteString("\x00" + a.String())
	}
	h2.scope = b.String()
	return &h2
}

// WithGroup returns a Handler whose records' attributes go in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.next = h.next.WithGroup(name)
	h2.scope = h.scope + "\x00[" + name
	return &h2
}
