package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// The hostile-file tests measure latency and memory, so they do not run in
// parallel with the other tests of the package (nor with one another):
// their figures would be the machine's load.

// Bounds of the hostile-file tests.
const (
	// hostileTokenRSS is the most memory (peak resident set) an agent
	// may reach while one tenant's token file is hostile: it serves three
	// tenants in a few megabytes, and a 2 GiB file read into memory would
	// take it past 2 GiB.
	hostileTokenRSS = 100 << 10 // KiB
	// hostileConfigRSS is the same for a hostile config file: the TOML
	// decoder took gigabytes for 200 KB of nesting.
	hostileConfigRSS = 50 << 10 // KiB
	// configErrorWithin is how soon after a hostile config is saved the
	// agent must show why it refuses it.
	configErrorWithin = time.Second
	// sigtermWithin is how soon SIGTERM must end the agent.
	sigtermWithin = 5 * time.Second
	// tokenSamples is how many token calls one latency figure rests on.
	tokenSamples = 21
)

// memKB returns a "Name:  N kB" field of /proc/PID/status, in KiB.
func memKB(t *testing.T, pid int, name string) int64 {
	t.Helper()
	v := procField(t, pid, name)
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	if err != nil {
		t.Fatalf("/proc/%d/status %s = %q: %v", pid, name, v, err)
	}
	return n
}

// statusWithin asks the agent of e for its status, allowing it 5 s.
func (e *env) statusWithin() (*ipc.StatusResponse, error) {
	c := &ipcclient.Client{Path: e.sock, Timeout: 5 * time.Second}
	return c.Status(context.Background())
}

// latencies is how long a run of token calls took each.
type latencies []time.Duration

func (l latencies) median() time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)/2]
}

func (l latencies) max() time.Duration { return slices.Max(l) }

func (l latencies) String() string {
	if len(l) == 0 {
		return "no calls"
	}
	return fmt.Sprintf("median %s, max %s over %d calls", l.median().Round(10*time.Microsecond), l.max().Round(10*time.Microsecond), len(l))
}

// timeTokens runs `tapis-token TENANT` n times, taking the tenants in
// turn, and returns how long each run took (the helper's start included,
// as for a curl call). Every run must print a token.
func (e *env) timeTokens(tenants []string, n int) latencies {
	e.t.Helper()
	lats := make(latencies, 0, n)
	for i := range n {
		name := tenants[i%len(tenants)]
		t0 := time.Now()
		r := e.token("", name)
		lats = append(lats, time.Since(t0))
		if r.code != 0 || !strings.HasPrefix(r.stdout, "eyJ") {
			e.t.Fatalf("tapis-token %s: exit %d, stderr %q\nagent log:\n%s", name, r.code, r.stderr, e.agentLog())
		}
	}
	return lats
}

// usualBound is the slowest median a run of token calls may have next to
// the usual one: three times it, plus 50 ms for the noise of a shared
// machine. A call that waited on a token file would wait for the agent's
// two seconds at least, or for ever.
func usualBound(usual time.Duration) time.Duration { return 3*usual + 50*time.Millisecond }

// sigterm sends SIGTERM to the agent of e and returns how long it took to
// exit, failing the test unless it did within sigtermWithin.
func (e *env) sigterm() time.Duration {
	e.t.Helper()
	t0 := time.Now()
	if err := e.agent.Process.Signal(syscall.SIGTERM); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-e.exited:
		return time.Since(t0)
	case <-time.After(sigtermWithin):
		e.t.Fatalf("the agent did not exit within %s of SIGTERM\nagent log:\n%s", sigtermWithin, e.agentLog())
		return 0
	}
}

// hostileFile makes at path a named pipe, or else a sparse file of size
// bytes.
func hostileFile(t *testing.T, path string, fifo bool, size int64) {
	t.Helper()
	if fifo {
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// hostileTenants is a config of three tenants, each on its own fake: dev
// with the given token_file lines, prod and stage without.
func hostileTenants(dev, prod, stage *tapistest.Server, devExtra string) string {
	return fmt.Sprintf("default_tenant = \"prod\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n%s\n"+
		"[tenants.prod]\nbase_url = %q\nusername = \"jdoe\"\n\n[tenants.stage]\nbase_url = %q\nusername = \"jdoe\"\n",
		dev.URL(), devExtra, prod.URL(), stage.URL())
}

// TestHostileTokenFile makes one tenant's token_file a named pipe nobody
// reads, or a sparse 2 GiB file, and checks that while that tenant's
// reload, logins, refresh and logout write it, the other tenants are served
// as fast as before, status answers and names the file, logins work, the
// agent stays small and SIGTERM ends it.
func TestHostileTokenFile(t *testing.T) {
	cases := []struct {
		name   string
		fifo   bool // a named pipe; else a sparse 2 GiB file
		format string
	}{
		{"fifo connect_tapis", true, "connect_tapis"},
		{"fifo tapisv3-cli", true, "tapisv3-cli"},
		// tapisv3-cli's file is read before it is updated: the one case
		// where the agent reads a token file.
		{"sparse 2GiB tapisv3-cli", false, "tapisv3-cli"},
		{"sparse 2GiB tapis-cmd", false, "tapis-cmd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { testHostileTokenFile(t, tc.fifo, tc.format) })
	}
}

func testHostileTokenFile(t *testing.T, fifo bool, format string) {
	users := map[string]string{"jdoe": "secret"}
	// dev's tokens live 4 s: its refresher writes the token file too,
	// every 3 s or so.
	e := newEnv(t, tapistest.Config{AccessTTL: 4 * time.Second})
	prod := tapistest.New(t, tapistest.Config{TenantID: "prod", Users: users})
	stage := tapistest.New(t, tapistest.Config{TenantID: "stage", Users: users})
	others := []string{"prod", "stage"}
	dir := filepath.Join(e.home, "tokens")
	good, hostile := filepath.Join(dir, "dev.json"), filepath.Join(dir, "hostile")
	tokenFile := func(path string) string {
		return hostileTenants(e.fake, prod, stage, fmt.Sprintf("token_file = %q\ntoken_format = %q\n", path, format))
	}

	e.writeConfig(tokenFile(good))
	e.startAgent()
	pid := e.agent.Process.Pid
	for _, name := range []string{"dev", "prod", "stage"} {
		e.mustToken("secret\n", "login", name, "--password-stdin")
	}
	if _, err := os.Stat(good); err != nil {
		t.Fatalf("dev's token file was not written: %v\nagent log:\n%s", err, e.agentLog())
	}
	usual := e.timeTokens(others, tokenSamples)
	t.Logf("usual token calls of prod and stage: %s", usual)

	const giant = 2 << 30
	hostileFile(t, hostile, fifo, giant)

	// The reload moves dev's token to the hostile file: refused with a
	// warning, or, for a format the agent never reads, replaced.
	replaced := !fifo && format != "tapisv3-cli"
	want := "is a named pipe, not a regular file"
	if !fifo {
		want = "is 2 GiB, more than the 1 MiB allowed"
	}
	t0 := time.Now()
	e.writeConfig(tokenFile(hostile))
	if replaced {
		e.waitFor("the token file to replace the sparse file", 10*time.Second, func() bool {
			fi, err := os.Stat(hostile)
			return err == nil && fi.Size() < giant
		})
		t.Logf("reload to the sparse token_file: replaced %s after the save", time.Since(t0).Round(time.Millisecond))
		// The agent's own file, in a format it never reads: replaced.
		if b, err := os.ReadFile(hostile); err != nil || !strings.HasPrefix(string(b), "BASE_URL=") || !strings.Contains(string(b), "\nUSER_JWT=eyJ") {
			t.Errorf("the token file that replaced the sparse file: %v, %.100q", err, b)
		}
	} else {
		var warning string
		e.waitFor("dev's token_file warning in status", 10*time.Second, func() bool {
			for _, w := range e.status("dev").Warnings {
				if strings.Contains(w, "token_file "+hostile) {
					warning = w
					return true
				}
			}
			return false
		})
		t.Logf("reload to the hostile token_file: dev's warning in status %s after the save: %q", time.Since(t0).Round(time.Millisecond), warning)
		if !strings.Contains(warning, want) || !strings.Contains(warning, "; move that file away, or change token_file in the config;") {
			t.Errorf("dev's warning %q; want it to say the file %s, and to move it away", warning, want)
		}
	}

	// dev logs in again and again, each login writing the token file,
	// while prod and stage are served.
	ctx, stop := context.WithCancel(context.Background())
	var (
		wg          sync.WaitGroup
		devMu       sync.Mutex // guards devLogins, devFailures
		devLogins   latencies
		devFailures []string
	)
	wg.Go(func() {
		for ctx.Err() == nil {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			cmd := exec.CommandContext(cctx, filepath.Join(binDir, "tapis-token"), "login", "dev", "--password-stdin")
			cmd.Env = e.environ()
			cmd.Stdin = strings.NewReader("secret\n")
			t0 := time.Now()
			out, err := cmd.CombinedOutput()
			d := time.Since(t0)
			cancel()
			if ctx.Err() != nil && err != nil {
				return // cut short by the end of the phase
			}
			devMu.Lock()
			devLogins = append(devLogins, d)
			if err != nil {
				devFailures = append(devFailures, fmt.Sprintf("%v: %s", err, out))
			}
			devMu.Unlock()
		}
	})
	during := e.timeTokens(others, tokenSamples)

	t1 := time.Now()
	st := e.mustToken("", "status")
	statusTook := time.Since(t1)
	t2 := time.Now()
	e.mustToken("secret\n", "login", "stage", "--password-stdin")
	loginTook := time.Since(t2)
	stop()
	wg.Wait()

	t.Logf("token calls of prod and stage while dev's token file is hostile: %s (bound on the median %s)", during, usualBound(usual.median()))
	if during.median() > usualBound(usual.median()) {
		t.Errorf("prod and stage token calls: %s; usual %s: want the median within %s", during, usual, usualBound(usual.median()))
	}
	if during.max() >= 5*time.Second {
		t.Errorf("a token call of prod or stage took %s; want none near the time a token file may block", during.max())
	}
	t.Logf("tapis-token status: %s; login of stage: %s", statusTook.Round(time.Millisecond), loginTook.Round(time.Millisecond))
	if statusTook > time.Second {
		t.Errorf("tapis-token status took %s; want under 1s", statusTook)
	}
	if !replaced && !strings.Contains(st.stdout, "dev: warning: token_file "+hostile+": cannot write it") {
		t.Errorf("tapis-token status does not warn of dev's token file %s:\n%s", hostile, st.stdout)
	}
	if loginTook > 5*time.Second {
		t.Errorf("login of stage took %s; want under 5s", loginTook)
	}
	devMu.Lock()
	t.Logf("logins of dev meanwhile: %s, %d failed", devLogins, len(devFailures))
	if len(devLogins) == 0 {
		t.Errorf("no login of dev finished while prod and stage were served")
	}
	for _, f := range devFailures[:min(3, len(devFailures))] {
		t.Errorf("login of dev with a hostile token file: %s; want it to succeed with a warning", f)
	}
	devMu.Unlock()
	// Its tokens live 4 s: dev may be refreshing.
	live := func(s ipc.TenantStatus) bool { return s.State == ipc.StateReady || s.State == ipc.StateRefreshing }
	if s := e.status("dev"); !live(s) {
		t.Errorf("dev is %s; want ready, its session untouched by its token file", s.State)
	}

	// A refresh writes the file as a login does.
	refreshes := e.status("dev").RefreshCount
	t3 := time.Now()
	e.waitFor("a refresh of dev", 15*time.Second, func() bool { return e.status("dev").RefreshCount > refreshes })
	t.Logf("a refresh of dev %s later", time.Since(t3).Round(time.Millisecond))
	if s := e.status("dev"); !live(s) || !replaced && !slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, "token_file "+hostile) }) {
		t.Errorf("dev after its refresh: %s, warnings %q; want ready, warning of its token file", s.State, s.Warnings)
	}
	after := e.timeTokens(others, tokenSamples)
	t.Logf("token calls of prod and stage after dev's refresh: %s", after)
	if after.median() > usualBound(usual.median()) {
		t.Errorf("prod and stage token calls after dev's refresh: %s; usual %s: want the median within %s", after, usual, usualBound(usual.median()))
	}

	// A logout removes the token file, or takes the token out of
	// tapisv3-cli's: the hostile file is left alone, at once.
	t4 := time.Now()
	e.mustToken("", "logout", "dev")
	logoutTook := time.Since(t4)
	t.Logf("logout of dev: %s", logoutTook.Round(time.Millisecond))
	if logoutTook > 5*time.Second {
		t.Errorf("logout of dev took %s; want under 5s", logoutTook)
	}

	hwm, rss := memKB(t, pid, "VmHWM"), memKB(t, pid, "VmRSS")
	t.Logf("agent memory: VmHWM %d KiB, VmRSS %d KiB", hwm, rss)
	if hwm > hostileTokenRSS {
		t.Errorf("agent peak memory (VmHWM) %d KiB; want under %d KiB", hwm, hostileTokenRSS)
	}

	// No reader ever opened the pipe (a write into it would still wait):
	// SIGTERM must end the agent all the same.
	took := e.sigterm()
	t.Logf("SIGTERM ended the agent in %s", took.Round(time.Millisecond))

	fi, err := os.Lstat(hostile)
	switch {
	case replaced:
		if !os.IsNotExist(err) {
			t.Errorf("dev's token file after its logout: %v; want it removed", err)
		}
	case err != nil:
		t.Errorf("the hostile token file: %v; want it left in place", err)
	case fifo:
		if fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the named pipe at %s is now %s; want it left alone", hostile, fi.Mode())
		}
	default:
		// Not the CLI's config: left as it was.
		if blocks := fi.Sys().(*syscall.Stat_t).Blocks; fi.Size() != giant || blocks > 0 {
			t.Errorf("the sparse file is now %d bytes, %d blocks; want it untouched", fi.Size(), blocks)
		}
	}
}

// hostileConfig is a config file made to hurt the agent that loads it.
type hostileConfig struct {
	name string
	// put puts the file at path; good is a valid config it may extend.
	put func(t *testing.T, path, good string)
	// want is what the error must say.
	want string
}

// hostileConfigs are the hostile config files: nesting that the TOML
// decoder's memory grows with the square of, a file larger than any
// config, a named pipe that blocks a read for ever, a value no config
// needs, and files under the size cap that hold more keys, mistakes or
// tenants than a config does.
func hostileConfigs() []hostileConfig {
	const deep = "nest more than 16 deep here; a tapis-agent config needs 4 at most"
	const tooLarge = ", more than the 1 MiB a config may hold; is it the right file?"
	// writeFile saves data at path as editors do: a new file renamed
	// over the old one.
	writeFile := func(t *testing.T, path, data string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	const size = 200 << 10 // the nesting that took the agent to 13 GB
	return []hostileConfig{
		{"nested inline tables", func(t *testing.T, path, good string) {
			n := size / len("{a = }")
			writeFile(t, path, good+"x = "+strings.Repeat("{a = ", n)+"1"+strings.Repeat("}", n)+"\n")
		}, deep},
		{"nested arrays", func(t *testing.T, path, good string) {
			writeFile(t, path, good+"x = "+strings.Repeat("[", size/2)+strings.Repeat("]", size/2)+"\n")
		}, deep},
		{"dotted key", func(t *testing.T, path, good string) {
			writeFile(t, path, good+strings.Repeat("a.", size/2)+"b = 1\n")
		}, deep},
		{"over 1 MiB", func(t *testing.T, path, good string) {
			writeFile(t, path, good+strings.Repeat("# "+strings.Repeat("-", 76)+"\n", (3<<20)/2/79))
		}, "the file is 1.5 MiB" + tooLarge},
		{"named pipe", func(t *testing.T, path, _ string) {
			if err := syscall.Mkfifo(path+".new", 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}, "is a named pipe, not a regular file; point the agent at a regular file"},
		{"5 MB username", func(t *testing.T, path, good string) {
			writeFile(t, path, strings.Replace(good, `username = "jdoe"`, `username = "`+strings.Repeat("j", 5<<20)+`"`, 1))
		}, "the file is 5.0 MiB" + tooLarge},
		// Under 1 MiB: a key on each line (the decoder takes a kilobyte
		// for each), a mistake, a tenant.
		{"85000 keys", func(t *testing.T, path, good string) {
			writeFile(t, path, numbered("k%d = 1\n", 85000)+good)
		}, ":10001: the file holds more than the 10000 keys, tables and array items a config may hold by here; is it the right file?"},
		{"5000 mistakes", func(t *testing.T, path, good string) {
			writeFile(t, path, numbered("k%d = 1\n", 5000)+good)
		}, ": and 4980 more errors; is it the right file?"},
		{"5000 tenants", func(t *testing.T, path, good string) {
			writeFile(t, path, good+numbered("[tenants.t%d]\n", 4999))
		}, "tenants: 5000 tenants, more than the 1000 a config may hold; is it the right file?"},
		{"512 KiB username", func(t *testing.T, path, good string) {
			writeFile(t, path, strings.Replace(good, `username = "jdoe"`, `username = "`+strings.Repeat("j", 512<<10)+`"`, 1))
		}, "tenants.dev.username: is 524288 bytes long, more than the 256 allowed"},
	}
}

// numbered is n lines of format, numbered from 0.
func numbered(format string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

// TestHostileConfig saves hostile config files under a live agent holding
// a session, and starts agents on them: each is refused within a second,
// with an error naming the size, the depth, the kind of file or the key
// and its limit; the agent stays small; the session and the good config
// stay in force.
func TestHostileConfig(t *testing.T) {
	t.Run("reload", testHostileConfigReload)
	t.Run("start", testHostileConfigStart)
}

func testHostileConfigReload(t *testing.T) {
	e := newEnv(t, tapistest.Config{})
	good := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", e.fake.URL())
	e.writeConfig(good)
	e.startAgent()
	pid := e.agent.Process.Pid
	e.login()
	// No tenant named: served only while default_tenant is in force.
	held := e.mustToken("").stdout
	before := e.status("dev")
	t.Logf("agent memory with a session: VmHWM %d KiB", memKB(t, pid, "VmHWM"))

	configError := func() string {
		st, err := e.statusWithin()
		if err != nil {
			t.Fatalf("status: %v\nagent log:\n%s", err, e.agentLog())
		}
		return st.ConfigError
	}
	// One agent for all the files: no t.Run, whose t the env's helpers
	// would not fail.
	lastErr := ""
	for _, hc := range hostileConfigs() {
		logged := len(e.agentLog())
		sighups := strings.Count(e.agentLog(), "msg=reload reason=SIGHUP")
		hc.put(t, e.config, good)
		t0 := time.Now() // the file is in place: saved
		var msg string
		e.waitFor(hc.name+": the config error in status", 10*time.Second, func() bool {
			msg = configError()
			return msg != ""
		})
		shown := time.Since(t0)
		t.Logf("%s: saved; the error in status %s later: %q", hc.name, shown.Round(time.Millisecond), msg)
		if !strings.Contains(msg, e.config) || !strings.Contains(msg, hc.want) {
			t.Errorf("%s: config error %q; want it to name %s and say %q", hc.name, msg, e.config, hc.want)
		}
		if shown > configErrorWithin {
			t.Errorf("%s: the config error showed %s after the save; want within %s", hc.name, shown, configErrorWithin)
		}

		// SIGHUP, then the reload request: the request answers only
		// once the signal's load has let go of the config.
		if err := e.agent.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e.waitFor(hc.name+": SIGHUP's reload in the log", 10*time.Second, func() bool {
			return strings.Count(e.agentLog(), "msg=reload reason=SIGHUP") > sighups
		})
		t1 := time.Now()
		err := reload(e.sock)
		took := time.Since(t1)
		t.Logf("%s: SIGHUP, then POST %s: answered %s after the signal was logged", hc.name, ipc.PathReload, took.Round(time.Millisecond))
		if err == nil || !strings.Contains(err.Error(), hc.want) {
			t.Errorf("%s: POST %s: %v; want an error saying %q", hc.name, ipc.PathReload, err, hc.want)
		}
		if took > configErrorWithin {
			t.Errorf("%s: POST %s took %s; want within %s", hc.name, ipc.PathReload, took, configErrorWithin)
		}
		if st := e.mustToken("", "status").stdout; !strings.Contains(st, "config error") || !strings.Contains(st, hc.want) {
			t.Errorf("%s: tapis-token status does not show the config error:\n%.2000s", hc.name, st)
		}
		// The log shows each error once a minute: another one at once.
		if log := e.agentLog()[logged:]; msg != lastErr && (!strings.Contains(log, "level=ERROR msg=config_invalid path="+e.config) || !strings.Contains(log, hc.want)) {
			t.Errorf("%s: the agent's log since the save does not show the error:\n%.3000s", hc.name, log)
		}
		lastErr = msg

		// The session and the good config are kept.
		if got := e.mustToken("").stdout; got != held {
			t.Errorf("%s: the default tenant serves another token; want the session and default_tenant kept", hc.name)
		}
		if s := e.status("dev"); s.State != ipc.StateReady || s.RefreshCount != before.RefreshCount || s.Username != "jdoe" {
			t.Errorf("%s: dev: %s, refresh_count %d, username %.20q; want ready, %d, jdoe", hc.name, s.State, s.RefreshCount, s.Username, before.RefreshCount)
		}
		hwm := memKB(t, pid, "VmHWM")
		t.Logf("%s: agent memory: VmHWM %d KiB", hc.name, hwm)
		if hwm > hostileConfigRSS {
			t.Errorf("%s: agent peak memory (VmHWM) %d KiB; want under %d KiB", hc.name, hwm, hostileConfigRSS)
		}

		e.writeConfig(good)
		e.waitFor(hc.name+": the config error to clear", 10*time.Second, func() bool { return configError() == "" })
	}
}

func testHostileConfigStart(t *testing.T) {
	for _, hc := range hostileConfigs() {
		t.Run(hc.name, func(t *testing.T) {
			e := newEnv(t, tapistest.Config{})
			good := fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n", e.fake.URL())
			hc.put(t, e.config, good)

			// serve: says why on stderr first, then serves without the
			// file, saying so in status.
			t0 := time.Now()
			e.startAgent()
			ready := time.Since(t0)
			log := e.agentLog()
			said, _, starting := strings.Cut(log, "\ntapis-agent: starting without this config; the agent loads the file once it is fixed\n")
			if !starting || !strings.HasPrefix(said, "tapis-agent: "+e.config) || !strings.Contains(said, hc.want) {
				t.Errorf("tapis-agent serve's log begins\n%.1000s\nwant the error, saying %q, and that it starts without the config", log, hc.want)
			}
			st, err := e.statusWithin()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(st.ConfigError, hc.want) || !strings.Contains(st.ConfigError, "no config was loaded") || len(st.Tenants) != 0 {
				t.Errorf("status of an agent started on the file: config error %q, %d tenants; want the error and no tenants", st.ConfigError, len(st.Tenants))
			}
			hwm := memKB(t, e.agent.Process.Pid, "VmHWM")
			t.Logf("serve: answering %s after its start, VmHWM %d KiB", ready.Round(time.Millisecond), hwm)
			if hwm > hostileConfigRSS {
				t.Errorf("serve: peak memory (VmHWM) %d KiB; want under %d KiB", hwm, hostileConfigRSS)
			}
			e.stopAgent()

			// start: starts the agent, and says why the file is not in force.
			t1 := time.Now()
			r := e.startDetached()
			took := time.Since(t1)
			if !strings.Contains(r.stderr, "tapis-agent: the config file is not in force: "+e.config) || !strings.Contains(r.stderr, hc.want) {
				t.Errorf("tapis-agent start: stderr\n%.1000s\nwant it to say the config is not in force because it %q", r.stderr, hc.want)
			}
			if st, err = e.statusWithin(); err != nil {
				t.Fatal(err)
			}
			hwm = memKB(t, st.PID, "VmHWM")
			t.Logf("start: %s, VmHWM %d KiB", took.Round(time.Millisecond), hwm)
			if hwm > hostileConfigRSS {
				t.Errorf("start: the agent's peak memory (VmHWM) %d KiB; want under %d KiB", hwm, hostileConfigRSS)
			}
			if r := e.agentCmd(nil, "stop"); r.code != 0 {
				t.Errorf("tapis-agent stop: exit %d: %s", r.code, r.stderr)
			}
		})
	}
}

// TestHostileCAFile replaces a tenant's ca_file, after the config that
// names it was loaded, by a named pipe nobody writes or a sparse 2 GiB
// file: the tenant's next login reads it. The login is refused at once,
// naming the file; the other tenant is served; the agent stays small and
// SIGTERM ends it.
func TestHostileCAFile(t *testing.T) {
	for _, fifo := range []bool{true, false} {
		name := "sparse 2GiB"
		if fifo {
			name = "fifo"
		}
		t.Run(name, func(t *testing.T) { testHostileCAFile(t, fifo) })
	}
}

func testHostileCAFile(t *testing.T, fifo bool) {
	e := newEnv(t, tapistest.Config{})
	prod := tapistest.New(t, tapistest.Config{TenantID: "prod", Users: map[string]string{"jdoe": "secret"}})
	ca := filepath.Join(e.dir, "site-ca.pem")
	_, pemBytes := selfSigned(t, "site")
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	// The fakes speak plain http on loopback: the CA is read at each
	// login all the same, and never needed.
	e.writeConfig(hostileTenants(e.fake, prod, prod, fmt.Sprintf("ca_file = %q\n", ca)))
	e.startAgent()
	pid := e.agent.Process.Pid
	e.mustToken("secret\n", "login", "dev", "--password-stdin")
	e.mustToken("secret\n", "login", "prod", "--password-stdin")
	usual := e.timeTokens([]string{"prod"}, tokenSamples)
	t.Logf("usual token calls of prod: %s", usual)

	// Saved beside the config: the watcher ignores other files, so the
	// config in force still names it.
	tmp := ca + ".new"
	want := "is a named pipe, not a regular file"
	if !fifo {
		want = "is 2 GiB, more than the 4 MiB allowed"
	}
	hostileFile(t, tmp, fifo, 2<<30)
	if err := os.Rename(tmp, ca); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	login := e.tokenBgEnv("secret\n", nil, "login", "dev", "--password-stdin")
	during := e.timeTokens([]string{"prod"}, tokenSamples)
	code, stderr := e.wait(login, 10*time.Second)
	took := time.Since(t0)
	t.Logf("login of dev with a hostile ca_file: exit %d after %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(stderr))
	if code == 0 || !strings.Contains(stderr, ca+" "+want) {
		t.Errorf("login of dev: exit %d, stderr %q; want a refusal saying %s %s", code, stderr, ca, want)
	}
	if took > 5*time.Second {
		t.Errorf("login of dev took %s; want the refusal within 5s", took)
	}
	t.Logf("token calls of prod meanwhile: %s (bound on the median %s)", during, usualBound(usual.median()))
	if during.median() > usualBound(usual.median()) {
		t.Errorf("prod token calls: %s; usual %s: want the median within %s", during, usual, usualBound(usual.median()))
	}
	// The session of dev is kept: only the new login was refused.
	if s := e.status("dev"); s.State != ipc.StateReady {
		t.Errorf("dev is %s; want ready, its session kept", s.State)
	}
	hwm := memKB(t, pid, "VmHWM")
	t.Logf("agent memory: VmHWM %d KiB", hwm)
	if hwm > hostileTokenRSS {
		t.Errorf("agent peak memory (VmHWM) %d KiB; want under %d KiB", hwm, hostileTokenRSS)
	}
	t.Logf("SIGTERM ended the agent in %s", e.sigterm().Round(time.Millisecond))
}

// TestHostileLeaseFile points a batch job's TAPIS_TOKEN_FILE at a named
// pipe nobody writes, with no agent answering: tapis-token refuses it at
// once instead of waiting on the pipe.
func TestHostileLeaseFile(t *testing.T) {
	t.Parallel() // no figure of its own to spoil
	e := newEnv(t, tapistest.Config{})
	fifo := filepath.Join(e.dir, "lease.token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	b := e.tokenBgEnv("", []string{"TAPIS_TOKEN_FILE=" + fifo}, "dev")
	code, stderr := e.wait(b, 10*time.Second)
	took := time.Since(t0)
	t.Logf("tapis-token with a named pipe as lease file: exit %d after %s", code, took.Round(time.Millisecond))
	if code != 3 || !strings.Contains(stderr, "lease file "+fifo+" is not a regular file") {
		t.Errorf("tapis-token: exit %d, stderr %q; want 3, refusing the lease file as not a regular file", code, stderr)
	}
	if took > 5*time.Second {
		t.Errorf("tapis-token took %s; want the refusal within 5s", took)
	}
}
