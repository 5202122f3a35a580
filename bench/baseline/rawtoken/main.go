// Command rawtoken is the least a Go client of the agent's token frame can
// be: it connects to $TAPIS_AGENT_SOCK, asks for the token of tenant
// "dev" as `tapis-token dev` does, reads the answer until the agent closes the connection and prints
// the token. benchtable compares tapis-token's start-up with it: the
// difference is what tapis-token's own code costs above a Go binary
// doing the same exchange.
//
// It uses package syscall only, so that no package initialisation and no
// run-time poller adds to its start-up, and it checks nothing that the
// exchange does not need (no socket directory check, no error answers).
package main

import "syscall"

const request = "@tapis-agent/1 token dev -\n"

// maxAnswer bounds the answer, as the frame does.
const maxAnswer = 64 << 10

func main() {
	sock, _ := syscall.Getenv("TAPIS_AGENT_SOCK")
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
	if _, err := syscall.Write(1, append(tok, '\n')); err != nil {
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
	syscall.Write(2, []byte("rawtoken: "+action+": "+err.Error()+"\n"))
	syscall.Exit(1)
}
