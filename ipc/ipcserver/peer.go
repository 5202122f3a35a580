package ipcserver

import (
	"context"
	"errors"
	"net"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// peerKey is the context key of a connection's *peer.
type peerKey struct{}

// peer holds a connection's credentials, read once when it is accepted.
type peer struct {
	uid, pid int // pid is -1 where the system does not tell
	err      error
}

// connContext gives an HTTP connection's context its peer, read when the
// dispatcher accepted it; handle answers 403 to a foreign or unknown peer.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	var p *peer
	if sc, ok := c.(*conn); ok {
		p = sc.peer
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// readPeer reads the credentials of c's peer.
func (s *Server) readPeer(c net.Conn) *peer {
	rc := rawConn(c)
	if rc == nil {
		return s.peerOf(0, 0, errors.New("reading peer credentials: not a socket connection"))
	}
	var uid, pid int
	var cerr error
	if err := rc.Control(func(fd uintptr) { uid, pid, cerr = ipc.PeerCred(int(fd)) }); err != nil {
		cerr = err
	}
	return s.peerOf(uid, pid, cerr)
}

// peerOf is the peer with credentials uid and pid, or the one whose
// credentials could not be read (err); it logs a refusal once.
func (s *Server) peerOf(uid, pid int, err error) *peer {
	p := &peer{uid: -1, pid: -1}
	if err != nil {
		p.err = err
		s.log.Warn("ipc_peer_unknown", "err", err)
		return p
	}
	p.uid, p.pid = uid, pid
	if p.uid != s.uid {
		s.log.Warn("ipc_peer_refused", "peer_uid", p.uid, "peer_pid", p.pid)
	}
	return p
}

// serves reports whether the Server answers the peer p: one of its own
// user whose credentials could be read.
func (s *Server) serves(p *peer) bool { return p != nil && p.err == nil && p.uid == s.uid }
