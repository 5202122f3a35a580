//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/lease"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestSlurmLease runs a batch job on a real one-node Slurm that outlives
// two lifetimes of its tenant's tokens, submitted with tapis-token sbatch.
// The job cannot reach the agent, as on a compute node: it reads its
// token through tapis-token from the lease file, at every step a valid
// one. The file, looked at every second, always holds an access token
// valid for the lease's minimum, never a refresh token, and is gone
// within a minute of the job's end.
func TestSlurmLease(t *testing.T) {
	t.Parallel()
	cluster := startSlurm(t)
	const (
		ttl      = 30 * time.Second // the tenant's token lifetime
		minValid = 8 * time.Second  // the lease's
		jobFor   = 2*ttl + 10*time.Second
	)
	e := newEnv(t, tapistest.Config{AccessTTL: ttl})
	e.extraEnv = cluster.env()
	e.startAgent()
	e.login()

	out := filepath.Join(e.dir, "job.out")
	// The Python client reads the file too, when there is a python3.
	python := "true"
	if py, err := exec.LookPath("python3"); err == nil {
		src, _ := filepath.Abs(filepath.Join("..", "contrib", "python", "src"))
		python = "PYTHONPATH=" + src + " " + py + ` -c 'import tapis_agent; print(tapis_agent.token("dev"))'`
	}
	script := e.script("job.sh", fmt.Sprintf(`# A compute node: the login node's agent socket is not there.
export TAPIS_AGENT_SOCK=/nonexistent/agent.sock
end=$(( $(date +%%s) + %d ))
while [ "$(date +%%s)" -lt "$end" ]; do
  now=$(date +%%s)
  if tok=$(%s dev 2>>%[3]s.err); then echo "$now ok $tok" >>%[3]s; else echo "$now fail $?" >>%[3]s; fi
  if tok=$(%[4]s 2>>%[3]s.err); then [ -z "$tok" ] || echo "$now ok $tok" >>%[3]s; else echo "$now pyfail $?" >>%[3]s; fi
  sleep 2
done
echo done >>%[3]s
`, int(jobFor/time.Second), filepath.Join(binDir, "tapis-token"), out, python))

	r := e.mustToken("", "sbatch", "dev", "--min-valid", minValid.String(), "--", "--output="+filepath.Join(e.dir, "slurm-%j.out"), script)
	job := strings.TrimSpace(r.stdout)
	if _, err := strconv.Atoi(job); err != nil {
		t.Fatalf("tapis-token sbatch printed %q; want the job id\nstderr: %s", r.stdout, r.stderr)
	}
	path := filepath.Join(e.home, ".local", "state", "tapis-agent", "jobs", job, "dev.token")
	if !strings.Contains(r.stderr, path) {
		t.Errorf("tapis-token sbatch does not name the lease file %s:\n%s", path, r.stderr)
	}
	t.Logf("job %s submitted; lease file %s", job, path)

	// Look at the file every second while the job runs.
	tokens := map[string]bool{}
	sawRunning := false
	start := time.Now()
	for !done(out) {
		if time.Since(start) > jobFor+2*time.Minute {
			t.Fatalf("job %s did not finish in time (state %s)\n%s\nagent log:\n%s", job, cluster.jobState(job), strings.Join(lines(out), "\n"), e.agentLog())
		}
		checkLeaseFile(t, path, minValid, tokens)
		if !sawRunning && strings.Contains(e.mustToken("", "status").stdout, "RUNNING") {
			sawRunning = true
		}
		time.Sleep(time.Second)
	}
	if len(tokens) < 3 {
		t.Errorf("over the job's %s the lease file held %d tokens; want at least 3 (two renewals)", jobFor, len(tokens))
	}
	if !sawRunning {
		t.Errorf("tapis-token status never showed the lease's job RUNNING")
	}

	// What the job read: a valid token at every step.
	steps := 0
	jobTokens := map[string]bool{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) == 1 && f[0] == "done" {
			continue
		}
		if len(f) != 3 || f[1] != "ok" {
			errs, _ := os.ReadFile(out + ".err")
			t.Fatalf("the job could not read a token: %q\nits stderr:\n%s", l, errs)
		}
		at, _ := strconv.ParseInt(f[0], 10, 64)
		c, err := jwt.Decode(f[2])
		exp, ok := c.Expiry()
		if err != nil || !ok || !exp.After(time.Unix(at, 0)) {
			t.Errorf("at %d the job read a token that expires at %v (%v)", at, exp, err)
		}
		jobTokens[f[2]] = true
		steps++
	}
	if steps < int(jobFor/(3*time.Second)) || len(jobTokens) < 3 {
		t.Errorf("the job read %d tokens in %d steps; want at least 3 over %d steps", len(jobTokens), steps, int(jobFor/(3*time.Second)))
	}

	t.Logf("the job read a valid token %d times (tapis-token and Python), %d distinct; the file held %d", steps, len(jobTokens), len(tokens))

	// The file goes within a minute of the job's end.
	ended := time.Now()
	e.waitFor("the lease file to go after the job's end", time.Minute, func() bool {
		_, err := os.Stat(filepath.Dir(path))
		return os.IsNotExist(err)
	})
	t.Logf("lease file removed %s after the job's end (Slurm: %s)", time.Since(ended).Round(time.Second), cluster.jobState(job))
	if st := e.mustToken("", "status").stdout; strings.Contains(st, path) {
		t.Errorf("status still lists the lease after the job ended:\n%s", st)
	}
}

// done reports whether the job's output says it finished.
func done(out string) bool {
	l := lines(out)
	return len(l) > 0 && l[len(l)-1] == "done"
}

// checkLeaseFile checks the lease file at path as a job would find it:
// the user's alone, in a directory closed to others, holding one access
// token valid for at least minValid, and records the token.
func checkLeaseFile(t *testing.T, path string, minValid time.Duration, tokens map[string]bool) {
	t.Helper()
	now := time.Now()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("at %s: %v", now.Format(time.TimeOnly), err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v; want %04o", p, err, fi.Mode().Perm(), want)
		}
	}
	tok, err := lease.Parse(data)
	if err != nil {
		t.Fatalf("at %s the lease file does not parse: %v", now.Format(time.TimeOnly), err)
	}
	if left := tok.ExpiresAt.Sub(now); left < minValid {
		t.Errorf("at %s the lease file's token is valid for %s; want at least %s", now.Format(time.TimeOnly), left, minValid)
	}
	c, err := jwt.Decode(tok.AccessToken)
	if err != nil || c.TokenType() != "access" {
		t.Errorf("the lease file's token is of type %q (%v); want an access token", c.TokenType(), err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "eyJ") && !strings.HasPrefix(l, "TAPIS_TOKEN="+tok.AccessToken) {
			t.Errorf("the lease file holds a JWT besides its access token: %.40s…", l)
		}
	}
	tokens[tok.AccessToken] = true
}

// TestSlurmLeaseRecipe: the one-line recipe, lease a job sbatch
// submitted, and its end by scancel; a job Slurm does not know is refused.
func TestSlurmLeaseRecipe(t *testing.T) {
	t.Parallel()
	cluster := startSlurm(t)
	e := newEnv(t, tapistest.Config{})
	e.extraEnv = cluster.env()
	e.startAgent()
	e.login()

	r := e.token("", "lease", "--job", "999999")
	if r.code != 1 || !strings.Contains(r.stderr, "Slurm knows no job 999999") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("lease of a job Slurm does not know: exit %d, %q; want exit 1 saying so, with a hint", r.code, r.stderr)
	}

	sub := cluster.cmd("sbatch", "--parsable", "--hold", "--wrap", "sleep 600")
	outb, err := sub.Output()
	if err != nil {
		t.Fatalf("sbatch: %v", err)
	}
	job := strings.TrimSpace(string(outb))
	r = e.mustToken("", "lease", "--job", job+";tapis", "--min-valid", "1h")
	path := strings.TrimSpace(r.stdout)
	if want := filepath.Join(e.home, ".local", "state", "tapis-agent", "jobs", job, "dev.token"); path != want {
		t.Errorf("tapis-token lease printed %q; want %s", path, want)
	}
	checkLeaseFile(t, path, time.Hour, map[string]bool{})
	if st := e.mustToken("", "status").stdout; !strings.Contains(st, job) || !strings.Contains(st, "PENDING") {
		t.Errorf("status does not list the held job's lease as PENDING:\n%s", st)
	}
	if err := cluster.cmd("scancel", job).Run(); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	e.waitFor("the lease file to go after scancel", time.Minute, func() bool {
		_, err := os.Stat(path)
		return os.IsNotExist(err)
	})
	t.Logf("lease file removed %s after scancel", time.Since(ended).Round(time.Second))
	if !strings.Contains(e.agentLog(), "CANCELLED") {
		t.Errorf("the agent's log does not say the job was cancelled:\n%s", e.agentLog())
	}
}
