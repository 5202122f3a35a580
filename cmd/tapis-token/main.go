// Command tapis-token prints a fresh Tapis access token held by
// tapis-agent, and manages the agent's sessions:
//
//	curl -H @<(tapis-token -H designsafe) https://designsafe.tapis.io/v3/systems
//
// It is started for every such call, so it stays small: it answers the
// token command lines itself (internal/cmdline), with no net/http, no
// crypto/tls and no encoding/json, and executes tapis-agent under its own
// name for every other command (login, status, --json, …), whose code
// lives in that binary (internal/tokencli).
package main

import (
	"os"
	"syscall"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

func main() {
	if code, ok := cmdline.Run(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
	agent, err := cmdline.AgentBinary()
	if err == nil {
		// tapis-agent runs the command line as tapis-token when started
		// under that name; it keeps this process, its terminal and signals.
		err = syscall.Exec(agent, append([]string{"tapis-token"}, os.Args[1:]...), os.Environ())
	}
	os.Stderr.WriteString("tapis-token: running tapis-agent: " + err.Error() + "\n" +
		"tapis-token: hint: install tapis-agent beside tapis-token or on PATH (make install puts both into the same directory)\n")
	os.Exit(1)
}
