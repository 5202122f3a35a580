// Package tokencli is the command line of tapis-token, which prints a
// fresh Tapis access token held by tapis-agent and manages the agent's
// sessions:
//
//	curl -H @<(tapis-token -H designsafe) https://designsafe.tapis.io/v3/systems
//
// tapis-token is started for every such call, so its binary holds only
// package hot, the token path; every other command line runs Main inside
// the tapis-agent binary, which tapis-token executes for it under the
// name tapis-token (see cmd/tapis-token). A binary that initialises
// fewer packages starts faster.
package tokencli

import (
	"context"
	"io"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

// Version is what `tapis-token version` prints; the binary's main sets it.
var Version = "dev"

const usage = `usage: tapis-token [TENANT] [--min-valid DURATION] [-H | --curl-config | --json | --env]
       tapis-token COMMAND [args]

Prints a current Tapis access token for TENANT (default: default_tenant, or
the only tenant) and a newline, nothing else. Give it to curl through a file,
not as an argument, which every user of the machine can read:

  curl -H @<(tapis-token -H designsafe) https://designsafe.tapis.io/v3/systems

Flags:
  --min-valid DURATION  the token must stay valid this long (e.g. 2h, 90m;
                        default 60s); the agent refreshes first if needed
  -H, --header          print "X-Tapis-Token: <token>", for curl -H @<(...)
  --curl-config         print header = "X-Tapis-Token: <token>", for
                        curl -K <(...)
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
  exec [TENANT] [--min-valid DURATION] -- CMD [ARG...]
                        run CMD with TAPIS_TOKEN and TAPIS_BASE_URL in its
                        environment (nothing refreshes them while it runs;
                        exits 127 when CMD is not found, 126 when it
                        cannot run)
  logout [TENANT]       revoke and forget the tenant's tokens
  status [--json]       the agent's tenants, their state and expiries
  claims [TENANT]       the decoded claims of the current access token
  import TENANT [--refresh-token [--client-id ID] [--client-key-stdin]]
                        hand the agent an access token read from stdin
                        (valid until it expires), or a refresh token and
                        on the next line, with --client-key-stdin, the key
                        of the client it was issued to
  lease [TENANT] --job JOBID [--min-valid DURATION] [--file PATH]
                        keep a token for a batch job in a file on the
                        shared home while Slurm says the job is pending or
                        running (--min-valid: the least validity the file's
                        token keeps, default 1h), then remove it; the job
                        reads it with tapis-token or the Python client when
                        no agent answers there (default file:
                        ~/.local/state/tapis-agent/jobs/JOBID/TENANT.token,
                        found through SLURM_JOB_ID; another through
                        TAPIS_TOKEN_FILE); prints the file's path
  lease [TENANT] --job ID --until TIME [--file PATH]
                        the same for another scheduler's job, until TIME
                        (48h, or 2026-12-24T18:00)
  lease [TENANT] --job ID --cancel
                        end a lease now and remove its file
  sbatch [TENANT] [--min-valid DURATION] [--file PATH] -- SBATCH_ARGS
  sbatch SBATCH_ARGS    submit a job with sbatch, held until its lease is
                        in place; prints the job id
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

// Main runs one tapis-token command line and returns the exit code. ctx
// bounds the calls to the agent.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cmdline.Report(dispatch(ctx, args, stdin, stdout, stderr), stderr)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && cmdline.IsCommand(args[0]) {
		switch args[0] {
		case "login":
			return cmdLogin(ctx, args[1:], stdin, stderr)
		case "logout":
			return cmdLogout(ctx, args[1:], stderr)
		case "status":
			return cmdStatus(ctx, args[1:], stdout)
		case "claims":
			return cmdClaims(ctx, args[1:], stdout)
		case "import":
			return cmdImport(ctx, args[1:], stdin, stderr)
		case "lease":
			return cmdLease(ctx, args[1:], stdout, stderr)
		case "sbatch":
			return cmdSbatch(ctx, args[1:], stdout, stderr)
		case "exec":
			return cmdExec(ctx, args[1:])
		}
		if cmdline.Info(args[0], "tapis-token", Version, usage, stdout) {
			return nil
		}
	}
	return cmdToken(ctx, args, stdout)
}
