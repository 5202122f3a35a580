// Package slurm asks the Slurm workload manager about batch jobs, through
// its commands (squeue, sbatch, scontrol), as a user would: the cluster is
// the one their environment names (SLURM_CONF, or the system's).
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds one command. With its controller down, squeue
// gives up only after about 18 s; the agent does not wait that long.
const DefaultTimeout = 15 * time.Second

// maxOutput bounds what a command may print: thousands of jobs fit.
const maxOutput = 4 << 20

// Commands runs Slurm's commands. The zero value finds them on PATH and
// bounds each by DefaultTimeout. It is safe for concurrent use.
type Commands struct {
	// Dir is the directory of squeue, sbatch and scontrol; "" means PATH.
	Dir string
	// Timeout bounds one command; 0 means DefaultTimeout.
	Timeout time.Duration
	// Env is the commands' environment; nil means this process's.
	Env []string
}

// States returns what Slurm says of each of jobs, keyed by the id as
// given: PENDING, RUNNING, COMPLETED, … (squeue's %T). A job Slurm does
// not know, never did or no longer does, is absent. An error means that
// Slurm could not be asked, and says nothing about the jobs: a controller
// that is down must never read as jobs that ended.
func (c Commands) States(ctx context.Context, jobs []string) (map[string]string, error) {
	states := make(map[string]string, len(jobs))
	if len(jobs) == 0 {
		return states, nil
	}
	// %A is the job's own id, also for a task of an array (its
	// SLURM_JOB_ID); %i is the id as users write it, 1234_7 for that
	// task. A lease may name either.
	out, stderr, err := c.run(ctx, "squeue", "--noheader", "--states=all", "--format=%A %i %T", "--jobs="+strings.Join(jobs, ","))
	if err != nil {
		// Asked about one job only, squeue fails when it does not know
		// it; asked about several, it lists those it knows.
		if strings.Contains(stderr, "Invalid job id specified") {
			return states, nil
		}
		return nil, err
	}
	want := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		want[j] = true
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		for _, id := range f[:2] {
			if want[id] {
				states[id] = f[2]
			}
		}
	}
	return states, nil
}

// Active reports whether a job in state may still run, now or later, and
// need its token. The states of a job that is over are listed; any other
// (PENDING, RUNNING, SUSPENDED, REQUEUED, a state of a newer Slurm, …)
// counts as active. A job whose record Slurm purges drops out of
// squeue's answers, which ends its lease after a grace period anyway.
func Active(state string) bool {
	switch state {
	case "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL",
		"DEADLINE", "OUT_OF_MEMORY", "REVOKED", "PREEMPTED":
		return false
	}
	return true
}

// Submit runs sbatch with args, the job held (--hold) so that it cannot
// start before its lease is in place, and returns the new job's id.
func (c Commands) Submit(ctx context.Context, args []string) (string, error) {
	out, _, err := c.run(ctx, "sbatch", append([]string{"--parsable", "--hold"}, args...)...)
	if err != nil {
		return "", err
	}
	// --parsable prints "ID" or "ID;CLUSTER".
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	return id, nil
}

// Release lets a held job start (scontrol release).
func (c Commands) Release(ctx context.Context, job string) error {
	_, _, err := c.run(ctx, "scontrol", "release", job)
	return err
}

// Cancel cancels a job (scancel).
func (c Commands) Cancel(ctx context.Context, job string) error {
	_, _, err := c.run(ctx, "scancel", job)
	return err
}

// run runs the Slurm command name with args within the timeout and
// returns its stdout and stderr. A command that exits non-zero is an
// error carrying the last line of its stderr.
func (c Commands) run(ctx context.Context, name string, args ...string) (stdout, stderr string, err error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := name
	if c.Dir != "" {
		path = c.Dir + "/" + name
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = c.Env
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	stderr = errb.String()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return "", stderr, fmt.Errorf("%s did not answer within %s", name, timeout)
	case errors.Is(err, exec.ErrNotFound):
		return "", stderr, fmt.Errorf("%s not found: is this a Slurm cluster? (%w)", name, err)
	case err != nil:
		msg := lastLine(stderr)
		if msg == "" {
			msg = err.Error()
		}
		return "", stderr, fmt.Errorf("%s: %s", name, msg)
	}
	return out.String(), stderr, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// limitedBuffer keeps the first maxOutput bytes written to it and drops
// the rest, so that a runaway command cannot fill the agent's memory.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

var _ io.Writer = (*limitedBuffer)(nil)
