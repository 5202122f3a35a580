// Package hot is the part of tapis-token's command line that the
// tapis-token binary runs itself: printing a token (Run), and the
// argument parsing, errors, hints and exit codes that every tapis-token
// command shares. Package tokencli builds the other commands on it.
//
// tapis-token starts for every curl call, and every package it imports
// is initialised at each start, and its code mapped and unmapped, used or
// not. So this package imports nothing beyond the standard library's
// basics and package ipc/wire: no fmt, no encoding/json, no os/exec, no
// os/signal, no terminal handling (cmd/tapis-token's TestDeps keeps it
// so).
package cmdline

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/shell"
	"github.com/tapis-agent/tapis-agent/internal/suggest"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/lease"
)

// Exit codes, listed in the help text.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitUnreachable = 3
	ExitLogin       = 4
	ExitUpstream    = 5
)

// Failure is an error with the exit code and the hint to print.
type Failure struct {
	Code  int
	Msg   string
	Hint  string // empty: the exit code's fallback hint
	Usage string // a usage error's usage lines, printed between the two
}

func (f *Failure) Error() string { return f.Msg }

// Usage returns a usage error (exit 2) with message msg. WithUsage adds
// the command's usage lines and a hint to its help.
func Usage(msg string) error {
	return &Failure{Code: ExitUsage, Msg: msg}
}

// Run runs the command lines that tapis-token answers itself, the ones
// scripts run on every call: [TENANT] [--min-valid DURATION] [-H | --curl-config].
// For any other command line, and for a failed call whose TENANT looks
// like a mistyped command, it reports false, having printed nothing:
// tokencli.Main runs those.
func Run(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) > 0 && IsCommand(args[0]) {
		return 0, false
	}
	ta, err := ParseTokenArgs(args)
	if err != nil || ta.JSON || ta.Env {
		return 0, false // Main reports the usage error, or formats the answer
	}
	tok, err := ipc.Token(ipc.SocketPath(), ipc.TokenCall{Tenant: ta.Tenant, MinValid: ta.MinValid, Spin: true})
	if err != nil && nearCommand(ta.Tenant) {
		return 0, false // Main tells a mistyped command from a tenant
	}
	if err != nil {
		tok, err = LeaseFallback(ta.Tenant, ta.MinValid, err)
	}
	if err == nil {
		err = WritePlain(stdout, tok.AccessToken, ta.Format)
	}
	return Report(err, stderr), true
}

// LeaseFallback answers a token request that reached no agent (err wraps
// ipc.ErrAgentUnreachable) from the lease file the process names, in a
// batch job (lease.Path); any other err, or no lease file, is returned as
// it is.
func LeaseFallback(tenant string, minValid time.Duration, err error) (*ipc.TokenResponse, error) {
	if !errors.Is(err, ipc.ErrAgentUnreachable) {
		return nil, err
	}
	path, perr := lease.Path(tenant)
	switch {
	case perr != nil:
		return nil, perr
	case path == "":
		return nil, err
	}
	return lease.Read(path, tenant, minValid, time.Now())
}

// IsCommand reports whether a first argument names a command rather than
// a tenant: config refuses tenants with these names.
func IsCommand(a string) bool {
	switch a {
	case "--version", "-h", "--help":
		return true
	}
	for _, c := range commandNames {
		if a == c {
			return true
		}
	}
	return false
}

// commandNames are tapis-token's commands. An array: it needs no
// initialisation at each start.
var commandNames = [...]string{"login", "logout", "status", "claims", "import", "exec", "lease", "sbatch", "version", "help"}

// nearCommand reports whether a tenant name is a likely typo of a
// command: tapis-token lgoin.
func nearCommand(tenant string) bool {
	return tenant != "" && suggest.Closest(tenant, commandNames[:]) != ""
}

// Info answers the command lines that both programs answer alike,
// version and help, and reports whether cmd was one of them.
func Info(cmd, program, version, usage string, stdout io.Writer) bool {
	switch cmd {
	case "version", "--version":
		io.WriteString(stdout, program+" "+version+"\n")
	case "help", "-h", "--help":
		io.WriteString(stdout, usage)
	default:
		return false
	}
	return true
}

// Report prints err, if any, as an error line and a hint line (a usage
// error's usage lines between them), and returns the exit code.
func Report(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	f := classify(err)
	io.WriteString(stderr, "tapis-token: "+f.Msg+"\n"+f.Usage+"tapis-token: hint: "+f.Hint+"\n")
	return f.Code
}

// classify maps an error to its exit code, message and hint. The hint is
// never empty: every error names the next command to run.
func classify(err error) *Failure {
	f := *classifyErr(err)
	if f.Hint == "" {
		f.Hint = fallbackHint(f.Code)
	}
	return &f
}

func classifyErr(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, ipc.ErrNotYourAgent) {
		return &Failure{Code: ExitUnreachable, Msg: err.Error(), Hint: privateSocketHint}
	}
	var le *lease.Error
	if errors.As(err, &le) {
		return &Failure{Code: ExitUnreachable, Msg: "no agent answers, and " + le.Message, Hint: le.Hint}
	}
	if errors.Is(err, ipc.ErrConnectionCut) {
		return &Failure{Code: ExitUnreachable, Msg: err.Error(),
			Hint: "the agent stopped or crashed while answering; " + ipc.HintLog + "; then " + ipc.HintStart}
	}
	if errors.Is(err, ipc.ErrAgentUnreachable) {
		sock := ipc.SocketPath()
		hint := SocketDirHint(filepath.Dir(sock))
		if hint != "" {
			return &Failure{Code: ExitUnreachable, Msg: unreachable(err, sock), Hint: hint}
		}
		if f := elsewhere(sock); f != nil {
			return f
		}
		return &Failure{Code: ExitUnreachable, Msg: unreachable(err, sock), Hint: ipc.HintStart}
	}
	if isTimeout(err) {
		return &Failure{Code: ExitError, Msg: "the agent did not answer in time", Hint: "tapis-token status shows whether the agent is healthy; " + logHint()}
	}
	var ie *ipc.Error
	if errors.As(err, &ie) {
		code := ExitError
		hint := ie.Hint
		switch ie.Code {
		case ipc.CodeLoginRequired, ipc.CodeBadCredentials:
			code = ExitLogin
		case ipc.CodeUpstreamUnavailable:
			code = ExitUpstream
		}
		switch {
		case hint != "":
		case ie.Code == ipc.CodeInternal:
			hint = logHint()
		default:
			hint = ipc.Hint(ie.Code)
		}
		return &Failure{Code: code, Msg: ie.Message, Hint: hint}
	}
	return &Failure{Code: ExitError, Msg: err.Error(), Hint: "tapis-token status shows whether the agent is healthy; " + logHint()}
}

// elsewhere is the failure to reach an agent at sock when the shared
// state directory records one on another host of the cluster, else nil.
func elsewhere(sock string) *Failure {
	self, err := ipc.Hostname()
	if err != nil {
		return nil
	}
	hosts := ipc.OtherAgentHosts(ipc.HostsDir(), self)
	if len(hosts) == 0 {
		return nil
	}
	where := hosts[0]
	for i, h := range hosts[1:] {
		if i == len(hosts)-2 {
			where += " and " + h
		} else {
			where += ", " + h
		}
	}
	return &Failure{Code: ExitUnreachable,
		Msg:  "no agent answers at " + sock + " on this host (" + self + "): your agent runs on " + where + "; log in here with `tapis-token login`, or ssh " + hosts[0],
		Hint: "tapis-token login, or ssh " + hosts[0]}
}

// unreachable says why no agent answered on sock, in the user's words
// rather than the system call's.
func unreachable(err error, sock string) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no agent is running: " + sock + " does not exist"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no agent is running: nothing answers on " + sock + " (an agent that stopped left it)"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return "no access to the agent's socket " + sock
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return "the agent on " + sock + " closed the connection before it answered"
	case isTimeout(err):
		return "the agent on " + sock + " did not answer in time"
	}
	return err.Error() // an unsafe socket directory, said in its words
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// fallbackHint is the hint of an error that came without one, chosen by
// its exit code.
func fallbackHint(code int) string {
	switch code {
	case ExitUsage:
		return "tapis-token help"
	case ExitUnreachable:
		return ipc.HintStart
	case ExitLogin:
		return ipc.HintLogin
	case ExitUpstream:
		return ipc.HintUpstream
	}
	return ipc.HintStatus
}

// logHint says where the agent's log is: the journal under systemd, else
// the file that `tapis-agent start` and the macOS LaunchAgent write.
func logHint() string {
	if runtime.GOOS == "darwin" {
		return "the agent's log says more: " + AgentLogPath()
	}
	return "the agent's log says more: journalctl --user -u tapis-agent, or " + AgentLogPath()
}

// AgentLogPath is where an agent that `tapis-agent start` runs logs:
// $XDG_STATE_HOME/tapis-agent/agent.log, else ~/.local/state/….
func AgentLogPath() string { return filepath.Join(ipc.StateDir(), "agent.log") }

// privateSocketHint is the way out of a socket path that another user
// controls: one only the user can write, on this host.
const privateSocketHint = `use a socket of your own: export TAPIS_AGENT_SOCK="$HOME/.tapis-agent/$(hostname)/agent.sock" (or set XDG_RUNTIME_DIR to a directory only you can write), then start the agent: eval "$(tapis-agent start)"`

// SocketDirHint returns the fix for a socket directory that exists but
// that ipc refuses to trust (as tmux refuses one), or "" when it is fine or
// missing: a missing directory only means that no agent runs.
func SocketDirHint(dir string) string {
	var st syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || ipc.CheckDir(dir) == nil {
		return ""
	}
	switch {
	case st.Mode&syscall.S_IFMT == syscall.S_IFDIR && int(st.Uid) == os.Getuid():
		return "chmod 0700 " + shell.Quote(dir) + ", or set TAPIS_AGENT_SOCK to a socket in a directory of yours"
	case int(st.Uid) != os.Getuid():
		// Made by another user first: not the user's to remove.
		return privateSocketHint
	}
	return "remove " + shell.Quote(dir) + ", or set TAPIS_AGENT_SOCK to a socket in a directory of yours"
}

// AgentBinary returns the path of tapis-agent: the one beside the running
// program, else the first on PATH (absolute entries only, as os/exec
// refuses the others), found without os/exec, which tapis-token would
// otherwise initialise at every start.
func AgentBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "tapis-agent"); isExecutable(p) {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if p := filepath.Join(dir, "tapis-agent"); filepath.IsAbs(dir) && isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("tapis-agent is neither beside tapis-token nor on PATH")
}

// isExecutable reports whether p is a regular file with an execute bit.
// syscall.Stat, not os.Stat: an os.FileInfo would bring time's formatting
// into tapis-token.
func isExecutable(p string) bool {
	var st syscall.Stat_t
	return syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&0o111 != 0
}
