package tokencli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/human"
	"github.com/tapis-agent/tapis-agent/internal/slurm"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/lease"
)

// leaseArgs are the flags lease and sbatch share.
type leaseArgs struct {
	tenant, job, until, file, minValid string
}

func (la *leaseArgs) flags() []cmdline.Flag {
	return []cmdline.Flag{cmdline.ValueFlag("--until", &la.until), cmdline.ValueFlag("--file", &la.file),
		cmdline.ValueFlag("--min-valid", &la.minValid)}
}

// request builds the lease request of la, for job.
func (la *leaseArgs) request(job string, now time.Time) (*ipc.LeaseRequest, error) {
	req := &ipc.LeaseRequest{Tenant: la.tenant, Job: job}
	if la.until != "" {
		t, err := parseUntil(la.until, now)
		if err != nil {
			return nil, err
		}
		req.Until = &t
	}
	if la.file != "" {
		p, err := filepath.Abs(la.file)
		if err != nil {
			return nil, usagef("--file %q: %v", la.file, err)
		}
		req.Path = p
	}
	if la.minValid != "" {
		d, err := cmdline.ParseMinValid(la.minValid)
		if err != nil {
			return nil, err
		}
		req.MinValid = int64((d + time.Second - 1) / time.Second)
		if req.MinValid == 0 {
			return nil, usagef("--min-valid must be more than 0")
		}
	}
	return req, nil
}

// untilLayouts are the absolute times --until takes, besides RFC 3339, in
// local time.
var untilLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

// parseUntil reads --until: a duration from now (48h), or a time
// (2026-12-24T18:00, in local time unless it names its zone).
func parseUntil(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range untilLayouts {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--until %q: give a duration from now such as 48h, or a time such as 2026-12-24T18:00 or 2026-12-24T18:00:00Z", s)
}

func cmdLease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var la leaseArgs
	var cancel bool
	pos, err := cmdline.ParseArgs(args, append(la.flags(), cmdline.ValueFlag("--job", &la.job), cmdline.BoolFlag("--cancel", &cancel))...)
	if err != nil {
		return err
	}
	if la.tenant, err = cmdline.OneTenant(pos); err != nil {
		return err
	}
	// sbatch --parsable prints ID;CLUSTER on a multi-cluster site.
	job, _, _ := strings.Cut(la.job, ";")
	switch {
	case job == "":
		return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "lease needs --job JOBID",
			Hint: `lease a job as sbatch submits it: tapis-token lease --job "$(sbatch --parsable job.sh)", or tapis-token sbatch job.sh`}
	case cancel && (la.until != "" || la.file != "" || la.minValid != ""):
		return usagef("--cancel takes only TENANT and --job")
	}
	req, err := la.request(job, time.Now())
	if err != nil {
		return err
	}
	req.Cancel = cancel
	st, err := client().Lease(ctx, req)
	if err != nil {
		return err
	}
	if cancel {
		fmt.Fprintf(stderr, "tapis-token: ended the lease of %s for job %s; removed %s\n", st.Tenant, st.Job, st.Path)
		return nil
	}
	fmt.Fprintln(stdout, st.Path)
	fmt.Fprintf(stderr, "tapis-token: job %s finds a token of %s in %s, valid for at least %s, %s\n",
		st.Job, st.Tenant, st.Path, human.Duration(time.Duration(st.MinValid)*time.Second), leaseEnd(st))
	return nil
}

// leaseEnd says until when a lease lasts.
func leaseEnd(st *ipc.LeaseStatus) string {
	if st.Until != nil {
		return "until " + st.Until.Local().Format(time.RFC3339)
	}
	return "for as long as Slurm says the job is pending or running"
}

// cmdSbatch submits a job with sbatch, held, leases its token, and
// releases it: the job never starts without its token file.
//
//	tapis-token sbatch [TENANT] [--min-valid D] [--file PATH] -- SBATCH_ARGS…
//	tapis-token sbatch SBATCH_ARGS…
func cmdSbatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var la leaseArgs
	sbatchArgs := args
	if i := slices.Index(args, "--"); i >= 0 {
		pos, err := cmdline.ParseArgs(args[:i], la.flags()...)
		if err != nil {
			return err
		}
		if la.tenant, err = cmdline.OneTenant(pos); err != nil {
			return err
		}
		if la.until != "" {
			return usagef("sbatch takes no --until: the lease lasts while Slurm says the job is pending or running")
		}
		sbatchArgs = args[i+1:]
	}
	if len(sbatchArgs) == 0 {
		return &cmdline.Failure{Code: cmdline.ExitUsage, Msg: "sbatch needs the arguments of sbatch: a job script at least",
			Hint: "tapis-token sbatch job.sh, or tapis-token sbatch TENANT --min-valid 2h -- --time 48:00:00 job.sh"}
	}
	req, err := la.request("", time.Now())
	if err != nil {
		return err
	}
	c := client()
	// Fail before submitting when no agent answers.
	if _, err := c.Status(ctx); err != nil {
		return err
	}
	// The job inherits this environment (sbatch's default --export=ALL):
	// it names the lease file only when it is not the default one, which
	// the job finds by its SLURM_JOB_ID.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, lease.FileEnv+"=") })
	if req.Path != "" {
		env = append(env, lease.FileEnv+"="+req.Path)
	}
	sl := slurm.Commands{Env: env}
	job, err := sl.Submit(ctx, sbatchArgs)
	if err != nil {
		return &cmdline.Failure{Code: cmdline.ExitError, Msg: "submitting the job: " + err.Error(),
			Hint: "run the same sbatch command alone to see what Slurm says"}
	}
	if !lease.ValidSlurmJob(job) {
		return &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("sbatch printed %q, not a job id; nothing was leased", job),
			Hint: "squeue --me shows whether a job was submitted; scontrol release JOBID lets a held one start"}
	}
	req.Job = job
	st, err := c.Lease(ctx, req)
	if err != nil {
		// The job is held and never ran: cancel it rather than leave it
		// waiting for a release nobody will give.
		if cerr := sl.Cancel(context.WithoutCancel(ctx), job); cerr != nil {
			fmt.Fprintf(stderr, "tapis-token: could not cancel held job %s: %v; cancel it with scancel %s\n", job, cerr, job)
		} else {
			fmt.Fprintf(stderr, "tapis-token: cancelled job %s, which was held until its lease: the lease failed\n", job)
		}
		return err
	}
	if !userHolds(sbatchArgs) {
		if err := sl.Release(ctx, job); err != nil {
			return &cmdline.Failure{Code: cmdline.ExitError, Msg: fmt.Sprintf("job %s is leased but held: releasing it: %v", job, err),
				Hint: "scontrol release " + job}
		}
	}
	fmt.Fprintln(stdout, job)
	fmt.Fprintf(stderr, "tapis-token: submitted batch job %s; it finds a token of %s in %s, valid for at least %s, %s\n",
		job, st.Tenant, st.Path, human.Duration(time.Duration(st.MinValid)*time.Second), leaseEnd(st))
	return nil
}

// userHolds reports whether the sbatch arguments ask for the job to be
// held: then it stays held until the user releases it.
func userHolds(args []string) bool {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false // the script: what follows is its arguments
		}
		if a == "-H" || a == "--hold" {
			return true
		}
	}
	return false
}

// writeLeases writes one aligned line per lease, times relative to now.
func writeLeases(w io.Writer, leases []ipc.LeaseStatus, now time.Time) {
	if len(leases) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "JOB\tTENANT\tJOB STATE\tTOKEN EXPIRES\tNEXT WRITE\tMIN VALID\tFILE")
	for _, l := range leases {
		state := l.JobState
		if l.Until != nil {
			state = "until " + l.Until.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Job, l.Tenant, state, when(l.TokenExpiresAt, now),
			when(l.NextWrite, now), human.Duration(time.Duration(l.MinValid)*time.Second), l.Path)
	}
	tw.Flush()
	for _, l := range leases {
		if l.LastError != "" {
			fmt.Fprintf(w, "job %s (%s): last error: %s\n", l.Job, l.Tenant, l.LastError)
		}
	}
}
