package ipcserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// serveFrame answers the token frame on c, whose peer is p, and closes c.
// A keep request (see package ipc) keeps c open for the next request,
// until the client closes it, sends anything but a well-formed request,
// idles for keptIdle, or done is closed: the dispatcher is closing,
// and an idle kept connection must not hold up the shutdown.
func (s *Server) serveFrame(ctx context.Context, c net.Conn, p *peer, done <-chan struct{}) {
	defer c.Close()
	var kept *keptConn
	wait := s.readHeaderTimeout
	line := make([]byte, 0, ipc.MaxRequestBytes+1)
	for {
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(wait))
		// One request frame: the bytes up to its LF. A byte after it would
		// start a second request, which ParseRequest refuses: a client
		// sends the next request once it has read the answer.
		line = line[:0]
		for bytes.IndexByte(line, '\n') < 0 && len(line) < cap(line) {
			n, err := c.Read(line[len(line):cap(line)])
			if err != nil {
				return // gone, too slow, idle too long, or closed for the shutdown
			}
			line = line[:len(line)+n]
		}
		if kept != nil {
			if !kept.busy(true) {
				return
			}
			start = time.Now() // a kept connection's wait is not the call's
		}
		a, keep := s.frameRequest(ctx, c, p, line, start)
		_ = c.SetWriteDeadline(time.Now().Add(writeSlack))
		if _, err := c.Write(appendFrame(make([]byte, 0, 2048), a)); err != nil || !keep {
			return
		}
		if kept == nil {
			kept = keepConn(c, done)
			defer kept.end()
		}
		if !kept.busy(false) {
			return
		}
		wait = s.keptIdle
	}
}

// keptConn closes a kept connection when the dispatcher closes: at once
// if it waits for a request, else once its answer is written.
type keptConn struct {
	mu      sync.Mutex
	working bool // between a request and its answer
	closing bool // the dispatcher is closing
	ended   chan struct{}
}

// keepConn watches c, kept open, until end is called or done is closed.
func keepConn(c net.Conn, done <-chan struct{}) *keptConn {
	k := &keptConn{ended: make(chan struct{})}
	go func() {
		select {
		case <-done:
			k.mu.Lock()
			k.closing = true
			if !k.working {
				c.Close() // ends the wait for a request
			}
			k.mu.Unlock()
		case <-k.ended:
		}
	}()
	return k
}

// busy records whether the connection is working on a request; false
// means the dispatcher is closing and the connection must end.
func (k *keptConn) busy(working bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.working = working
	return !k.closing
}

// end stops the watch.
func (k *keptConn) end() { close(k.ended) }

// frameRequest answers line, a request frame read at start from peer p,
// logs it, and reports whether the client keeps the connection: at once
// when the Handler holds the token (InstantTokener), else through
// frameToken, which watches c for the client going away; with c nil (a
// kept connection served by serveKept) without that watch.
func (s *Server) frameRequest(ctx context.Context, c net.Conn, p *peer, line []byte, start time.Time) (a answer, keep bool) {
	defer func() { s.logRequest(context.WithValue(ctx, peerKey{}, p), "FRAME", ipc.PathToken, start, a) }()
	if !s.serves(p) {
		return errAnswer(ipc.CodeForbidden, "the agent serves only its own user", ipc.HintForbidden), false
	}
	tenant, minValid, keep, err := ipc.ParseRequest(line)
	if err != nil {
		e := err.(*ipc.Error)
		return errAnswer(e.Code, e.Message, e.Hint), false
	}
	if it, ok := s.h.(InstantTokener); ok {
		if resp, ok := tokenInstant(it, tenant, minValid); ok {
			return answer{status: 200, body: resp, tenant: tenant}, keep
		}
	}
	if c == nil {
		return s.work(ctx, tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
			return s.token(ctx, tenant, minValid)
		}), keep
	}
	return s.frameToken(ctx, c, tenant, minValid), keep
}

// tokenInstant calls TokenInstant; a panic in it counts as "not at once",
// so that the request takes the Token path, which answers a panic.
func tokenInstant(it InstantTokener, tenant string, minValid time.Duration) (resp *ipc.TokenResponse, ok bool) {
	defer func() {
		if recover() != nil {
			resp, ok = nil, false
		}
	}()
	resp, ok = it.TokenInstant(tenant, minValid)
	return resp, ok && resp != nil
}

// frameToken answers a token request read from c. While the Handler
// works, a read on c watches for the client going away, which cancels the
// work, as net/http does for its requests.
func (s *Server) frameToken(ctx context.Context, c net.Conn, tenant string, minValid time.Duration) answer {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = c.SetReadDeadline(time.Time{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel() // the client closed, or broke the one-request rule
		}
	}()
	defer func() {
		_ = c.SetReadDeadline(time.Unix(1, 0)) // ends the watch
		<-watched
	}()
	return s.work(ctx, tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
		return s.token(ctx, tenant, minValid)
	})
}

// appendFrame appends a's answer frame.
func appendFrame(b []byte, a answer) []byte {
	switch body := a.body.(type) {
	case *ipc.TokenResponse:
		if out, ok := ipc.AppendTokenAnswer(b, body); ok {
			return out
		}
		return ipc.AppendErrorAnswer(b, ipc.CodeInternal, "the token does not fit a frame; see the agent's log", ipc.HintLog)
	case ipc.ErrorBody:
		return ipc.AppendErrorAnswer(b, body.Error.Code, body.Error.Message, body.Error.Hint)
	}
	return ipc.AppendErrorAnswer(b, ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
}
