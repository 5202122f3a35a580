package ipc

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTokenTimesOut: an agent that accepts and never answers costs a call
// its timeout, spinning or not, and no more.
func TestTokenTimesOut(t *testing.T) {
	var held []net.Conn // open, unanswered, until the test ends
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	path := testAgent(t, func(c net.Conn) { held = append(held, c) })
	for _, spin := range []bool{false, true} {
		start := time.Now()
		_, err := Token(path, TokenCall{Tenant: "dev", Timeout: 200 * time.Millisecond, Spin: spin})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Token(spin %v) from a silent agent = %v; want a deadline error", spin, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Token(spin %v) from a silent agent took %v; want about its 200ms timeout", spin, d)
		}
	}
}

// TestTokenConnectionCut: an agent that reads the request and closes the
// connection (it crashed, or stopped) is unreachable, and says so.
func TestTokenConnectionCut(t *testing.T) {
	path := testAgent(t, func(c net.Conn) {
		c.Read(make([]byte, 512))
		c.Close()
	})
	_, err := Token(path, TokenCall{Tenant: "dev", Timeout: 10 * time.Second})
	if !errors.Is(err, ErrConnectionCut) || !errors.Is(err, ErrAgentUnreachable) {
		t.Errorf("Token from an agent that hung up = %v; want ErrConnectionCut and ErrAgentUnreachable", err)
	}
}

// testAgent listens on a socket in a directory of its own and hands each
// connection to serve, in turn, until the test ends. It returns the
// socket's path.
func testAgent(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
		}
	}()
	return path
}
