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

// errTooLong is readRequest's error for a request frame over
// ipc.MaxRequestBytes.
var errTooLong = errors.New("request frame too long")

// serveFrame answers the token frame on c, whose peer is p, and closes c.
func (s *Server) serveFrame(ctx context.Context, c net.Conn, p *peer) {
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(s.readHeaderTimeout()))
	line, err := readRequest(c)
	var a answer
	switch {
	case errors.Is(err, errTooLong):
		a = errAnswer(ipc.CodeTooLarge, "request frame over 512 bytes", ipc.HintVersion)
	case err != nil:
		return // gone, or too slow: nothing to answer
	case !s.serves(p):
		a = errAnswer(ipc.CodeForbidden, "the agent serves only its own user", ipc.HintForbidden)
	default:
		a = s.frameToken(ctx, c, line)
	}
	b := appendFrame(make([]byte, 0, 2048), a)
	s.logRequest(context.WithValue(ctx, peerKey{}, p), "FRAME", ipc.PathToken, start, a)
	_ = c.SetWriteDeadline(time.Now().Add(writeSlack))
	_, _ = c.Write(b)
}

// frameToken answers the request frame line, read from c. While the
// Handler works, a read on c watches for the client going away, which
// cancels the work, as net/http does for its requests.
func (s *Server) frameToken(ctx context.Context, c net.Conn, line []byte) answer {
	tenant, minValid, err := ipc.ParseTokenRequest(line)
	if err != nil {
		e := err.(*ipc.Error)
		return errAnswer(e.Code, e.Message, e.Hint)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = c.SetReadDeadline(time.Time{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		if _, err := c.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel() // the client closed, or broke the one-request rule
		}
	}()
	defer func() {
		_ = c.SetReadDeadline(aLongTimeAgo)
		<-watched
	}()
	a, _ := s.work(ctx, tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
		return s.token(ctx, tenant, minValid)
	})
	a.tenant = tenant
	return a
}

// aLongTimeAgo is a read deadline in the past, which ends a pending read.
var aLongTimeAgo = time.Unix(1, 0)

// readRequest reads one request frame from c: bytes up to and including
// the first LF, at most ipc.MaxRequestBytes. Bytes after the LF would be
// a second request, which the frame does not allow; ParseTokenRequest
// refuses them.
func readRequest(c net.Conn) ([]byte, error) {
	b := make([]byte, 0, ipc.MaxRequestBytes+1)
	for {
		n, err := c.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return b, nil
		}
		if len(b) > ipc.MaxRequestBytes {
			return nil, errTooLong
		}
		if err != nil {
			return nil, err
		}
	}
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
