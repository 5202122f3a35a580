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
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, unanswered, until the test ends
		}
	}()
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
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 512))
			c.Close()
		}
	}()
	_, err = Token(path, TokenCall{Tenant: "dev", Timeout: 10 * time.Second})
	if !errors.Is(err, ErrConnectionCut) || !errors.Is(err, ErrAgentUnreachable) {
		t.Errorf("Token from an agent that hung up = %v; want ErrConnectionCut and ErrAgentUnreachable", err)
	}
}
