package tokencli

import (
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

// tokenCommand is the help of the token command line itself,
// `tapis-token [TENANT] …`: the head of the program's help.
var tokenCommand = cmdline.Command{
	Usage:   []string{"[TENANT] [--min-valid DURATION] [-H | --curl-config | --json | --env [--csh | --sh]]"},
	Summary: "print a current access token",
	Flags: []cmdline.FlagHelp{
		{Names: "--min-valid DURATION", Doc: "the token must stay valid this long (e.g. 2h, 90m, 300s; default 60s); the agent refreshes first if needed"},
		{Names: "-H, --header", Doc: `print "X-Tapis-Token: <token>", for curl -H @<(...)`},
		{Names: "--curl-config", Doc: `print header = "X-Tapis-Token: <token>", for curl -K <(...)`},
		{Names: "--json", Doc: "print tenant, base_url, username, access_token, expires_at and expires_in as JSON"},
		{Names: "--env", Doc: "print shell commands that set TAPIS_BASE_URL and TAPIS_TOKEN, for eval"},
		{Names: "--csh, --sh", Doc: "with --env: csh or sh syntax (default: sh, unless $SHELL is a csh)"},
	},
}

// Commands is the help of every tapis-token command: `tapis-token help`
// lists them, and `tapis-token CMD --help` and `tapis-token help CMD` print
// one. A new command adds its entry here, its name to cmdline.IsCommand
// and to config.ReservedNames (TestCommandTable checks all three), and
// its case to dispatch.
var Commands = []cmdline.Command{
	{
		Name: "login",
		Usage: []string{
			"login [TENANT] [-u NAME] [--password-stdin]",
			"login [TENANT] --browser [--token-stdin]",
			"login [TENANT] --device [--token-stdin]",
			"login [TENANT] --browser|--device --client-id ID [--client-key-stdin]",
		},
		Summary: "log in to TENANT once; the agent keeps the session fresh",
		About: "First checks, within 10 s and before asking for anything, that the tenant answers and which logins it allows; " +
			"a tenant that does not take passwords is offered the logins it does. " +
			"Asks for the password on the terminal without echo (and the username unless the config names it), up to 3 tries. " +
			"A tenant not in the config logs in at https://TENANT.tapis.io. Starts an agent when none runs at the usual socket.\n\n" +
			"With --browser, logs in in a web browser: the agent listens on a loopback port for the browser's redirect " +
			"(over SSH, forward that port with the ssh -L line shown). With --device, prints an address and a code to approve " +
			"in a browser elsewhere. Both use the agent's OAuth client for this host (one per host and tenant, deleted at logout); " +
			"finding or registering it takes a Tapis token once, from the tenant's Token Web App, pasted without echo when asked " +
			"(or read from stdin with --token-stdin). An OAuth client of your own (client_id and client_key_file in the config, " +
			"or --client-id and --client-key-stdin) needs none.",
		Flags: []cmdline.FlagHelp{
			{Names: "-u, --username NAME", Doc: "the Tapis username (default: the config's username, else asked)"},
			{Names: "--password-stdin", Doc: "read the password from the first line of stdin; a wrong one fails at once (exit 4)"},
			{Names: "--browser", Doc: "log in in a web browser (the authorization-code grant)"},
			{Names: "--device", Doc: "log in by approving a code in a browser elsewhere"},
			{Names: "--token-stdin", Doc: "with --browser or --device: read the Token Web App's token from stdin instead of asking"},
			{Names: "--client-id ID", Doc: "with --browser or --device: the OAuth client to log in with"},
			{Names: "--client-key-stdin", Doc: "with --browser or --device: read that client's key from stdin"},
		},
		Example: []string{
			"tapis-token login designsafe",
			`echo "$PASSWORD" | tapis-token login designsafe -u jdoe --password-stdin`,
			"tapis-token login tacc --browser",
			"tapis-token login tacc --device",
		},
	},
	{
		Name:    "exec",
		Usage:   []string{"exec [TENANT] [--min-valid DURATION] -- CMD [ARG]..."},
		Summary: "run CMD with TAPIS_TOKEN and TAPIS_BASE_URL in its environment",
		About: "The token stays off command lines, which every user of the machine can read. " +
			"Nothing refreshes it while CMD runs: ask for as much validity as CMD needs. " +
			"Exits with CMD's status, 127 when CMD is not found, 126 when it cannot run.",
		Flags: []cmdline.FlagHelp{
			{Names: "--min-valid DURATION", Doc: "the token must stay valid this long when CMD starts (default 60s)"},
		},
		Example: []string{
			"tapis-token exec designsafe --min-valid 2h -- python analyse.py",
			`tapis-token exec -- sh -c 'printf "X-Tapis-Token: %s\n" "$TAPIS_TOKEN" | curl -H @- "$TAPIS_BASE_URL/v3/systems"'`,
		},
	},
	{
		Name:    "logout",
		Usage:   []string{"logout [TENANT]"},
		Summary: "revoke the tenant's tokens upstream and forget them",
		About:   "Also deletes the OAuth client the agent registered for this host, and says so.",
		Example: []string{"tapis-token logout designsafe"},
	},
	{
		Name:    "status",
		Usage:   []string{"status [--json]"},
		Summary: "show the agent, its tenants and leases, their states, expiries, errors and warnings",
		Flags: []cmdline.FlagHelp{
			{Names: "--json", Doc: "print the status as JSON: version, pid, socket, config, config_error, started_at, tenants, leases, warnings"},
		},
		Example: []string{"tapis-token status"},
	},
	{
		Name:    "claims",
		Usage:   []string{"claims [TENANT]"},
		Summary: "print the decoded claims of the current access token as JSON",
		Example: []string{"tapis-token claims designsafe"},
	},
	{
		Name: "import",
		Usage: []string{
			"import TENANT",
			"import TENANT --refresh-token [--client-id ID] [--client-key-stdin]",
			"import TENANT --from-env",
			"import TENANT --from-file PATH",
		},
		Summary: "hand the agent a token read from stdin, or the credentials other tools left",
		About: "Reads an access token (from the Tapis web app, say) on stdin; the tenant is access_only until it expires. " +
			"On a terminal it asks for it without echo. With --refresh-token it reads a refresh token instead, for a full session; " +
			"the OAuth client it was issued to comes from --client-id (its key on the next line of stdin with --client-key-stdin) or the config. " +
			"A token that is garbage, expired, of the wrong type or of another tenant is refused, and the session the agent holds stays.\n\n" +
			"--from-env takes AgavePy's variables: TAPIS_API_TOKEN alone (access_only); TAPIS_API_REFRESH_TOKEN with TAPIS_API_KEY and TAPIS_API_SECRET " +
			"(a full session); TAPIS_API_USERNAME and TAPIS_API_PASSWORD, with or without key and secret (a login); TAPIS_BASE_URL must be the tenant's. " +
			"--from-file takes agavepy's ~/.agave/current, DesignSafe's ~/.tapis_tokens.json or tapisv3-cli's config, the format told by the content; " +
			"after importing a refresh token from a file it asks on the terminal whether to remove it from there, and never removes it unasked.",
		Flags: []cmdline.FlagHelp{
			{Names: "--refresh-token", Doc: "stdin holds a refresh token, not an access token"},
			{Names: "--from-env", Doc: "import AgavePy's TAPIS_* environment variables"},
			{Names: "--from-file PATH", Doc: "import the token cache or config another tool wrote at PATH"},
			{Names: "--client-id ID", Doc: "with --refresh-token: the client the token was issued to"},
			{Names: "--client-key-stdin", Doc: "with --refresh-token: read the client's key from the line after the token"},
		},
		Example: []string{
			"tapis-token import tacc < token.txt",
			`echo "$TOKEN" | tapis-token import tacc`,
			"tapis-token import designsafe --from-file ~/.tapis_tokens.json",
			"tapis-token import tacc --from-env",
		},
	},
	{
		Name: "lease",
		Usage: []string{
			"lease [TENANT] --job JOBID [--min-valid DURATION] [--file PATH]",
			"lease [TENANT] --job ID --until TIME [--min-valid DURATION] [--file PATH]",
			"lease [TENANT] --job JOBID --cancel",
		},
		Summary: "keep a token for a batch job in a file while the job is pending or running",
		About: "The agent writes an access token (never a refresh token) into a file on the shared home, " +
			"~/.local/state/tapis-agent/jobs/JOBID/TENANT.token unless --file names another (directory 0700, file 0600), " +
			"rewrites it before the token's validity falls below --min-valid, and removes it when Slurm says the job ended, " +
			"or has not known it for 30 s. In the job, with no agent to answer, tapis-token and the Python client read the file: " +
			"the default one through SLURM_JOB_ID, another through TAPIS_TOKEN_FILE. Prints the file's path. " +
			"Leases live in the agent's memory: they survive a config reload, not a restart of the agent.",
		Flags: []cmdline.FlagHelp{
			{Names: "--job JOBID", Doc: "the Slurm job (1234, or 1234_7 for an array task); with --until, any scheduler's job id"},
			{Names: "--min-valid DURATION", Doc: "the least validity the file's token keeps (default 1h, or half the token's lifetime when that is less)"},
			{Names: "--until TIME", Doc: "for a scheduler the agent does not ask: end the lease at TIME (48h, 2026-12-24T18:00, or RFC 3339)"},
			{Names: "--file PATH", Doc: "the file to keep the token in; the job needs TAPIS_TOKEN_FILE=PATH"},
			{Names: "--cancel", Doc: "end the lease now and remove its file"},
		},
		Example: []string{
			`tapis-token lease designsafe --job "$(sbatch --parsable job.sh)"`,
			"tapis-token lease --job 4711.pbs01 --until 48h --file ~/jobs/4711.token",
		},
	},
	{
		Name: "sbatch",
		Usage: []string{
			"sbatch [TENANT] [--min-valid DURATION] [--file PATH] -- SBATCH_ARG...",
			"sbatch SBATCH_ARG...",
		},
		Summary: "submit a job with sbatch and lease it a token",
		About: "Runs sbatch --parsable --hold with the arguments, leases the new job a token as lease does, then releases it, " +
			"so that the job never starts before its token file is there (a job submitted with --hold stays held). " +
			"When the lease fails, the held job is cancelled. Prints the job id.",
		Flags: []cmdline.FlagHelp{
			{Names: "--min-valid DURATION", Doc: "the least validity the file's token keeps (default 1h)"},
			{Names: "--file PATH", Doc: "the file to keep the token in; the job gets TAPIS_TOKEN_FILE=PATH in its environment"},
		},
		Example: []string{
			"tapis-token sbatch job.sh",
			"tapis-token sbatch designsafe --min-valid 2h -- --time 48:00:00 job.sh",
		},
	},
	{
		Name:    "version",
		Usage:   []string{"version"},
		Summary: "print the version",
	},
	{
		Name:    "help",
		Usage:   []string{"help [COMMAND]"},
		Summary: "print this help, or a command's",
		Example: []string{"tapis-token help login"},
	},
}

// usage is the program's help: the token command line, then the list of
// commands, exit codes and where the socket is.
func usage() string {
	var b strings.Builder
	b.WriteString(tokenCommand.UsageText("tapis-token"))
	b.WriteString(`       tapis-token COMMAND [ARG]...

Prints a current Tapis access token for TENANT (default: default_tenant, or
the only tenant) and a newline, nothing else. Give it to curl through a file,
not as an argument, which every user of the machine can read:

  curl -H @<(tapis-token -H designsafe) https://designsafe.tapis.io/v3/systems

Flags:
`)
	b.WriteString(cmdline.FlagTable(tokenCommand.Flags))
	b.WriteString("\nCommands:\n")
	b.WriteString(cmdline.CommandList(Commands))
	b.WriteString(`
tapis-token COMMAND --help, or tapis-token help COMMAND, says more.

Exit codes:
  0  ok
  1  other error
  2  usage error
  3  agent not reachable
  4  login required, or Tapis refused the username or password
  5  Tapis unavailable and no token valid long enough

The agent's socket: $TAPIS_AGENT_SOCK, else
$XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on macOS
~/Library/Application Support/tapis-agent/agent.sock, else
/tmp/tapis-agent-$UID/agent.sock.
`)
	return b.String()
}
