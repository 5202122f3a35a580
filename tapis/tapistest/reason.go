package tapistest

import (
	"bytes"
	"net"
)

// The real service sends upper-case reason phrases ("400 BAD REQUEST",
// "302 FOUND", "500 INTERNAL SERVER ERROR"; tapis-protocol.md §1.2), and
// net/http has no way to choose one. upperReasonListener rewrites the
// status line of every answer on the connection: net/http flushes each
// answer's header before it reads the next request, so a status line
// always starts a Write.
type upperReasonListener struct{ net.Listener }

func (l upperReasonListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return upperReasonConn{c}, nil
}

type upperReasonConn struct{ net.Conn }

// Write upper-cases the reason phrase of a status line at the start of
// p; the length stays the same.
func (c upperReasonConn) Write(p []byte) (int, error) {
	if line, ok := statusLine(p); ok {
		q := make([]byte, len(p))
		copy(q, p)
		copy(q, bytes.ToUpper(line))
		p = q
	}
	return c.Conn.Write(p)
}

// Unwrap returns the underlying connection.
func (c upperReasonConn) Unwrap() net.Conn { return c.Conn }

// statusLine returns the "HTTP/1.x NNN Reason" line at the start of p,
// without its CRLF.
func statusLine(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.")) || len(p) < 13 || p[12] != ' ' {
		return nil, false
	}
	for _, b := range p[9:12] {
		if b < '0' || b > '9' {
			return nil, false
		}
	}
	end := bytes.Index(p, []byte("\r\n"))
	if end < 0 {
		return nil, false
	}
	return p[:end], true
}
