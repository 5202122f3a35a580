//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slurmCluster is a one-node Slurm cluster on localhost with a munge of its
// own (Debian's slurm-wlm and munge), started for one test: private
// ports, state, spool, logs and munge socket; nothing of the system's.
type slurmCluster struct {
	t    *testing.T
	dir  string
	conf string // SLURM_CONF
	node string
}

// env is what a client of the cluster needs in its environment.
func (c *slurmCluster) env() []string { return []string{"SLURM_CONF=" + c.conf} }

// startSlurm starts munged, slurmctld and slurmd, and waits until the node
// is idle. It skips the test, saying why, when a component is missing or
// cannot start here; CI installs them (.ci/run).
func startSlurm(t *testing.T) *slurmCluster {
	t.Helper()
	for _, p := range []string{"munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo"} {
		if _, err := exec.LookPath(p); err != nil {
			if _, err2 := os.Stat(filepath.Join("/usr/sbin", p)); err2 != nil {
				t.Skipf("no real Slurm here: %s not found (apt-get install slurm-wlm munge; .ci/run does)", p)
			}
		}
	}
	if os.Getuid() != 0 {
		t.Skip("no real Slurm here: slurmd must run as root to start jobs, and the tests run as uid " + strconv.Itoa(os.Getuid()))
	}
	// Short: the munge socket's path must fit a sockaddr_un.
	dir, err := os.MkdirTemp("", "slurm")
	if err != nil {
		t.Fatal(err)
	}
	c := &slurmCluster{t: t, dir: dir, conf: filepath.Join(dir, "slurm.conf")}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"munge", "state", "spool", "log"} {
		// munged refuses a socket directory closed to others ("Socket is
		// inaccessible"); the test's files are root's either way.
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	key := filepath.Join(dir, "munge", "key")
	sock := filepath.Join(dir, "munge", "sock")
	if out, err := exec.Command(sbin("mungekey"), "--create", "--keyfile="+key).CombinedOutput(); err != nil {
		t.Skipf("no real Slurm here: mungekey: %v: %s", err, out)
	}
	c.daemon("munged", sbin("munged"), "--foreground", "--socket="+sock, "--key-file="+key,
		"--pid-file="+filepath.Join(dir, "munge", "pid"), "--seed-file="+filepath.Join(dir, "munge", "seed"),
		"--log-file="+filepath.Join(dir, "log", "munged.log"))
	c.waitUntil("munged answers", 10*time.Second, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})

	// The node line exactly as slurmd -C sees the hardware, else slurmctld
	// marks the node invalid.
	out, err := exec.Command(sbin("slurmd"), "-C").Output()
	if err != nil {
		t.Skipf("no real Slurm here: slurmd -C: %v", err)
	}
	nodeLine, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(nodeLine)
	if len(f) == 0 || !strings.HasPrefix(f[0], "NodeName=") {
		t.Skipf("no real Slurm here: slurmd -C printed %q", out)
	}
	c.node = strings.TrimPrefix(f[0], "NodeName=")
	conf := fmt.Sprintf(`ClusterName=tapis
SlurmctldHost=localhost
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%[3]s
CredType=cred/munge
StateSaveLocation=%[4]s/state
SlurmdSpoolDir=%[4]s/spool
SlurmctldPidFile=%[4]s/slurmctld.pid
SlurmdPidFile=%[4]s/slurmd.pid
SlurmctldLogFile=%[4]s/log/slurmctld.log
SlurmdLogFile=%[4]s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=60
%s NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP
`, freePort(t), freePort(t), sock, dir, nodeLine, c.node)
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.daemon("slurmctld", sbin("slurmctld"), "-D", "-f", c.conf)
	c.daemon("slurmd", sbin("slurmd"), "-D", "-f", c.conf)
	c.waitUntil("the node to be idle", 60*time.Second, func() bool {
		out, _ := c.cmd("sinfo", "-h", "-n", c.node, "-o", "%t").Output()
		return strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

// sbin finds a daemon: on PATH, else in /usr/sbin, which a user's PATH
// may lack.
func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// daemon runs a Slurm or munge daemon in the foreground until the test
// ends, then stops it by its pid and waits for it.
func (c *slurmCluster) daemon(name, path string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(path, args...)
	logf, err := os.Create(filepath.Join(c.dir, "log", name+".out"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), c.env()...)
	// Pdeathsig: a test binary killed before its cleanups (a timeout, a
	// panic elsewhere) must not leave root daemons behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Skipf("no real Slurm here: starting %s: %v", name, err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
}

// waitUntil polls cond; when it does not hold within d, the test is
// skipped with the daemons' logs, since the cluster could not start here.
func (c *slurmCluster) waitUntil(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Skipf("no real Slurm here: timed out after %s waiting for %s\n%s", d, what, c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logs returns the tails of the daemons' logs.
func (c *slurmCluster) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.dir, "log", "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "== %s\n%s\n", filepath.Base(f), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return b.String()
}

// cmd is a Slurm client command on the cluster.
func (c *slurmCluster) cmd(name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), c.env()...)
	return cmd
}

// jobState returns squeue's state of job, "" when it knows none.
func (c *slurmCluster) jobState(job string) string {
	out, _ := c.cmd("squeue", "-h", "-t", "all", "-j", job, "-o", "%T").Output()
	return strings.TrimSpace(string(out))
}

// lines returns the lines of the file at path; none when it is missing.
func lines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	for s := bufio.NewScanner(f); s.Scan(); {
		out = append(out, s.Text())
	}
	return out
}
