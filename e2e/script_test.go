package e2e

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestScript runs the transcripts of testdata/script: the real binaries
// driven as a user drives them, one script per behaviour. Each script
// runs in its own $WORK with this environment:
//
//	PATH               the directory of the binaries under test, then the PATH of go test
//	BIN                that directory
//	HOME               $WORK/home
//	TAPIS_AGENT_SOCK   a socket path in a short directory of its own (socket paths are limited to 108 bytes)
//	SOCKDIR            the directory of that socket, not created
//	TAPIS_AGENT_CONFIG $WORK/config.toml
//	XDG_RUNTIME_DIR    a directory beside SOCKDIR, not created
//	XDG_CONFIG_HOME, XDG_STATE_HOME under HOME
//
// Besides testscript's own commands (exec, stdin, stdout, stderr, cmp,
// cmpenv, grep, exists, env, …), scripts have these:
//
//	fake NAME start [-tenant ID] [-user USER:PASSWORD]... [-access-ttl D] [-device-approve-after D]
//	    start a fake Tapis tenant (tapis/tapistest, the server tapis-fake
//	    runs) on 127.0.0.1 until the script ends; its tenant id is NAME
//	    unless -tenant says otherwise, and $NAME_URL (NAME in upper case) is
//	    its base URL
//	fake NAME clients
//	    print the OAuth clients the fake holds, "ID OWNER active|inactive" a line
//	fake NAME grants TYPE
//	    print how many token requests of grant type TYPE it received
//	[!] fake NAME revoked TOKEN
//	    succeed when the fake revoked TOKEN (its jti)
//	fake NAME add-client OWNER ID KEY
//	    register an OAuth client
//	fake NAME token access|refresh|expired USER [CLIENT]
//	    print a new token of USER (issued to CLIENT), or one expired an hour ago
//	fake NAME approve
//	    wait for one pending device code and approve it, as the user would
//
//	agent start [FLAG]...
//	    run `tapis-agent serve --log-level debug FLAG...` in the background,
//	    logging to $WORK/agent.log, and wait until its socket accepts a
//	    connection
//	agent stop
//	    send SIGINT and wait for the agent to exit 0
//
// An agent still running at the end of a script is stopped: this one, and
// one that `tapis-agent start` or a login left on either socket.
//
//	exits CODE PROGRAM [ARG]...
//	    exec, expecting exit code CODE
//	poll REGEXP PROGRAM [ARG]...
//	    exec PROGRAM until its stdout matches REGEXP, for at most 30 s
//	capture VAR
//	    set $VAR to the last command's stdout without its final newline
//	envsubst FILE...
//	    replace $VAR and ${VAR} in each file with their values
//
// and the condition [root]: the tests run as root.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		Setup:              setupScript,
		RequireUniqueNames: true,
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fake":     cmdFake,
			"agent":    cmdAgent,
			"exits":    cmdExits,
			"poll":     cmdPoll,
			"capture":  cmdCapture,
			"envsubst": cmdEnvsubst,
		},
	})
}

// scriptWorld is what the custom commands of one script share.
type scriptWorld struct {
	fakes map[string]*tapistest.Server
	agent *scriptAgent
}

// scriptAgent is the agent of `agent start`.
type scriptAgent struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // its exit, set before done is closed
}

type worldKey struct{}

func world(ts *testscript.TestScript) *scriptWorld { return ts.Value(worldKey{}).(*scriptWorld) }

func setupScript(env *testscript.Env) error {
	// Unix socket paths are limited to 108 bytes; $WORK may be longer.
	dir, err := os.MkdirTemp("", "tsc")
	if err != nil {
		return err
	}
	env.Defer(func() { os.RemoveAll(dir) })
	home := filepath.Join(env.WorkDir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	sock := filepath.Join(dir, "s", "agent.sock")
	runtime := filepath.Join(dir, "run")
	for k, v := range map[string]string{
		"PATH":               binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"BIN":                binDir,
		"HOME":               home,
		"TAPIS_AGENT_SOCK":   sock,
		"SOCKDIR":            filepath.Dir(sock),
		"TAPIS_AGENT_CONFIG": filepath.Join(env.WorkDir, "config.toml"),
		"XDG_RUNTIME_DIR":    runtime,
		"XDG_CONFIG_HOME":    filepath.Join(home, ".config"),
		"XDG_STATE_HOME":     filepath.Join(home, ".local", "state"),
	} {
		env.Setenv(k, v)
	}
	w := &scriptWorld{fakes: map[string]*tapistest.Server{}}
	env.Values[worldKey{}] = w
	// An agent a script started with `tapis-agent start`, or that a login
	// started, is no child of the test: stop it by its socket. The
	// foreground agent of `agent start` stops on its own defer first.
	env.Defer(func() {
		for _, s := range []string{sock, filepath.Join(runtime, "tapis-agent", "agent.sock")} {
			if _, err := os.Lstat(s); err == nil {
				c := exec.Command(filepath.Join(binDir, "tapis-agent"), "stop", "--socket", s)
				c.Env = env.Vars
				_ = c.Run()
			}
		}
	})
	return nil
}

// cmdExits runs a program like exec and fails unless it exits with the
// given code.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARG]...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d; want %d", args[1], got, want)
	}
}

// cmdPoll runs a program until its stdout matches a regexp. The agent is
// another process: there is no event to wait on but its answers.
func cmdPoll(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: poll REGEXP PROGRAM [ARG]...")
	}
	re, err := regexp.Compile("(?m)" + args[0])
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ee *exec.ExitError
		if err := ts.Exec(args[1], args[2:]...); err != nil && !errors.As(err, &ee) {
			ts.Fatalf("poll: %v", err)
		}
		if re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s: stdout did not match %q within 30s", args[1], args[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: capture VAR")
	}
	ts.Setenv(args[0], strings.TrimSuffix(ts.ReadFile("stdout"), "\n"))
}

func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: envsubst FILE...")
	}
	for _, f := range args {
		s := os.Expand(ts.ReadFile(f), ts.Getenv)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(s), 0o600))
	}
}

func cmdFake(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: fake NAME start|clients|grants|revoked|add-client|token|approve [DAYS]|rotate-key [ARG]...")
	}
	name, verb, args := args[0], args[1], args[2:]
	w := world(ts)
	if verb == "start" {
		if neg {
			ts.Fatalf("unsupported: ! fake start")
		}
		if w.fakes[name] != nil {
			ts.Fatalf("fake %s already runs", name)
		}
		w.fakes[name] = startScriptFake(ts, name, args)
		ts.Setenv(strings.ToUpper(name)+"_URL", w.fakes[name].URL())
		return
	}
	f := w.fakes[name]
	if f == nil {
		ts.Fatalf("no fake %s: start it with `fake %s start`", name, name)
	}
	if neg && verb != "revoked" {
		ts.Fatalf("unsupported: ! fake %s", verb)
	}
	switch {
	case verb == "clients" && len(args) == 0:
		for _, c := range f.Clients() {
			state := "inactive"
			if c.Active {
				state = "active"
			}
			fmt.Fprintf(ts.Stdout(), "%s %s %s\n", c.ClientID, c.Owner, state)
		}
	case verb == "grants" && len(args) == 1:
		fmt.Fprintln(ts.Stdout(), f.GrantCalls(args[0]))
	case verb == "revoked" && len(args) == 1:
		c, err := jwt.Decode(args[0])
		ts.Check(err)
		if f.Revoked(c.JTI()) == neg {
			ts.Fatalf("fake %s revoked the token: %v", name, !neg)
		}
	case verb == "add-client" && len(args) == 3:
		ts.Check(f.AddClient(args[0], args[1], args[2]))
	case verb == "token" && (len(args) == 2 || len(args) == 3):
		user, client := args[1], ""
		if len(args) == 3 {
			client = args[2]
		}
		access, refresh := f.IssueTokens(user, client)
		switch args[0] {
		case "access":
			fmt.Fprintln(ts.Stdout(), access)
		case "refresh":
			fmt.Fprintln(ts.Stdout(), refresh)
		case "expired":
			fmt.Fprintln(ts.Stdout(), f.SignClaims(map[string]any{"jti": "expired-" + user, "iss": f.URL() + "/v3/tokens",
				"sub": user + "@" + f.TenantID(), "tapis/token_type": "access", "tapis/tenant_id": f.TenantID(),
				"tapis/username": user, "exp": time.Now().Add(-time.Hour).Unix()}))
		default:
			ts.Fatalf("usage: fake NAME token access|refresh|expired USER [CLIENT]")
		}
	case verb == "rotate-key" && len(args) == 0:
		ts.Check(f.RotateSigningKey())
	case verb == "approve" && len(args) <= 1:
		deadline := time.Now().Add(10 * time.Second)
		for len(f.UserCodes()) == 0 {
			if time.Now().After(deadline) {
				ts.Fatalf("fake %s: no device code within 10s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		codes := f.UserCodes()
		if len(codes) != 1 {
			ts.Fatalf("fake %s holds user codes %v; want one", name, codes)
		}
		if len(args) == 1 {
			// The days the user types on the approval page.
			days, err := strconv.Atoi(args[0])
			ts.Check(err)
			ts.Check(f.ApproveDeviceTTL(codes[0], time.Duration(days)*24*time.Hour))
			return
		}
		ts.Check(f.ApproveDevice(codes[0]))
	default:
		ts.Fatalf("fake: bad use of %s %q", verb, args)
	}
}

// startScriptFake starts a fake tenant with flags named as tapis-fake's.
func startScriptFake(ts *testscript.TestScript, name string, args []string) *tapistest.Server {
	fs := flag.NewFlagSet("fake start", flag.ContinueOnError)
	cfg := tapistest.Config{TenantID: name, Users: map[string]string{}}
	fs.StringVar(&cfg.TenantID, "tenant", name, "tenant id")
	fs.DurationVar(&cfg.AccessTTL, "access-ttl", 0, "access token lifetime")
	fs.DurationVar(&cfg.DeviceApproveAfter, "device-approve-after", 0, "approve device codes this long after issue")
	fs.Func("user", "USER:PASSWORD", func(v string) error {
		u, pw, ok := strings.Cut(v, ":")
		if !ok {
			return errors.New("want USER:PASSWORD")
		}
		cfg.Users[u] = pw
		return nil
	})
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		ts.Fatalf("usage: fake NAME start [-tenant ID] [-user USER:PASSWORD]... [-access-ttl D] [-device-approve-after D]")
	}
	f, err := tapistest.NewServer(cfg, nil)
	ts.Check(err)
	ts.Defer(f.Close)
	return f
}

func cmdAgent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: agent start [FLAG]... | agent stop")
	}
	w := world(ts)
	switch args[0] {
	case "start":
		if w.agent != nil {
			ts.Fatalf("agent start: an agent already runs")
		}
		w.agent = startScriptAgent(ts, args[1:])
	case "stop":
		if w.agent == nil || len(args) != 1 {
			ts.Fatalf("usage: agent stop, after agent start")
		}
		a := w.agent
		w.agent = nil
		if err := a.stop(); err != nil {
			ts.Fatalf("agent stop: %v", err)
		}
	default:
		ts.Fatalf("usage: agent start [FLAG]... | agent stop")
	}
}

// startScriptAgent runs tapis-agent serve in the background and waits
// until it answers on its socket.
func startScriptAgent(ts *testscript.TestScript, flags []string) *scriptAgent {
	cmd := exec.Command(filepath.Join(binDir, "tapis-agent"), append([]string{"serve", "--log-level", "debug"}, flags...)...)
	var env []string
	for _, k := range []string{"PATH", "HOME", "TAPIS_AGENT_SOCK", "TAPIS_AGENT_CONFIG", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	cmd.Env = env
	cmd.Dir = ts.Getenv("WORK")
	// The agent writes its log file itself, so that what it logged before
	// an answer is in the file when the answer arrives.
	logPath := filepath.Join(ts.Getenv("WORK"), "agent.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	ts.Check(err)
	defer logf.Close()
	cmd.Stderr = logf
	ts.Check(cmd.Start())
	a := &scriptAgent{cmd: cmd, done: make(chan struct{})}
	go func() { a.err = cmd.Wait(); close(a.done) }()
	ts.Defer(func() {
		if err := a.stop(); err != nil {
			ts.Logf("stopping the agent at the end: %v", err)
		}
	})
	// Readiness: a connection to the socket succeeds.
	sock := ts.Getenv("TAPIS_AGENT_SOCK")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return a
		}
		select {
		case <-a.done:
			ts.Fatalf("the agent exited at start (%v):\n%s", a.err, ts.ReadFile(logPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ts.Fatalf("the agent did not answer on %s within 10s:\n%s", sock, ts.ReadFile(logPath))
		}
	}
}

// stop sends SIGINT, waits for the exit, and returns an error unless it
// was a clean one. Stopping a stopped agent returns its first exit.
func (a *scriptAgent) stop() error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
		return a.err
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return errors.New("the agent did not stop within 10s of SIGINT")
	}
}
