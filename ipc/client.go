package ipc

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// ErrAgentUnreachable is wrapped by the errors of a call that reached no
// agent: the socket is missing or refuses connections, its directory fails
// CheckDir, or the connection broke before an answer arrived. Callers test
// it with errors.Is.
var ErrAgentUnreachable = errors.New("agent not reachable")

// ErrConnectionCut is wrapped, with ErrAgentUnreachable, by the error of a
// call whose connection the agent closed or reset before it answered: it
// stopped, or crashed, while at work on the call.
var ErrConnectionCut = errors.New("the agent closed the connection before it answered")

// TokenCall is one token request over the frame.
type TokenCall struct {
	Tenant   string        // "" means the agent's default tenant
	MinValid time.Duration // negative leaves the choice to the agent
	Timeout  time.Duration // bounds the whole call; zero means TokenTimeout
	// Spin makes the first read of the answer poll for it before it
	// sleeps (see spin). Only a program that makes one call, as
	// tapis-token does, should spin: many calls in flight, each
	// spinning, would keep the agent from the processors it needs.
	Spin bool
}

// Token makes the call c to the agent at the socket path, on a connection
// of its own, and returns the agent's token or the *Error it answered.
//
// It speaks to the socket with blocking system calls rather than package
// net, which registers every socket with the runtime's poller: that costs
// a program making one call an epoll instance, an extra thread and a
// hand-off between threads on each read. tapis-token makes one call.
func Token(path string, c TokenCall) (*TokenResponse, error) {
	if err := CheckPath(path); err != nil {
		return nil, Unreachable(err)
	}
	// The request is ready before connecting: the agent, woken by the
	// connection, answers at once when the request is there by then.
	req, err := AppendTokenRequest(make([]byte, 0, 128), c.Tenant, c.MinValid)
	if err != nil {
		return nil, err
	}
	if c.Timeout <= 0 {
		c.Timeout = TokenTimeout
	}
	fd, err := dial(path, c.Timeout)
	if err != nil {
		return nil, Unreachable(wrap("dial unix "+path+": "+err.Error(), err))
	}
	defer syscall.Close(fd)
	if err := CheckPeer(fd, path); err != nil {
		return nil, Unreachable(err)
	}
	if err := write(fd, req); err != nil {
		return nil, ioError("sending request to agent", path, err)
	}
	answer := make([]byte, 0, 4096)
	timed := false // SO_RCVTIMEO is set
	for len(answer) == 0 || answer[len(answer)-1] != '\n' {
		if len(answer) > MaxAnswerBytes {
			break // ParseAnswer refuses it
		}
		if len(answer) == cap(answer) {
			answer = append(answer, 0)[:len(answer)]
		}
		n, err := read(fd, answer[len(answer):cap(answer)], c.Spin && len(answer) == 0, c.Timeout, &timed)
		if n == 0 && err == nil {
			err = ErrConnectionCut
		}
		if err != nil {
			return nil, ioError("reading answer from agent", path, err)
		}
		answer = answer[:len(answer)+n]
	}
	return ParseAnswer(answer) // refuses more than one line, or too long
}

// ioError wraps a failure on an established connection. A broken
// connection means the agent went away: ErrAgentUnreachable. A timeout
// keeps os.ErrDeadlineExceeded in the chain.
func ioError(action, path string, err error) error {
	if err == ErrConnectionCut {
		return wrap(action+" at "+path+": "+err.Error(), ErrAgentUnreachable, err)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return wrap(action+": "+ErrAgentUnreachable.Error()+" at "+path+": "+err.Error(), ErrAgentUnreachable, ErrConnectionCut, err)
	}
	return wrap(action+" at "+path+": "+err.Error(), err)
}

// Unreachable wraps err, which kept a call from reaching the agent, with
// ErrAgentUnreachable.
func Unreachable(err error) error {
	return wrap(ErrAgentUnreachable.Error()+": "+err.Error(), ErrAgentUnreachable, err)
}

// dial connects a blocking Unix stream socket to path, refusing a symlink
// or another user's socket there (see SocketAddr). Its send timeout
// bounds each later write, and the connect itself when the agent's backlog
// is full.
func dial(path string, timeout time.Duration) (int, error) {
	addr, done, err := socketAddr(path)
	if err != nil {
		return -1, err
	}
	defer done()
	fd, err := socket()
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setTimeout(fd, syscall.SO_SNDTIMEO, timeout); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	for {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: addr})
		if err == syscall.ENOENT && addr != path {
			addr = path // no /proc to connect through
			continue
		}
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		if err == syscall.EAGAIN {
			return -1, os.ErrDeadlineExceeded
		}
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// write writes all of b to fd. A peer gone is EPIPE: the runtime ignores
// the SIGPIPE of a socket.
func write(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
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

// setTimeout sets the socket option opt (SO_SNDTIMEO or SO_RCVTIMEO) of
// fd to timeout.
func setTimeout(fd, opt int, timeout time.Duration) error {
	tv := syscall.NsecToTimeval(max(timeout, time.Microsecond).Nanoseconds())
	return os.NewSyscallError("setsockopt", syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv))
}

// read reads from fd; with spinFirst it polls first (see spin). Before the
// first read that may sleep it bounds the wait with SO_RCVTIMEO (timeout),
// and records that in *timed: a spin that finds the answer, the common
// case, needs no timeout and saves the system call.
func read(fd int, b []byte, spinFirst bool, timeout time.Duration, timed *bool) (int, error) {
	n, ok, err := 0, false, error(nil)
	if spinFirst {
		n, ok, err = spin(fd, b)
	}
	if !ok {
		if !*timed {
			if err := setTimeout(fd, syscall.SO_RCVTIMEO, timeout); err != nil {
				return 0, err
			}
			*timed = true
		}
		n, err = syscall.Read(fd, b)
	}
	for err == syscall.EINTR {
		n, err = syscall.Read(fd, b)
	}
	switch {
	case err == syscall.EAGAIN:
		return 0, os.ErrDeadlineExceeded
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	}
	return n, nil
}

// spinFor bounds how long spin polls.
const spinFor = 200 * time.Microsecond

// spin reads from fd without sleeping, yielding the processor between
// tries, for up to spinFor, and reports whether a read returned anything
// but EAGAIN. The agent answers a token call in well under that; a thread
// that sleeps for the answer instead pays a wake-up, and on a virtual
// machine whose idle processor halts, that wake-up takes longer than the
// agent's whole answer (make bench). The yield lets an agent that shares
// this processor run.
func spin(fd int, b []byte) (n int, ok bool, err error) {
	for start := time.Now(); canSpin && time.Since(start) < spinFor; yield() {
		n, _, err = syscall.Recvfrom(fd, b, syscall.MSG_DONTWAIT)
		if err != syscall.EAGAIN {
			return n, true, err
		}
	}
	return 0, false, nil
}
