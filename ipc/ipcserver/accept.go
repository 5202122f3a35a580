package ipcserver

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// dispatcher accepts the Server's connections and sends each where its
// first byte says: a token frame to serveFrame, anything else to
// net/http, for which it is the listener. It peeks at that byte
// (MSG_PEEK), so net/http reads the request whole.
type dispatcher struct {
	s    *Server
	ln   net.Listener
	sem  chan struct{}  // a slot per open connection: maxConns
	http chan net.Conn  // connections for net/http's Accept
	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // goroutines serving frames or classifying connections
	once sync.Once      // closes done

	keptRaw atomic.Int32 // kept connections served by serveKept (accept_linux.go)
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
// the listener. It may be called more than once; only the first call can
// fail. Serve closes the dispatcher before http.Server.Shutdown, which
// closes it again while its Serve has not yet seen the first close, and
// takes an error from that for a failed shutdown: it would cut the
// answers in flight off at once.
func (d *dispatcher) Close() error {
	var err error
	d.once.Do(func() { close(d.done); err = d.ln.Close() })
	return err
}

func (d *dispatcher) Addr() net.Addr { return d.ln.Addr() }

// run accepts connections until the dispatcher closes (net.ErrClosed) or
// accepting fails for good. Transient failures such as running out of file
// descriptors are retried after a pause, as http.Server does.
func (d *dispatcher) run(ctx context.Context) error {
	if ul, ok := d.ln.(*net.UnixListener); ok {
		if ok, err := d.runRaw(ctx, ul); ok {
			return err
		}
	}
	var delay time.Duration
	for d.acquire() {
		c, err := d.ln.Accept()
		if err != nil {
			d.release()
			if te, ok := err.(interface{ Temporary() bool }); d.closed() || !ok || !te.Temporary() {
				return err
			}
			if delay, err = d.pause(delay, err); err != nil {
				return err
			}
			continue
		}
		delay = 0
		sc := &conn{Conn: c, release: d.release}
		d.wg.Go(func() { d.classify(ctx, sc) })
	}
	return net.ErrClosed
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

// classify waits for c's first byte and serves c accordingly, reading its
// peer first if that is not done yet. A client that sends nothing within
// the header timeout is dropped, as net/http would drop it.
func (d *dispatcher) classify(ctx context.Context, c *conn) {
	if c.peer == nil {
		c.peer = d.s.readPeer(c)
	}
	_ = c.SetReadDeadline(time.Now().Add(d.s.readHeaderTimeout))
	first, err := peekByte(c)
	_ = c.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		c.Close()
	case ipc.IsFrame(first):
		d.s.serveFrame(ctx, c, c.peer, d.done)
	default:
		select {
		case d.http <- c:
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
	n, rerr := 0, error(nil)
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return rerr != syscall.EAGAIN
	}); err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, os.NewSyscallError("recvfrom", rerr)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return b[0], nil
}

// conn is an accepted connection: its peer's credentials, read once, and
// its connection slot, given back once, on the first Close.
type conn struct {
	net.Conn
	peer    *peer
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// rawConn returns the syscall.RawConn of c, or nil.
func rawConn(c net.Conn) syscall.RawConn {
	if w, ok := c.(*conn); ok {
		c = w.Conn
	}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// maxKeptRaw bounds the kept connections served by serveKept, each of
// which holds a thread while it waits; further ones are served through
// package net, as other connections are.
const maxKeptRaw = 32

// takeKept takes one of the maxKeptRaw places; false when none is free.
func (d *dispatcher) takeKept() bool {
	if d.keptRaw.Add(1) > maxKeptRaw {
		d.keptRaw.Add(-1)
		return false
	}
	return true
}

func (d *dispatcher) releaseKept() { d.keptRaw.Add(-1) }
