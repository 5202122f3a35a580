// Command nullagent is a do-nothing agent: it listens on a Unix socket and
// answers every connection's first line with one fixed token frame
// answer, written by the agent's own encoder, then closes it. benchtable
// runs rawtoken against it, so that the floor tapis-token's start-up is
// compared with includes no work of the agent's.
//
// Usage: nullagent SOCKET TOKEN_BYTES
//
// TOKEN_BYTES is the size of the access token in the answer: the size of
// a real token, so that the answer takes as long to copy as the agent's.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

func main() {
	err := run(os.Args[1:])
	fmt.Fprintln(os.Stderr, "nullagent:", err)
	os.Exit(1)
}

// run serves until accepting fails; benchtable ends it with a signal.
func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: nullagent SOCKET TOKEN_BYTES")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return fmt.Errorf("parsing TOKEN_BYTES: %w", err)
	}
	answer, ok := ipc.AppendTokenAnswer(nil, &ipc.TokenResponse{
		Tenant: "dev", BaseURL: "https://dev.tapis.io", Username: "jdoe",
		AccessToken: strings.Repeat("a", n), ExpiresAt: time.Unix(1796112000, 0), ExpiresIn: 14399,
	})
	if !ok {
		return errors.New("TOKEN_BYTES too large for a frame")
	}
	ln, err := net.Listen("unix", args[0])
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serve(c, answer)
	}
}

// serve answers one connection. The request is read before answering, as
// the agent does: a client that finds its answer already waiting would
// be timed on a shorter exchange than the real one.
func serve(c net.Conn, answer []byte) {
	defer c.Close()
	if _, err := bufio.NewReaderSize(c, 512).ReadSlice('\n'); err != nil {
		return
	}
	c.Write(answer)
}
