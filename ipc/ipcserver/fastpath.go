package ipcserver

// The fast path. tapis-token is started for every curl call and asks for
// one token on a fresh connection; net/http's per-connection machinery (a
// background read per request, deadline timers, buffer pools) roughly
// doubles the round trip of that call. So every accepted connection goes
// to a dispatcher first: it reads the request head itself and answers the
// helper's call directly when the head is a plain token request that
// net/http would read the same way and answer with serveToken. Everything
// else, valid or not, is handed to net/http with the bytes already read,
// and is answered exactly as before.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/wire"
	"golang.org/x/sys/unix"
)

const (
	// firstReadWindow bounds how long the dispatcher waits for a whole
	// request head before it hands the connection to net/http. The helper
	// writes its request in one go right after connecting: it is there at
	// once. A slower client is net/http's, whose ReadHeaderTimeout starts
	// when it takes the connection, so its header time grows by this much.
	firstReadWindow = 20 * time.Millisecond
	// firstReadBytes is the dispatcher's first buffer; the helper's
	// request is about 130 bytes.
	firstReadBytes = 512
	// clientWatchDelay is how long a fast token call runs before a read
	// watches for its client going away, which cancels the call's context
	// as net/http does. Most calls are answered sooner and never pay for
	// the read.
	clientWatchDelay = 10 * time.Millisecond
)

// aLongTimeAgo is a read deadline in the past, which ends a pending read.
var aLongTimeAgo = time.Unix(1, 0)

// accept accepts connections on l and starts a dispatcher for each, until
// accepting fails for good; it returns that error (net.ErrClosed once l is
// closed). Transient failures such as running out of file descriptors are
// retried after a pause, as http.Server does. Every dispatcher is counted
// in wg. A Unix listener, the agent's, is served by acceptRaw.
func (s *Server) accept(ctx context.Context, l *limitListener, hl *handoffListener, wg *sync.WaitGroup) error {
	if ul, ok := l.Listener.(*net.UnixListener); ok && !s.noFastPath {
		return s.acceptRaw(ctx, l, ul, hl, wg)
	}
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); !ok || !te.Temporary() {
				return err
			}
			if delay, err = s.acceptPause(l, delay, err); err != nil {
				return err
			}
			continue
		}
		delay = 0
		wg.Go(func() { s.dispatch(ctx, c, hl, s.readPeer(c), nil) })
	}
}

// acceptPause waits after a transient accept failure, twice as long as
// the last time (delay) up to a second, and returns the new delay;
// net.ErrClosed when l closes meanwhile.
func (s *Server) acceptPause(l *limitListener, delay time.Duration, err error) (time.Duration, error) {
	delay = min(max(2*delay, 5*time.Millisecond), time.Second)
	s.log.Debug("ipc_accept_retry", slog.String("error", err.Error()), slog.Duration("delay", delay))
	select {
	case <-time.After(delay):
		return delay, nil
	case <-l.done:
		return delay, net.ErrClosed
	}
}

// acceptRaw is accept for a Unix listener. It blocks in accept(2) on a
// blocking copy of the listening socket and answers the helper's token
// call right there when it can (answerNow); other connections become
// net.Conns for dispatch. Through package net the same call pays for a
// wake-up of the runtime's poller thread, a hand-off to the goroutine
// waiting in Accept and the new socket's registration with epoll, about a
// quarter of the helper's round trip, and the helper's round trip is most
// of what tapis-token adds to a curl call.
func (s *Server) acceptRaw(ctx context.Context, l *limitListener, ul *net.UnixListener, hl *handoffListener, wg *sync.WaitGroup) error {
	lfd, err := blockingDup(ul)
	if err != nil {
		return err
	}
	// Closing l shuts the socket down, which ends a blocked accept(2);
	// closing a descriptor would not. The descriptor is closed only once
	// the watch has ended, so that shutdown never hits a reused number.
	exited := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-l.done:
			_ = syscall.Shutdown(lfd, syscall.SHUT_RDWR)
		case <-exited:
		}
	}()
	defer func() {
		close(exited)
		<-watched
		syscall.Close(lfd)
	}()
	buf := make([]byte, firstReadBytes)
	var delay time.Duration
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return net.ErrClosed
		}
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_CLOEXEC)
		if err != nil {
			<-l.sem
			select {
			case <-l.done:
				return net.ErrClosed
			default:
			}
			switch err {
			case syscall.EINTR, syscall.ECONNABORTED:
				continue
			case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
				if delay, err = s.acceptPause(l, delay, os.NewSyscallError("accept", err)); err != nil {
					return err
				}
				continue
			}
			return os.NewSyscallError("accept", err)
		}
		delay = 0
		p, read, done := s.answerNow(ctx, fd, lfd, buf)
		if done {
			<-l.sem
			continue
		}
		c, err := fdConn(fd)
		if err != nil {
			<-l.sem
			s.log.Warn("ipc_accept_failed", slog.String("error", err.Error()))
			continue
		}
		lc := &limitConn{Conn: c, release: func() { <-l.sem }}
		wg.Go(func() { s.dispatch(ctx, lc, hl, p, read) })
	}
}

// blockingDup returns a blocking duplicate of l's socket. Blocking mode
// belongs to the socket, not the descriptor: l's own Accept must not be
// used from then on.
func blockingDup(l *net.UnixListener) (int, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(lfd uintptr) {
		fd, derr = unix.FcntlInt(lfd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// fdConn turns an accepted socket into a net.Conn, taking fd over.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close() // FileConn works on a duplicate
	return net.FileConn(f)
}

// answerNow reads the peer's credentials and what the accepted socket fd
// holds so far, without waiting, and answers it there when that is a
// whole token request the Handler answers at once (InstantTokener): the
// helper's call, nearly always, since it writes its request right after
// connecting. It then closes fd and reports done. Otherwise it returns
// the peer and the bytes read (copied out of buf), for dispatch. lfd is
// the listening socket (see waitRequest).
func (s *Server) answerNow(ctx context.Context, fd, lfd int, buf []byte) (p *peer, read []byte, done bool) {
	p = s.peerOf(unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED))
	it, ok := s.h.(InstantTokener)
	if !ok || !s.serves(p) {
		return p, nil, false
	}
	n, _, err := syscall.Recvfrom(fd, buf, syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN && waitRequest(fd, lfd, requestWait) {
		n, _, err = syscall.Recvfrom(fd, buf, syscall.MSG_DONTWAIT)
	}
	if err != nil || n <= 0 {
		return p, nil, false
	}
	read = append([]byte(nil), buf[:n]...)
	if bytes.Index(read, []byte("\r\n\r\n")) != n-4 {
		return p, read, false // not a whole head, or more than one
	}
	req, ok := parseTokenHead(read)
	if !ok {
		return p, read, false
	}
	start := time.Now()
	tenant, minValid, ok := plainTokenQuery(req.rawQuery)
	var refusal *answer
	if !ok {
		tenant, minValid, refusal = tokenQuery(req.rawQuery)
	}
	var a answer
	if refusal != nil {
		a = *refusal
	} else {
		resp, ok := tokenInstant(it, tenant, minValid)
		if !ok {
			return p, read, false
		}
		a = okAnswer(resp)
		a.tenant = tenant
	}
	b := appendAnswer(make([]byte, 0, 1024+len(read)), a, req.http10, time.Now())
	s.logRequest(context.WithValue(ctx, peerKey{}, p), http.MethodGet, ipc.PathToken, start, a)
	w := sendNow(fd, b)
	if w == len(b) {
		syscall.Close(fd)
		return p, nil, true
	}
	// The socket's buffer is full (a client that reads nothing, or an
	// answer larger than the buffer): finish in the background.
	c, err := fdConn(fd)
	if err != nil {
		return p, nil, true
	}
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(writeSlack))
		_, _ = c.Write(b[w:])
		c.Close()
	}()
	return p, nil, true
}

// plainTokenQuery reads the query the helper sends, tenant=T and
// min_valid=S in either order, either optional, without escapes, as
// tokenQuery would, but without url.ParseQuery's map and sorting, which
// cost the helper's round trip a few microseconds. It reports false for
// any other query, valid or not: tokenQuery reads those.
func plainTokenQuery(raw string) (tenant string, minValid time.Duration, ok bool) {
	minValid = NoMinValid
	var seenTenant, seenMin bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, found := strings.Cut(pair, "=")
		if !found || !unreserved(v) {
			return "", 0, false
		}
		switch {
		case k == "tenant" && !seenTenant:
			seenTenant, tenant = true, v
		case k == "min_valid" && !seenMin && v != "" && len(v) <= 9 && strings.Trim(v, "0123456789") == "":
			n, _ := strconv.Atoi(v) // at most 9 digits: no overflow
			seenMin, minValid = true, time.Duration(n)*time.Second
		default:
			return "", 0, false
		}
	}
	return tenant, minValid, true
}

// unreserved reports whether s has only bytes that the client sends
// unescaped (wire.Unreserved).
func unreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		if !wire.Unreserved(s[i]) {
			return false
		}
	}
	return true
}

// requestWait is how long answerNow waits for a request that had not
// arrived with the connection: the helper writes its own a few
// microseconds after connecting, the Python client some tens. It waits
// only while no other client is waiting to be accepted.
const requestWait = 200 * time.Microsecond

// waitRequest reports whether the accepted socket fd has something to
// read, or its peer closed, within d. It gives up as soon as the
// listening socket lfd has another connection to accept, which the
// wait must not hold up.
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

// sendNow writes as much of b to the socket fd as it takes without
// waiting and returns the count. MSG_NOSIGNAL: a client gone is EPIPE,
// not a SIGPIPE.
func sendNow(fd int, b []byte) int {
	n := 0
	for n < len(b) {
		m, err := syscall.SendmsgN(fd, b[n:], nil, nil, syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return n
}

// tokenInstant calls TokenInstant; a panic in it counts as "not at once",
// so that the request takes the Token path, which answers a panic.
func tokenInstant(it InstantTokener, tenant string, minValid time.Duration) (resp *ipc.TokenResponse, ok bool) {
	defer func() {
		if recover() != nil {
			resp, ok = nil, false
		}
	}()
	resp, ok = it.TokenInstant(tenant, minValid)
	return resp, ok && resp != nil
}

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

// dispatch answers c itself if it carries a token request the fast path
// takes, or hands it to net/http; p is its peer and read what instant has
// read of it already.
func (s *Server) dispatch(ctx context.Context, c net.Conn, hl *handoffListener, p *peer, read []byte) {
	if !s.noFastPath && s.serves(p) {
		var req tokenRequest
		var ok bool
		read, req, ok = s.readTokenRequest(c, read)
		if ok {
			s.answerToken(context.WithValue(ctx, peerKey{}, p), c, req)
			c.Close()
			return
		}
	}
	if !hl.hand(&handoffConn{Conn: c, replay: read, peer: p}) {
		c.Close() // net/http has shut down
	}
}

// tokenRequest is a token request the fast path answers.
type tokenRequest struct {
	rawQuery string
	http10   bool // HTTP/1.0 rather than HTTP/1.1
}

// readTokenRequest reads from c until a request head is complete, the
// first-read window has passed, MaxHeaderBytes are read or the read fails,
// and reports whether what it read is exactly the head of a token request
// the fast path takes. It returns the bytes read either way.
func (s *Server) readTokenRequest(c net.Conn, b []byte) ([]byte, tokenRequest, bool) {
	window := min(firstReadWindow, orDefault(s.ReadHeaderTimeout, defaultReadHeaderTimeout))
	_ = c.SetReadDeadline(time.Now().Add(window))
	// The fast path's client watch reads without a deadline; net/http
	// sets its own.
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	if cap(b) < firstReadBytes {
		b = append(make([]byte, 0, firstReadBytes), b...)
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		// The head came whole before: instant left it for the Token path.
		if i+4 != len(b) {
			return b, tokenRequest{}, false
		}
		req, ok := parseTokenHead(b)
		return b, req, ok
	}
	for {
		if len(b) == cap(b) {
			if len(b) >= MaxHeaderBytes {
				return b, tokenRequest{}, false
			}
			b = slices.Grow(b, min(cap(b), MaxHeaderBytes-len(b)))
		}
		from := max(len(b)-3, 0)
		n, err := c.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if i := bytes.Index(b[from:], []byte("\r\n\r\n")); i >= 0 {
			// A byte after the head (a body, a second request) is
			// net/http's to judge.
			if from+i+4 != len(b) {
				return b, tokenRequest{}, false
			}
			req, ok := parseTokenHead(b)
			return b, req, ok
		}
		if err != nil {
			return b, tokenRequest{}, false
		}
	}
}

// parseTokenHead reports whether head, a request head up to and including
// its blank line, is a token request the fast path takes: one that
// net/http would read the same way, route to serveToken without a body,
// and close the connection after answering. The grammar is deliberately
// narrow: GET of ipc.PathToken with a query of unreserved characters,
// percent escapes, '=', '&' and '+'; HTTP/1.1 with one Host and
// "Connection: close", or HTTP/1.0 without keep-alive; only the headers
// the ipc and Python clients send, with printable ASCII values, and a
// Content-Length of 0 if any. Anything else goes to net/http.
func parseTokenHead(head []byte) (tokenRequest, bool) {
	var req tokenRequest
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	target, ok := bytes.CutPrefix(line, []byte("GET "+ipc.PathToken))
	if !ok {
		return req, false
	}
	target, proto, ok := bytes.Cut(target, []byte(" "))
	if !ok {
		return req, false
	}
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.http10 = true
	default:
		return req, false
	}
	if len(target) > 0 {
		if target[0] != '?' {
			return req, false
		}
		for _, c := range target[1:] {
			if !isQueryByte(c) {
				return req, false
			}
		}
		req.rawQuery = string(target[1:])
	}
	hosts, conns, lengths := 0, 0, 0
	for {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break // the blank line, which ends head
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return req, false
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if (c < ' ' && c != '\t') || c > '~' {
				return req, false
			}
		}
		switch {
		case wire.EqualFoldASCII(name, "Host"):
			hosts++
			for _, c := range value {
				if !isHostByte(c) {
					return req, false
				}
			}
		case wire.EqualFoldASCII(name, "Connection"):
			conns++
			if !wire.EqualFoldASCII(value, "close") {
				return req, false // keep-alive and the rest are net/http's
			}
		case wire.EqualFoldASCII(name, "Content-Length"):
			lengths++
			if string(value) != "0" {
				return req, false
			}
		case wire.EqualFoldASCII(name, "Accept"), wire.EqualFoldASCII(name, "Accept-Encoding"), wire.EqualFoldASCII(name, "User-Agent"):
		default:
			return req, false
		}
	}
	if hosts > 1 || conns > 1 || lengths > 1 {
		return req, false
	}
	// HTTP/1.1 needs a Host, and keeps the connection unless told to
	// close; HTTP/1.0 closes it unless told to keep it.
	if !req.http10 && (hosts == 0 || conns == 0) {
		return req, false
	}
	return req, true
}

// isQueryByte reports whether c may appear in a query the fast path takes.
func isQueryByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '%', '=', '&', '+':
		return true
	}
	return false
}

// isHostByte reports whether c may appear in a Host the fast path takes.
func isHostByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', ':', '[', ']':
		return true
	}
	return false
}

// answerToken answers req on c as the net/http route would: the same
// work, deadline, answer and log line.
func (s *Server) answerToken(ctx context.Context, c net.Conn, req tokenRequest) {
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(tokenWorkTimeout + writeSlack))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := watchClient(c, cancel)
	a, aborted := s.work(ctx, tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
		return s.token(ctx, req.rawQuery)
	})
	w.stop()
	if aborted {
		return // net/http drops the connection without an answer
	}
	b := appendAnswer(make([]byte, 0, 512), a, req.http10, time.Now())
	// Logged before the answer leaves, as net/http's buffered answer does.
	s.logRequest(ctx, http.MethodGet, ipc.PathToken, start, a)
	_, _ = c.Write(b)
}

// appendAnswer appends a to b as the whole HTTP answer net/http writes for
// it after writeJSON, to a request that asked to close the connection:
// the same status line, the handler's headers in net/http's (sorted)
// order, then Date and, for HTTP/1.1, Connection.
func appendAnswer(b []byte, a answer, http10 bool, now time.Time) []byte {
	status, body := encodeAnswer(a.status, a.body)
	if http10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nCache-Control: no-store\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nDate: "...)
	b = appendHTTPDate(b, now)
	if !http10 {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// clientWatch cancels a fast call's context when its client goes away.
type clientWatch struct {
	c    net.Conn
	t    *time.Timer
	done chan struct{} // closed when a started watch has ended
}

// watchClient starts watching c for its client going away (EOF or a read
// error), which calls cancel, once clientWatchDelay has passed.
func watchClient(c net.Conn, cancel context.CancelFunc) *clientWatch {
	w := &clientWatch{c: c, done: make(chan struct{})}
	w.t = time.AfterFunc(clientWatchDelay, func() {
		defer close(w.done)
		var b [1]byte
		// A byte the client sends after its request is ignored, as
		// net/http does on a connection it closes after the answer.
		if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel()
		}
	})
	return w
}

// stop ends the watch and waits for its read to end.
func (w *clientWatch) stop() {
	if w.t.Stop() {
		return // never started
	}
	_ = w.c.SetReadDeadline(aLongTimeAgo)
	<-w.done
}

// handoffListener is the listener net/http serves: it accepts the
// connections the dispatchers hand over.
type handoffListener struct {
	conns     chan net.Conn
	addr      net.Addr
	done      chan struct{}
	closeOnce sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), addr: addr, done: make(chan struct{})}
}

// hand gives c to net/http and reports whether it took it; it does not
// once the listener is closed.
func (l *handoffListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and hand fail; the listener the connections come
// from is the Server's to close.
func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// handoffConn is a connection handed to net/http: it replays the bytes the
// dispatcher read, then reads on, and carries the peer's credentials.
type handoffConn struct {
	net.Conn
	replay []byte
	peer   *peer
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the underlying connection, for peerCred.
func (c *handoffConn) NetConn() net.Conn { return c.Conn }

// appendHTTPDate appends t as an HTTP date (http.TimeFormat, in UTC), as
// AppendFormat writes it but without parsing the layout on every answer.
func appendHTTPDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	yy, mm, dd := t.Date()
	if yy < 0 || yy > 9999 {
		return t.AppendFormat(b, http.TimeFormat)
	}
	hh, mi, ss := t.Clock()
	b = append(b, t.Weekday().String()[:3]...)
	b = append(b, ", "...)
	b = append2(b, dd)
	b = append(b, ' ')
	b = append(b, mm.String()[:3]...)
	b = append(b, ' ')
	b = append2(b, yy/100)
	b = append2(b, yy%100)
	b = append(b, ' ')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, ss)
	return append(b, " GMT"...)
}

// append2 appends n, 0–99, as two digits.
func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
