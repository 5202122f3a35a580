//go:build linux

// Command rawtoken is the least a Go command that asks the agent for a
// token can be: `rawtoken TENANT` connects to $TAPIS_AGENT_SOCK, sends the
// token frame as `tapis-token TENANT` does, reads the answer until the
// agent closes the connection and prints the token. benchtable compares
// tapis-token's start-up with it: the difference is what tapis-token's own
// code costs above a Go command doing the same exchange.
//
// It reads its argument and environment with package os, as every Go
// command does (the runtime hands a program its arguments through os), and
// speaks to the socket with package syscall only, so that no other package
// initialisation and no run-time poller adds to its start-up. It checks
// nothing that the exchange does not need (no socket directory check, no
// error answers).
package main

import (
	"os"
	"syscall"
)

// maxAnswer bounds the answer, as the frame does.
const maxAnswer = 64 << 10

func main() {
	if len(os.Args) != 2 {
		fail("reading arguments", syscall.EINVAL)
	}
	request := "@tapis-agent/1 token " + os.Args[1] + " -\n"
	sock := os.Getenv("TAPIS_AGENT_SOCK")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("creating socket", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		fail("connecting to "+sock, err)
	}
	if _, err := syscall.Write(fd, []byte(request)); err != nil {
		fail("writing request", err)
	}
	answer := make([]byte, 0, maxAnswer)
	for {
		n, err := syscall.Read(fd, answer[len(answer):cap(answer)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("reading answer", err)
		}
		if n == 0 {
			break
		}
		answer = answer[:len(answer)+n]
		if len(answer) == cap(answer) {
			fail("reading answer", syscall.EMSGSIZE)
		}
	}
	tok := token(answer)
	if tok == nil {
		fail("reading answer", syscall.EBADMSG)
	}
	if _, err := os.Stdout.Write(append(tok, '\n')); err != nil {
		fail("writing token", err)
	}
}

// token returns the access token of an "ok" answer, the first quoted
// field, or nil. A JWT holds no byte that strconv.Quote escapes, so the
// token is the bytes between the quotes.
func token(answer []byte) []byte {
	const ok = "@tapis-agent/1 ok "
	if len(answer) < len(ok) || string(answer[:len(ok)]) != ok {
		return nil
	}
	start := -1
	for i := len(ok); i < len(answer); i++ {
		if answer[i] != '"' {
			continue
		}
		if start >= 0 {
			return answer[start:i]
		}
		start = i + 1
	}
	return nil
}

func fail(action string, err error) {
	os.Stderr.WriteString("rawtoken: " + action + ": " + err.Error() + "\n")
	os.Exit(1)
}
