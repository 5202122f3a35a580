package wire

import (
	"io"
	"os"
	"syscall"
	"time"
)

// conn is a blocking Unix stream socket whose reads and writes end at a
// deadline. The client uses it instead of package net: net registers every
// socket with the runtime's poller, which costs tapis-token an epoll
// instance, an extra thread and a hand-off between threads on each read,
// about a third of its run time. A blocking read on one socket needs none
// of that.
type conn struct {
	fd       int
	deadline time.Duration // on clock
	polled   bool          // the first read has polled, or must not (see poll)
	sndSetAt time.Duration // on clock, when SO_SNDTIMEO was last set
}

// clockBase is the origin of clock.
var clockBase = time.Now()

// clock reads the monotonic clock. A conn keeps its times as clock
// readings rather than time.Times: a time.Time in a type that reaches an
// interface (conn is an io.Reader) keeps time's formatting and time zone
// code in tapis-token, for a String method never called.
func clock() time.Duration { return time.Since(clockBase) }

// pollFor bounds how long the first read of an answer polls before it
// sleeps.
const pollFor = 200 * time.Microsecond

// dial connects to the Unix socket at path. Its errors read like package
// net's ("dial unix PATH: connect: …") and wrap the errno.
func dial(path string, timeout time.Duration, poll bool) (*conn, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		return nil, wrap("dial unix "+path+": "+err.Error(), err)
	}
	c := &conn{fd: fd, deadline: clock() + timeout, polled: !poll}
	// A connect to a listener whose backlog is full blocks for up to the
	// send timeout.
	if err := c.setTimeout(syscall.SO_SNDTIMEO); err != nil {
		c.Close()
		return nil, wrap("dial unix "+path+": "+err.Error(), err)
	}
	c.sndSetAt = clock()
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		c.Close()
		if err == syscall.EAGAIN {
			err = os.ErrDeadlineExceeded
		} else {
			err = os.NewSyscallError("connect", err)
		}
		return nil, wrap("dial unix "+path+": "+err.Error(), err)
	}
	return c, nil
}

// setTimeout sets the socket option opt (SO_RCVTIMEO or SO_SNDTIMEO) to the
// time left until the deadline. It returns os.ErrDeadlineExceeded when none
// is left: a zero timeval would mean "no timeout" to the kernel.
func (c *conn) setTimeout(opt int) error {
	left := c.deadline - clock()
	if left <= 0 {
		return os.ErrDeadlineExceeded
	}
	tv := syscall.NsecToTimeval(left.Nanoseconds())
	if tv.Sec == 0 && tv.Usec == 0 {
		tv.Usec = 1
	}
	return os.NewSyscallError("setsockopt", syscall.SetsockoptTimeval(c.fd, syscall.SOL_SOCKET, opt, &tv))
}

// Read reads from the socket, failing with os.ErrDeadlineExceeded once the
// deadline has passed.
func (c *conn) Read(b []byte) (int, error) {
	if !c.polled {
		c.polled = true
		if n, ok, err := c.poll(b); ok {
			return readResult(n, err, len(b))
		}
	}
	if err := c.setTimeout(syscall.SO_RCVTIMEO); err != nil {
		return 0, err
	}
	for {
		n, err := syscall.Read(c.fd, b)
		if err == syscall.EINTR {
			continue
		}
		return readResult(n, err, len(b))
	}
}

// poll reads without sleeping, yielding the processor between tries, for
// up to pollFor, and reports whether a read returned anything but EAGAIN.
// The agent answers a token call in well under that; a thread that
// sleeps for the answer instead pays a wake-up, and on a virtual machine
// whose idle processor halts, that wake-up takes longer than the agent's
// whole answer (a third of the helper's round trip, make bench). The
// yield lets an agent that shares this processor run. Only tapis-token
// polls: a program with many calls in flight, each polling, would keep
// the agent from the processors it needs to answer them.
func (c *conn) poll(b []byte) (n int, ok bool, err error) {
	start := time.Now()
	for {
		n, _, err = syscall.Recvfrom(c.fd, b, syscall.MSG_DONTWAIT)
		if err != syscall.EAGAIN && err != syscall.EINTR {
			return n, true, err
		}
		if time.Since(start) >= pollFor {
			return 0, false, nil
		}
		_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// readResult turns the result of a read into Read's, for a buffer of
// size m.
func readResult(n int, err error, m int) (int, error) {
	switch {
	case err == syscall.EAGAIN:
		return 0, os.ErrDeadlineExceeded
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0 && m > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b. MSG_NOSIGNAL turns a peer that went away into
// EPIPE instead of a SIGPIPE.
func (c *conn) Write(b []byte) (int, error) {
	// The timeout dial set still holds unless connecting took a while:
	// one system call less between connecting and the request, which the
	// agent, woken by the connect, is waiting for.
	if clock()-c.sndSetAt > time.Millisecond {
		if err := c.setTimeout(syscall.SO_SNDTIMEO); err != nil {
			return 0, err
		}
		c.sndSetAt = clock()
	}
	done := 0
	for done < len(b) {
		n, err := syscall.SendmsgN(c.fd, b[done:], nil, nil, syscall.MSG_NOSIGNAL)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return done, os.ErrDeadlineExceeded
		case err != nil:
			return done, os.NewSyscallError("write", err)
		}
		done += n
	}
	return done, nil
}

// Close closes the socket.
func (c *conn) Close() error { return syscall.Close(c.fd) }
