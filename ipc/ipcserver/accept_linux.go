package ipcserver

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"golang.org/x/sys/unix"
)

// runRaw accepts on a Unix listener: it waits in ppoll(2) and accept(2)
// on a copy of the listening socket and answers a token frame right there
// when the Handler holds the token (answerNow); other connections become
// net.Conns for classify. Through package net each connection pays for a
// wake-up of the runtime's poller thread, a hand-off to the goroutine in
// Accept and the new socket's registration with epoll, which make bench
// shows in the helper's start-up. It reports false, having done nothing,
// when it cannot take the listener over.
//
// Closing the dispatcher wakes the wait through an eventfd. It never shuts
// the socket down, nor changes its flags: systemd holds the same socket,
// and must be able to start the next agent on it.
func (d *dispatcher) runRaw(ctx context.Context, ul *net.UnixListener) (bool, error) {
	lfd, err := dupFD(ul)
	if err != nil {
		return false, nil
	}
	defer syscall.Close(lfd)
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return false, nil
	}
	// The eventfd is closed only once the watch has ended, so that its
	// write never hits a reused number.
	exited := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-d.done:
			_, _ = unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		case <-exited:
		}
	}()
	defer func() {
		close(exited)
		<-watched
		unix.Close(wake)
	}()
	buf := make([]byte, ipc.MaxRequestBytes)
	fds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	var delay time.Duration
	for {
		if !d.acquire() {
			return true, net.ErrClosed
		}
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Ppoll(fds, nil, nil); err != nil && err != unix.EINTR {
			d.release()
			return true, os.NewSyscallError("ppoll", err)
		}
		if fds[1].Revents != 0 || d.closed() {
			d.release()
			return true, net.ErrClosed
		}
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_CLOEXEC)
		if err != nil {
			d.release()
			switch err {
			case syscall.EAGAIN, syscall.EINTR, syscall.ECONNABORTED:
				continue // another process took it, or it went away
			case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
				if delay, err = d.pause(delay, os.NewSyscallError("accept", err)); err != nil {
					return true, err
				}
				continue
			}
			return true, os.NewSyscallError("accept", err)
		}
		delay = 0
		p := d.s.peerOf(ipc.PeerCred(fd))
		answered, keep := d.answerNow(ctx, fd, lfd, p, buf)
		if answered {
			d.release()
			continue
		}
		if keep && d.takeKept() {
			d.wg.Go(func() { d.serveKept(ctx, fd, p) }) // gives the slot back
			continue
		}
		c, err := fdConn(fd)
		if err != nil {
			d.release()
			d.s.log.Warn("ipc_accept_failed", "err", err)
			continue
		}
		sc := &conn{Conn: c, peer: p, release: d.release}
		d.wg.Go(func() { d.classify(ctx, sc) })
	}
}

// answerNow answers the connection fd, of peer p, and closes it, when it
// holds a whole token frame already and the Handler holds the token
// (InstantTokener): the helper's call, nearly always, since it writes its
// request right after connecting. Otherwise it reports false, having
// consumed nothing: the bytes are only peeked; keep then says the
// request is a well-formed keep request, for serveKept. lfd is the
// listening socket (see waitRequest).
func (d *dispatcher) answerNow(ctx context.Context, fd, lfd int, p *peer, buf []byte) (answered, keep bool) {
	it, ok := d.s.h.(InstantTokener)
	if !ok || !d.s.serves(p) {
		return false, false
	}
	n, _, err := syscall.Recvfrom(fd, buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN && waitRequest(fd, lfd, requestWait) {
		n, _, err = syscall.Recvfrom(fd, buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	if err != nil || n <= 0 || !ipc.IsFrame(buf[0]) || buf[n-1] != '\n' {
		return false, false
	}
	start := time.Now()
	tenant, minValid, keep, err := ipc.ParseRequest(buf[:n])
	if err != nil || keep {
		return false, keep // serveFrame or serveKept answers it
	}
	resp, ok := tokenInstant(it, tenant, minValid)
	out, fits := []byte(nil), false
	if ok {
		out, fits = ipc.AppendTokenAnswer(make([]byte, 0, 256+len(resp.AccessToken)), resp)
	}
	if !fits {
		return false, false
	}
	// Consume the request: a socket closed with unread data resets the
	// connection, and the client could lose the answer.
	_, _, _ = syscall.Recvfrom(fd, buf[:n], syscall.MSG_DONTWAIT)
	a := answer{status: 200, body: resp, tenant: tenant}
	d.s.logRequest(context.WithValue(ctx, peerKey{}, p), "FRAME", ipc.PathToken, start, a)
	// An answer, at most 64 KiB, fits the empty send buffer of a new
	// socket (wmem_default, 208 KiB): it never waits. MSG_NOSIGNAL: a
	// client gone is EPIPE, not a SIGPIPE.
	_, _ = syscall.SendmsgN(fd, out, nil, nil, syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
	syscall.Close(fd)
	return true, false
}

// serveKept answers the requests of fd, a kept connection of peer p, the
// first one waiting unread, until the client closes it, sends
// anything but a well-formed request, idles for keptIdle, or the
// dispatcher closes; then it closes fd and gives back its connection
// slot. It waits in blocking read(2) with SO_RCVTIMEO, on a thread of its
// own: the client's next request wakes that thread and no other, where
// package net would wake the runtime's poller and hand the connection to
// a goroutine, twice the scheduling on a busy machine.
func (d *dispatcher) serveKept(ctx context.Context, fd int, p *peer) {
	defer d.release()
	defer d.releaseKept()
	// The watch shuts fd down only while it is open: once closed, its
	// number may be another file's.
	var mu sync.Mutex
	open := true
	ended := make(chan struct{})
	go func() {
		select {
		case <-d.done:
			// Ends a wait for a request; an answer being written is
			// written first.
			mu.Lock()
			if open {
				_ = syscall.Shutdown(fd, syscall.SHUT_RD)
			}
			mu.Unlock()
		case <-ended:
		}
	}()
	defer func() {
		close(ended)
		mu.Lock()
		open = false
		syscall.Close(fd)
		mu.Unlock()
	}()
	idle, slack := unix.NsecToTimeval(d.s.keptIdle.Nanoseconds()), unix.NsecToTimeval(writeSlack.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &idle)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &slack)
	buf := make([]byte, ipc.MaxRequestBytes+1)
	for {
		n := 0
		for n == 0 || (buf[n-1] != '\n' && n < len(buf)) {
			m, err := syscall.Read(fd, buf[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				return // gone, idle too long, or closed for the shutdown
			}
			n += m
		}
		a, keep := d.s.frameRequest(ctx, nil, p, buf[:n], time.Now())
		out := appendFrame(make([]byte, 0, 2048), a)
		for len(out) > 0 {
			m, err := syscall.SendmsgN(fd, out, nil, nil, syscall.MSG_NOSIGNAL)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return
			}
			out = out[m:]
		}
		if !keep || d.closed() {
			return
		}
	}
}

// requestWait is how long answerNow waits for a request that had not
// arrived with the connection: the helper writes its own a few
// microseconds after connecting. It waits only while no other client is
// waiting to be accepted.
const requestWait = 200 * time.Microsecond

// waitRequest reports whether the accepted socket fd has something to
// read, or its peer closed, within d. It gives up as soon as the
// listening socket lfd has another connection to accept, which the wait
// must not hold up.
func waitRequest(fd, lfd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(lfd), Events: unix.POLLIN}}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		_, err := unix.Ppoll(fds, &ts, nil)
		if err == unix.EINTR {
			continue // the rest of the wait is lost; a client late at worst
		}
		return err == nil && fds[0].Revents != 0
	}
}

// dupFD returns a duplicate of l's socket descriptor, for runRaw to use in
// place of l's own Accept, which must not be used from then on.
func dupFD(l *net.UnixListener) (int, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(lfd uintptr) { fd, derr = unix.FcntlInt(lfd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, os.NewSyscallError("fcntl", derr)
}

// fdConn turns an accepted socket into a net.Conn, taking fd over.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close() // FileConn works on a duplicate
	return net.FileConn(f)
}
