// Package tokencli is the command line of tapis-token, which prints a
// fresh Tapis access token held by tapis-agent and manages the agent's
// sessions:
//
//	curl -H "X-Tapis-Token: $(tapis-token designsafe)" https://designsafe.tapis.io/v3/systems
//
// tapis-token is started for every such call, so its binary holds only
// Hot, the token path; every other command line runs Main inside the
// tapis-agent binary, which tapis-token executes for it under the name
// tapis-token (see cmd/tapis-token). A small binary starts faster.
package tokencli

import (
	"errors"
	"fmt"
	"io"
)

// Version is what `tapis-token version` prints; the binary's main sets it.
var Version = "dev"

// Exit codes, listed in the help text.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitLogin       = 4
	exitUpstream    = 5
)

const usage = `usage: tapis-token [TENANT] [--min-valid DURATION] [-H | --json | --env]
       tapis-token COMMAND [args]

Prints a current Tapis access token for TENANT (default: default_tenant, or
the only tenant) and a newline, nothing else:

  curl -H "X-Tapis-Token: $(tapis-token designsafe)" https://designsafe.tapis.io/v3/systems

Flags:
  --min-valid DURATION  the token must stay valid this long (e.g. 2h, 90m;
                        default 60s); the agent refreshes first if needed
  -H, --header          print "X-Tapis-Token: <token>"
  --json                print tenant, base_url, username, access_token,
                        expires_at and expires_in as JSON
  --env                 print export lines for TAPIS_BASE_URL and TAPIS_TOKEN

Commands:
  login [TENANT] [--username NAME] [--password-stdin]
                        log in (prompts for the password without echo,
                        up to 3 tries; --password-stdin tries once);
                        starts an agent when none is running
  login [TENANT] --device [--client-id ID] [--client-key-stdin]
                        log in by approving a code in a browser elsewhere;
                        needs an OAuth client (client_id and
                        client_key_file in the config, or these flags)
  logout [TENANT]       revoke and forget the tenant's tokens
  status [--json]       the agent's tenants, their state and expiries
  claims [TENANT]       the decoded claims of the current access token
  import TENANT [--refresh-token [--client-id ID] [--client-key-stdin]]
                        hand the agent an access token read from stdin
                        (valid until it expires), or a refresh token and
                        on the next line, with --client-key-stdin, the key
                        of the client it was issued to
  version               print the version
  help                  print this help

Exit codes:
  0  ok
  1  other error
  2  usage error
  3  agent not reachable
  4  login required, or Tapis refused the username or password
  5  Tapis unavailable and no token valid long enough

The agent's socket: $TAPIS_AGENT_SOCK, else
$XDG_RUNTIME_DIR/tapis-agent/agent.sock, else /tmp/tapis-agent-$UID/agent.sock.
`

// failure is an error with the exit code and the hint to print.
type failure struct {
	code int
	msg  string
	hint string
}

func (f *failure) Error() string { return f.msg }

func usageErr(format string, args ...any) error {
	return &failure{code: exitUsage, msg: fmt.Sprintf(format, args...), hint: "tapis-token help"}
}

// Main runs one tapis-token command line and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return report(dispatch(args, stdin, stdout, stderr), stderr)
}

// Hot runs the command lines that tapis-token answers itself, the ones
// scripts run on every call: [TENANT] [--min-valid DURATION] [-H]. For any
// other command line it reports false, having done nothing: Main runs
// those. It reaches none of the code of the other commands, so that the
// linker leaves that code out of tapis-token.
func Hot(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) > 0 && isCommand(args[0]) {
		return 0, false
	}
	ta, err := parseTokenArgs(args)
	if err != nil || ta.json || ta.env {
		return 0, false // Main reports the usage error, or formats the answer
	}
	tok, err := client().Token(ta.tenant, ta.minValid)
	if err == nil {
		err = writePlain(stdout, tok, ta.header)
	}
	return report(err, stderr), true
}

// report prints err, if any, as an error line and a hint line, and
// returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	f := classify(err)
	fmt.Fprintf(stderr, "tapis-token: %s\n", f.msg)
	fmt.Fprintf(stderr, "tapis-token: hint: %s\n", f.hint)
	return f.code
}

// isCommand reports whether a first argument names a command rather than
// a tenant: config refuses tenants with these names.
func isCommand(a string) bool {
	switch a {
	case "login", "logout", "status", "claims", "import", "version", "--version", "help", "-h", "--help":
		return true
	}
	return false
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && isCommand(args[0]) {
		switch args[0] {
		case "login":
			return cmdLogin(args[1:], stdin, stderr)
		case "logout":
			return cmdLogout(args[1:], stderr)
		case "status":
			return cmdStatus(args[1:], stdout)
		case "claims":
			return cmdClaims(args[1:], stdout)
		case "import":
			return cmdImport(args[1:], stdin, stderr)
		case "version", "--version":
			fmt.Fprintln(stdout, "tapis-token", Version)
			return nil
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	return cmdToken(args, stdout)
}

var errNoValue = errors.New("needs a value")
