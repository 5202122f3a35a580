package ipcserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// peerKey is the context key of a connection's *peer.
type peerKey struct{}

// peer holds a connection's credentials, read once when it is accepted.
type peer struct {
	uid, pid int
	err      error
}

// connContext gives the connection's context its peer: the credentials
// the dispatcher read, or for a connection that did not come through one,
// its own. handle answers 403 to every request of a foreign peer.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	p := (*peer)(nil)
	if hc, ok := c.(*handoffConn); ok {
		p = hc.peer
	} else {
		p = s.readPeer(c)
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// readPeer reads the peer's credentials (SO_PEERCRED), once per
// connection, and logs a refusal once.
func (s *Server) readPeer(c net.Conn) *peer {
	return s.peerOf(peerCred(c))
}

// peerOf is the peer with credentials cred, or the one whose credentials
// could not be read; it logs a refusal once.
func (s *Server) peerOf(cred *unix.Ucred, err error) *peer {
	p := &peer{uid: -1, pid: -1}
	if err != nil {
		p.err = err
		s.log.Warn("ipc_peer_unknown", slog.String("error", err.Error()))
	} else {
		p.uid, p.pid = int(cred.Uid), int(cred.Pid)
		if p.uid != s.uid {
			s.log.Warn("ipc_peer_refused", slog.Int("peer_uid", p.uid), slog.Int("peer_pid", p.pid))
		}
	}
	return p
}

// serves reports whether the Server answers the peer p: one of its own
// user whose credentials could be read.
func (s *Server) serves(p *peer) bool { return p != nil && p.err == nil && p.uid == s.uid }

// peerCred returns the credentials of the process at the other end of a
// Unix socket connection.
func peerCred(c net.Conn) (*unix.Ucred, error) {
	raw := rawConn(c)
	if raw == nil {
		return nil, errors.New("reading peer credentials: not a socket connection")
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	return cred, nil
}

// limitListener accepts at most cap(sem) connections at a time; further
// clients wait in the kernel's listen backlog.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn returns the underlying connection, for peerCred.
func (c *limitConn) NetConn() net.Conn { return c.Conn }
