package ipc

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrAgentUnreachable is wrapped by the errors of a call that reached no
// agent: the socket is missing or refuses connections, its directory fails
// CheckDir, or the connection broke before an answer arrived. Callers test
// it with errors.Is.
var ErrAgentUnreachable = errors.New("agent not reachable")

// TokenCall is one token request over the frame.
type TokenCall struct {
	// Tenant names the tenant; "" means the agent's default tenant.
	Tenant string
	// MinValid is how long the token must stay valid at least; negative
	// leaves the choice to the agent (60 s, or less for tokens that live
	// less than two minutes).
	MinValid time.Duration
	// Timeout bounds the whole call; zero means TokenTimeout.
	Timeout time.Duration
	// Spin makes the first read of the answer poll for it before it
	// sleeps (see conn.read). Only a program that makes one call, as
	// tapis-token does, should spin: many calls in flight, each
	// spinning, would keep the agent from the processors it needs.
	Spin bool
}

// Token makes the call c to the agent at the socket path, on a connection
// of its own, and returns the agent's token or the *Error it answered.
//
// It speaks to the socket with system calls rather than package net: net
// registers every socket with the runtime's poller, which costs a program
// that makes one call an epoll instance, an extra thread and a hand-off
// between threads on each read. tapis-token makes one call per run.
func Token(path string, c TokenCall) (*TokenResponse, error) {
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return nil, Unreachable(err)
	}
	// The request is ready before connecting: the agent, woken by the
	// connection, answers at once when the request is there by then.
	req, err := AppendTokenRequest(make([]byte, 0, 128), c.Tenant, c.MinValid)
	if err != nil {
		return nil, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = TokenTimeout
	}
	conn, err := dial(path, timeout, c.Spin)
	if err != nil {
		return nil, Unreachable(err) // err names the path
	}
	defer conn.close()
	if err := conn.write(req); err != nil {
		return nil, ioError("sending request to agent", path, err)
	}
	answer, err := conn.readLine(MaxAnswerBytes)
	if err != nil {
		if e, ok := err.(*Error); ok {
			return nil, e
		}
		return nil, ioError("reading answer from agent", path, err)
	}
	return ParseAnswer(answer)
}

// ioError wraps a failure on an established connection. A broken
// connection means the agent went away: ErrAgentUnreachable. A timeout
// keeps os.ErrDeadlineExceeded in the chain.
func ioError(action, path string, err error) error {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return wrap(action+": "+ErrAgentUnreachable.Error()+" at "+path+": "+err.Error(), ErrAgentUnreachable, err)
	}
	return wrap(action+" at "+path+": "+err.Error(), err)
}

// Unreachable wraps err, which kept a call from reaching the agent, with
// ErrAgentUnreachable.
func Unreachable(err error) error {
	return wrap(ErrAgentUnreachable.Error()+": "+err.Error(), ErrAgentUnreachable, err)
}

// conn is a blocking Unix stream socket whose reads and writes end at a
// deadline.
type conn struct {
	fd       int
	deadline time.Duration // on clock
	spin     bool          // the next read polls first
}

// clockBase is the origin of clock.
var clockBase = time.Now()

// clock reads the monotonic clock. A conn keeps its times as clock
// readings rather than time.Times: methods of time.Time that reach an
// interface keep time's formatting in tapis-token.
func clock() time.Duration { return time.Since(clockBase) }

// dial connects to the Unix socket at path. Its errors read like package
// net's ("dial unix PATH: connect: …") and wrap the errno.
func dial(path string, timeout time.Duration, spin bool) (*conn, error) {
	fd, err := socket()
	if err != nil {
		err = os.NewSyscallError("socket", err)
		return nil, wrap("dial unix "+path+": "+err.Error(), err)
	}
	c := &conn{fd: fd, deadline: clock() + timeout, spin: spin && canSpin}
	// A connect to a listener whose backlog is full blocks for up to the
	// send timeout, which also bounds the write of the request.
	if err := c.setTimeout(syscall.SO_SNDTIMEO); err != nil {
		c.close()
		return nil, wrap("dial unix "+path+": "+err.Error(), err)
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		c.close()
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

// write writes all of b. A peer gone is EPIPE: the runtime ignores the
// SIGPIPE of a socket.
func (c *conn) write(b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(c.fd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return os.ErrDeadlineExceeded
		case err != nil:
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	return nil
}

// readLine reads one line, its LF included, of at most most bytes: the
// agent's answer. Anything longer is refused with an *Error.
func (c *conn) readLine(most int) ([]byte, error) {
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := c.read(b[len(b):cap(b)])
		if err == io.EOF {
			return nil, malformed("connection closed before the end of the answer")
		}
		if err != nil {
			return nil, err
		}
		b = b[:len(b)+n]
		if len(b) > most {
			return nil, malformed("answer over " + strconv.Itoa(most) + " bytes")
		}
		if b[len(b)-1] == '\n' {
			return b, nil
		}
	}
}

// read reads from the socket, failing with os.ErrDeadlineExceeded once the
// deadline has passed.
func (c *conn) read(b []byte) (int, error) {
	if c.spin {
		c.spin = false
		if n, err, ok := c.poll(b); ok {
			return readResult(n, err)
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
		return readResult(n, err)
	}
}

// pollFor bounds how long the first read of an answer polls before it
// sleeps.
const pollFor = 200 * time.Microsecond

// poll reads without sleeping, yielding the processor between tries, for
// up to pollFor, and reports whether a read returned anything but EAGAIN.
// The agent answers a token call in well under that; a thread that sleeps
// for the answer instead pays a wake-up, and on a virtual machine whose
// idle processor halts, that wake-up takes longer than the agent's whole
// answer (make bench). The yield lets an agent that shares this processor
// run.
func (c *conn) poll(b []byte) (n int, err error, ok bool) {
	start := clock()
	for {
		n, _, err = syscall.Recvfrom(c.fd, b, syscall.MSG_DONTWAIT)
		if err != syscall.EAGAIN && err != syscall.EINTR {
			return n, err, true
		}
		if clock()-start >= pollFor {
			return 0, nil, false
		}
		yield()
	}
}

// readResult turns the result of a read into read's.
func readResult(n int, err error) (int, error) {
	switch {
	case err == syscall.EAGAIN:
		return 0, os.ErrDeadlineExceeded
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) close() { syscall.Close(c.fd) }
