package ipcserver

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// dispatcher accepts the Server's connections and sends each where its
// first byte says: a token frame to serveFrame, anything else to
// net/http, for which it is the listener. It reads the first byte with
// MSG_PEEK, so net/http reads the request whole.
type dispatcher struct {
	s    *Server
	ln   net.Listener
	sem  chan struct{}  // one slot per open connection: MaxConns
	http chan net.Conn  // connections for net/http's Accept
	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // goroutines serving frames or classifying connections

	closeOnce sync.Once
}

func newDispatcher(s *Server, ln net.Listener, maxConns int) *dispatcher {
	return &dispatcher{s: s, ln: ln, sem: make(chan struct{}, maxConns), http: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection for net/http.
func (d *dispatcher) Accept() (net.Conn, error) {
	select {
	case c := <-d.http:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, for the dispatcher and net/http alike, and closes
// the listener. It is safe to call more than once.
func (d *dispatcher) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.done)
		err = d.ln.Close()
	})
	return err
}

func (d *dispatcher) Addr() net.Addr { return d.ln.Addr() }

// run accepts connections until the listener closes (net.ErrClosed) or
// accepting fails for good. Transient failures such as running out of file
// descriptors are retried after a pause, as http.Server does.
func (d *dispatcher) run(ctx context.Context) error {
	if ul, ok := d.ln.(*net.UnixListener); ok {
		if ok, err := d.runRaw(ctx, ul); ok {
			return err
		}
	}
	var delay time.Duration
	for {
		if !d.acquire() {
			return net.ErrClosed
		}
		c, err := d.ln.Accept()
		if err != nil {
			d.release()
			if d.closed() {
				return net.ErrClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); !ok || !te.Temporary() {
				return err
			}
			if delay, err = d.pause(delay, err); err != nil {
				return err
			}
			continue
		}
		delay = 0
		lc := &limitConn{Conn: c, release: d.release}
		d.wg.Go(func() { d.classify(ctx, lc, nil) })
	}
}

// acquire takes a connection slot, waiting for one; false once closed.
func (d *dispatcher) acquire() bool {
	select {
	case d.sem <- struct{}{}:
		return true
	case <-d.done:
		return false
	}
}

func (d *dispatcher) release() { <-d.sem }

func (d *dispatcher) closed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// pause waits after a transient accept failure, twice as long as the last
// time (delay) up to a second, and returns the new delay; net.ErrClosed
// when the dispatcher closes meanwhile.
func (d *dispatcher) pause(delay time.Duration, err error) (time.Duration, error) {
	delay = min(max(2*delay, 5*time.Millisecond), time.Second)
	d.s.log.Debug("ipc_accept_retry", "err", err, "delay", delay)
	select {
	case <-time.After(delay):
		return delay, nil
	case <-d.done:
		return delay, net.ErrClosed
	}
}

// classify waits for c's first byte and serves c accordingly; p is its
// peer, nil when not read yet. A client that sends nothing within the
// header timeout is dropped, as net/http would drop it.
func (d *dispatcher) classify(ctx context.Context, c net.Conn, p *peer) {
	if p == nil {
		p = d.s.readPeer(c)
	}
	_ = c.SetReadDeadline(time.Now().Add(d.s.readHeaderTimeout()))
	first, err := peekByte(c)
	_ = c.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		c.Close()
	case ipc.IsFrame(first):
		d.s.serveFrame(ctx, c, p)
	default:
		select {
		case d.http <- &peerConn{Conn: c, peer: p}:
		case <-d.done:
			c.Close()
		}
	}
}

// peekByte waits for the first byte c has to read, and returns it without
// consuming it.
func peekByte(c net.Conn) (byte, error) {
	rc := rawConn(c)
	if rc == nil {
		return 0, errors.New("peeking: not a socket connection")
	}
	var b [1]byte
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return rerr != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("recvfrom", rerr)
	case n == 0:
		return 0, errors.New("peeking: connection closed")
	}
	return b[0], nil
}

// peerConn is a connection handed to net/http with its peer's
// credentials, read once.
type peerConn struct {
	net.Conn
	peer *peer
}

// NetConn returns the underlying connection, for rawConn.
func (c *peerConn) NetConn() net.Conn { return c.Conn }

// limitConn gives its connection slot back once, on the first Close.
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

// NetConn returns the underlying connection, for rawConn.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// rawConn returns the syscall.RawConn under c's wrappers, or nil.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
