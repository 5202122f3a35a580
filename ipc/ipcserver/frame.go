package ipcserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// serveFrame answers the token frame on c, whose peer is p, and closes c.
func (s *Server) serveFrame(ctx context.Context, c net.Conn, p *peer) {
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(s.readHeaderTimeout))
	// One request frame: the bytes up to its LF. A byte after it would
	// start a second request, which ParseTokenRequest refuses.
	line := make([]byte, 0, ipc.MaxRequestBytes+1)
	for bytes.IndexByte(line, '\n') < 0 && len(line) < cap(line) {
		n, err := c.Read(line[len(line):cap(line)])
		if err != nil {
			return // gone, or too slow: nothing to answer
		}
		line = line[:len(line)+n]
	}
	var a answer
	if !s.serves(p) {
		a = errAnswer(ipc.CodeForbidden, "the agent serves only its own user", ipc.HintForbidden)
	} else if tenant, minValid, err := ipc.ParseTokenRequest(line); err != nil {
		e := err.(*ipc.Error)
		a = errAnswer(e.Code, e.Message, e.Hint)
	} else {
		a = s.frameToken(ctx, c, tenant, minValid)
	}
	s.logRequest(context.WithValue(ctx, peerKey{}, p), "FRAME", ipc.PathToken, start, a)
	_ = c.SetWriteDeadline(time.Now().Add(writeSlack))
	_, _ = c.Write(appendFrame(make([]byte, 0, 2048), a))
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
