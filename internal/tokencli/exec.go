package tokencli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
)

// Exit codes of exec when the command cannot run, as env(1) and the
// shells use them.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// cmdExec runs exec [TENANT] [--min-valid DURATION] -- CMD [ARG...]:
// CMD replaces this process, with TAPIS_TOKEN and TAPIS_BASE_URL in its
// environment. A process's environment is readable only by its user,
// unlike its command line, which every user of the node can read in
// /proc. Nothing refreshes the token behind CMD: it is valid for at least
// --min-valid when CMD starts.
func cmdExec(ctx context.Context, args []string) error {
	i := slices.Index(args, "--")
	if i < 0 {
		return cmdline.Usage("exec needs -- before the command")
	}
	argv := args[i+1:]
	if len(argv) == 0 {
		return cmdline.Usage("exec needs a command after --")
	}
	ta, err := cmdline.ParseTokenArgs(args[:i])
	if err != nil {
		return err
	}
	if ta.Format != cmdline.FormatPlain || ta.JSON || ta.Env {
		return cmdline.Usage("exec takes a TENANT and --min-valid, no output format")
	}
	// Find the command before asking for a token: a typo costs no call.
	path, err := exec.LookPath(argv[0])
	switch {
	case errors.Is(err, exec.ErrDot):
		// A relative PATH entry: a file planted in whatever directory the
		// command runs from would get the token.
		return &cmdline.Failure{Code: exitNotFound, Msg: "exec: " + argv[0] + " is found only through a relative PATH entry",
			Hint: "give its path, e.g. ./" + argv[0]}
	case err != nil:
		return &cmdline.Failure{Code: exitNotFound, Msg: "exec: " + argv[0] + ": command not found",
			Hint: "check its name, or give its path (PATH is " + os.Getenv("PATH") + ")"}
	}
	tok, err := token(ctx, ta.Tenant, ta.MinValid)
	if err != nil {
		return err
	}
	warnConfig(ctx, os.Stderr)
	env := withEnv(os.Environ(), "TAPIS_TOKEN="+tok.AccessToken, "TAPIS_BASE_URL="+tok.BaseURL)
	err = syscall.Exec(path, argv, env)
	return &cmdline.Failure{Code: exitCannotRun, Msg: "exec: running " + argv[0] + ": " + err.Error(),
		Hint: "check that " + path + " is a program you may run"}
}

// withEnv returns env with the variables of kvs (NAME=VALUE) set,
// replacing any earlier values of theirs.
func withEnv(env []string, kvs ...string) []string {
	out := make([]string, 0, len(env)+len(kvs))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(kvs, func(s string) bool { return strings.HasPrefix(s, name+"=") }) {
			out = append(out, kv)
		}
	}
	return append(out, kvs...)
}
