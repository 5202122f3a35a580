package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/human"
	"github.com/tapis-agent/tapis-agent/internal/safefile"
	"github.com/tapis-agent/tapis-agent/internal/slurm"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/lease"
)

// Defaults of the leases of batch jobs (tapis-token lease).
const (
	// DefaultLeaseMinValid is the validity a lease's file keeps when the
	// request names none; for tokens that live less than twice that, half
	// their lifetime.
	DefaultLeaseMinValid = time.Hour
	// DefaultJobPoll is how often the agent asks Slurm about leased jobs.
	DefaultJobPoll = 10 * time.Second
	// DefaultJobGrace is how long Slurm may not know a leased job before
	// its lease ends: a job ended and purged from Slurm's memory. A
	// controller that does not answer is not "does not know".
	DefaultJobGrace = 30 * time.Second
	// maxLeases bounds the leases one agent keeps.
	maxLeases = 1000
	// leaseRetry is the first wait after a lease's token could not be
	// renewed; it doubles up to leaseRetryMax.
	leaseRetry    = 2 * time.Second
	leaseRetryMax = time.Minute
)

// Scheduler tells the states of batch jobs; slurm.Commands is the one the
// daemon uses. States returns the state of each job it knows, keyed by the
// id asked, and an error when the scheduler could not be asked at all.
type Scheduler interface {
	States(ctx context.Context, jobs []string) (map[string]string, error)
}

type leaseKey struct{ job, tenant string }

// jobLease is one lease: a token of a tenant kept in a file for a batch
// job. Its writer goroutine owns the file; the job poller ends it.
type jobLease struct {
	key      leaseKey
	path     string
	minValid time.Duration
	until    time.Time // zero: while Slurm says the job is active
	created  time.Time
	stop     context.CancelFunc // ends the writer, which removes the file
	done     chan struct{}      // closed once the writer has finished

	// Guarded by Agent.leaseMu.
	jobState     string
	checked      time.Time // Slurm last answered
	unknownSince time.Time // Slurm first did not know the job; zero while it does
	schedErr     string
	written      *tokenSet // what the file holds; nil before the first write
	writtenAt    time.Time
	nextWrite    time.Time
	writeErr     string
	retryWait    time.Duration // the last wait after a failed renewal; 0 after a success
	keepFile     bool          // the writer leaves the file: a new lease of the same key took it over
	endReason    string        // why the lease ended, for the log
}

// leaseLead is how much earlier than needed a lease renews its file, for
// tokens that live life: a sixth of it, between 1 s and 5 min. It is the
// slack a late timer or a slow refresh has before the file's token falls
// below the lease's minimum.
func leaseLead(life time.Duration) time.Duration {
	return min(max(life/6, time.Second), 5*time.Minute)
}

// Lease answers POST /v1/lease: it starts, renews or (req.Cancel) ends
// the lease of a job's token file. The file is written before Lease
// returns, so that a job released after it finds its token.
func (a *Agent) Lease(ctx context.Context, req *ipc.LeaseRequest) (*ipc.LeaseStatus, error) {
	tenant, err := a.resolve(req.Tenant)
	if err != nil {
		return nil, err
	}
	slurmJob := req.Until == nil
	switch {
	case !lease.ValidJob(req.Job):
		return nil, badLease(fmt.Sprintf("job %q is not a job id", req.Job), "give the id sbatch printed, e.g. --job 1234")
	case slurmJob && !req.Cancel && !lease.ValidSlurmJob(req.Job):
		return nil, badLease(fmt.Sprintf("job %q is not a Slurm job id (1234, or 1234_7 for an array task)", req.Job),
			"for another scheduler's job, say when the lease ends: --until TIME")
	}
	key := leaseKey{req.Job, tenant}
	if req.Cancel {
		l := a.takeLease(key, "cancelled", false)
		if l == nil {
			return nil, &ipc.Error{Code: ipc.CodeUnknownTenant, Message: fmt.Sprintf("no lease of %s for job %s", tenant, req.Job),
				Hint: "tapis-token status lists the leases"}
		}
		<-l.done
		st := a.leaseStatus(l)
		st.JobState = ipc.JobEnded
		return &st, nil
	}

	path := req.Path
	if path == "" {
		path = filepath.Join(a.leaseDir(), req.Job, tenant+".token")
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || strings.HasPrefix(filepath.Base(path), ".") {
		return nil, badLease(fmt.Sprintf("lease file %q is not a clean absolute path", path), "give a full path, e.g. --file ~/jobs/1234.token")
	}
	if err := checkLeasePath(path); err != nil {
		return nil, badLease(err.Error(), "name a new file, or leave --file out for the default")
	}
	now := a.opts.Now()
	var until time.Time
	if req.Until != nil {
		until = *req.Until
		if !until.After(now) {
			return nil, badLease("--until "+until.UTC().Format(time.RFC3339)+" is in the past", "give a time to come, e.g. --until 48h")
		}
	}

	s := a.session(tenant)
	var t *tokenSet
	if s != nil {
		t = s.tok.Load()
	}
	if t == nil {
		return nil, loginRequired(tenant, "not logged in; a lease needs a session to keep the job's token fresh")
	}
	life := t.expiresAt.Sub(t.issuedAt)
	lead := leaseLead(life)
	minValid := time.Duration(req.MinValid) * time.Second
	if minValid <= 0 {
		minValid = min(DefaultLeaseMinValid, life/2)
	}
	if minValid+2*lead > life*9/10 {
		most := max(life*9/10-2*lead, 0).Truncate(time.Second)
		return nil, &ipc.Error{Code: ipc.CodeUnsatisfiable,
			Message: fmt.Sprintf("a lease cannot keep %s valid for %s: its tokens live %s", tenant, human.Duration(minValid), human.Duration(life)),
			Hint:    "ask for at most --min-valid " + human.Flag(most)}
	}

	jobState := ipc.JobUntil
	if slurmJob {
		if jobState, err = a.checkJob(ctx, req.Job); err != nil {
			return nil, err
		}
	}

	l := &jobLease{key: key, path: path, minValid: minValid, until: until, created: now, done: make(chan struct{}),
		jobState: jobState}
	if slurmJob {
		l.checked = now
	}
	a.leaseMu.Lock()
	for k, o := range a.leases {
		if k != key && o.path == path {
			a.leaseMu.Unlock()
			return nil, badLease(fmt.Sprintf("%s is the file of the lease of %s for job %s", path, o.key.tenant, o.key.job), "name another file")
		}
	}
	if a.leases[key] == nil && len(a.leases) >= maxLeases {
		a.leaseMu.Unlock()
		return nil, badLease(fmt.Sprintf("the agent keeps %d leases already", maxLeases), "cancel leases of jobs that ended: tapis-token lease --job ID --cancel")
	}
	a.leaseMu.Unlock()
	// A lease of the same job and tenant is replaced; its file is taken
	// over when the path stays.
	if old := a.takeLease(key, "replaced", true); old != nil {
		<-old.done
		if old.path != path {
			a.removeLeaseFile(old)
		}
	}
	if err := a.prepareLeaseDir(path); err != nil {
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("creating the directory of lease file %s: %v", path, err),
			Hint: "name a file in a directory of yours with --file"}
	}
	// The first write, here, so that the file exists when the answer
	// does; the writer goroutine keeps it current.
	a.renewLease(ctx, l)
	a.leaseMu.Lock()
	werr := l.writeErr
	if werr != "" || a.ctx.Err() != nil {
		a.leaseMu.Unlock()
		_ = removeIfExists(path)
		if werr == "" {
			werr = "the agent is shutting down"
		}
		return nil, &ipc.Error{Code: ipc.CodeInternal, Message: "lease of " + tenant + " for job " + req.Job + ": " + werr, Hint: ipc.HintStatus}
	}
	wctx, stop := context.WithCancel(a.ctx)
	l.stop = stop
	a.leases[key] = l
	delete(a.orphans, key)
	startPoller := slurmJob && !a.polling
	if startPoller {
		a.polling = true
	}
	a.leaseMu.Unlock()
	a.wg.Go(func() { a.runLease(wctx, l) })
	if startPoller {
		a.wg.Go(a.pollJobs)
	}
	a.log.Info("lease_started", "tenant", tenant, "job", req.Job, "path", path, "min_valid", human.Flag(minValid),
		"until", timeText(until), "jti", l.written.accessJTI)
	st := a.leaseStatus(l)
	return &st, nil
}

// checkJob asks Slurm about job, which a lease is about to follow, and
// returns its state: it must exist and not have ended.
func (a *Agent) checkJob(ctx context.Context, job string) (string, error) {
	states, err := a.opts.Scheduler.States(ctx, []string{job})
	if err != nil {
		return "", &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("cannot ask Slurm about job %s: %v", job, err),
			Hint: "the agent runs squeue: it needs Slurm's commands on its PATH and the cluster's SLURM_CONF; for another scheduler, use --until TIME"}
	}
	st, ok := states[job]
	switch {
	case !ok:
		return "", badLease(fmt.Sprintf("Slurm knows no job %s", job), "squeue --me lists your jobs; lease a job after sbatch submits it")
	case !slurm.Active(st):
		return "", badLease(fmt.Sprintf("job %s has ended (%s)", job, st), "squeue --me lists your jobs")
	}
	return st, nil
}

func badLease(msg, hint string) *ipc.Error {
	return &ipc.Error{Code: ipc.CodeBadRequest, Message: msg, Hint: hint}
}

// checkLeasePath refuses a path at which something other than a lease
// file exists: a lease overwrites its file and removes it at the end.
func checkLeasePath(path string) error {
	data, err := readLeaseFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := lease.Parse(data); err != nil {
		return fmt.Errorf("%s exists and is not a lease file; not overwriting it", path)
	}
	return nil
}

// leaseDir is where lease files go by default.
func (a *Agent) leaseDir() string {
	if a.opts.LeaseDir != "" {
		return a.opts.LeaseDir
	}
	return lease.Dir()
}

// isJobDir reports whether dir is a job's directory of lease files,
// .../jobs/JOB: the agent closes it to others and removes it when empty.
func isJobDir(dir, job string) bool {
	return filepath.Base(dir) == job && filepath.Base(filepath.Dir(dir)) == "jobs"
}

// prepareLeaseDir makes the directory of path; a job's directory of
// lease files, and the jobs directory above it, are closed to others.
func (a *Agent) prepareLeaseDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !isJobDir(dir, filepath.Base(dir)) {
		return nil
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
		if fi.Mode().Perm() != 0o700 {
			if err := os.Chmod(d, 0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeLease removes the lease of key from the agent and stops its writer,
// which removes the file unless keepFile. It returns nil when there is no
// such lease.
func (a *Agent) takeLease(key leaseKey, reason string, keepFile bool) *jobLease {
	a.leaseMu.Lock()
	l := a.leases[key]
	if l != nil {
		delete(a.leases, key)
		l.keepFile, l.endReason = keepFile, reason
	}
	a.leaseMu.Unlock()
	if l != nil {
		l.stop()
	}
	return l
}

// runLease keeps l's file current until the lease ends, then removes it.
func (a *Agent) runLease(ctx context.Context, l *jobLease) {
	defer close(l.done)
	for {
		a.leaseMu.Lock()
		next := l.nextWrite
		a.leaseMu.Unlock()
		if !l.until.IsZero() && l.until.Before(next) {
			next = l.until
		}
		timer := time.NewTimer(max(next.Sub(a.opts.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		if !l.until.IsZero() && !a.opts.Now().Before(l.until) {
			a.leaseMu.Lock()
			if a.leases[l.key] == l {
				delete(a.leases, l.key)
				l.endReason = "its --until time came"
			}
			a.leaseMu.Unlock()
			break
		}
		a.renewLease(ctx, l)
	}
	a.leaseMu.Lock()
	keep, reason := l.keepFile, l.endReason
	a.leaseMu.Unlock()
	switch {
	case reason == "":
		// The agent stops: the file stays, and its token expires on its
		// own; the job can use it until then.
		a.log.Warn("lease_abandoned", "tenant", l.key.tenant, "job", l.key.job, "path", l.path,
			"reason", "the agent stops; the file is no longer kept current")
	case keep:
	default:
		// Logged first: whoever sees the file gone finds the reason
		// already in the log.
		a.log.Info("lease_ended", "tenant", l.key.tenant, "job", l.key.job, "reason", reason)
		a.removeLeaseFile(l)
	}
}

// renewLease writes a token valid for the lease's minimum and more into
// its file when the file's token is due, refreshing the session's token
// first when it is too short, and sets when to look again.
func (a *Agent) renewLease(ctx context.Context, l *jobLease) {
	now := a.opts.Now()
	a.leaseMu.Lock()
	written := l.written
	a.leaseMu.Unlock()

	s := a.session(l.key.tenant)
	var t *tokenSet
	var problem string
	if s != nil {
		t = s.tok.Load()
	}
	if t == nil {
		problem = fmt.Sprintf("not logged in to %s; the lease resumes after tapis-token login %s", l.key.tenant, l.key.tenant)
	} else {
		lead := leaseLead(t.expiresAt.Sub(t.issuedAt))
		if !t.validFor(now, l.minValid+2*lead) {
			_, err := s.token(ctx, l.minValid+2*lead)
			if err != nil && ctx.Err() == nil {
				problem = "renewing the token: " + err.Error()
			}
			if nt := s.tok.Load(); nt != nil {
				t = nt
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	if t != nil && t != written && now.Before(t.expiresAt) && (written == nil || t.expiresAt.After(written.expiresAt)) {
		if err := a.writeLeaseFile(l, s, t); err != nil {
			problem = fmt.Sprintf("writing %s: %v", l.path, err)
			a.log.Warn("lease_write_failed", "tenant", l.key.tenant, "job", l.key.job, "path", l.path, "err", err)
		} else {
			written = t
			a.leaseMu.Lock()
			l.written, l.writtenAt = t, now
			a.leaseMu.Unlock()
			a.log.Debug("lease_written", "tenant", l.key.tenant, "job", l.key.job, "jti", t.accessJTI,
				"expires_at", t.expiresAt.UTC().Format(time.RFC3339))
		}
	}
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	var next time.Time
	if problem != "" {
		l.retryWait = min(max(2*l.retryWait, leaseRetry), leaseRetryMax)
		next = now.Add(l.retryWait)
		if written != nil {
			// Try again no later than the file's token needs it.
			lead := leaseLead(written.expiresAt.Sub(written.issuedAt))
			next = minTime(next, written.expiresAt.Add(-l.minValid-lead))
		}
		if l.writeErr == "" {
			a.log.Warn("lease_renew_failed", "tenant", l.key.tenant, "job", l.key.job, "err", problem)
		}
	} else {
		l.retryWait = 0
		lead := leaseLead(written.expiresAt.Sub(written.issuedAt))
		next = written.expiresAt.Add(-l.minValid - lead)
	}
	l.writeErr, l.nextWrite = problem, maxTime(next, now.Add(time.Second))
}

// writeLeaseFile writes t into l's file.
func (a *Agent) writeLeaseFile(l *jobLease, s *session, t *tokenSet) error {
	tok := &lease.Token{MinValid: l.minValid}
	tok.Tenant, tok.BaseURL, tok.Username = s.name, s.baseURL(), s.username
	tok.AccessToken = t.access.Reveal()
	tok.ExpiresAt = jwtExpiry(tok.AccessToken, t.expiresAt)
	data, err := lease.Append(nil, l.key.job, tok)
	if err != nil {
		return err
	}
	return writeAtomic(l.path, data)
}

// readLeaseFile reads what is at a lease file's path, refusing a symlink,
// a named pipe or a giant: the agent is about to overwrite or remove it.
func readLeaseFile(path string) ([]byte, error) {
	return safefile.Read(path, safefile.Options{Max: lease.MaxFileBytes, NoFollow: true})
}

// removeLeaseFile removes l's file, and its job's directory once empty.
func (a *Agent) removeLeaseFile(l *jobLease) {
	if err := removeIfExists(l.path); err != nil {
		a.log.Warn("lease_remove_failed", "tenant", l.key.tenant, "job", l.key.job, "path", l.path, "err", err)
		return
	}
	if dir := filepath.Dir(l.path); isJobDir(dir, l.key.job) {
		_ = os.Remove(dir) // fails while another tenant's lease of the job is there
	}
}

// removeIfExists removes the regular file at path, as a token file is
// removed; a file already gone is no error.
func removeIfExists(path string) error { return sinkFile{path: path}.remove(sinkToken{}) }

// pollJobs asks Slurm about the leased jobs every JobPoll, and ends the
// leases of jobs that ended, or that Slurm has not known for JobGrace. It
// returns when no lease follows a Slurm job any more.
func (a *Agent) pollJobs() {
	ticker := time.NewTicker(a.opts.JobPoll)
	defer ticker.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-ticker.C:
		}
		a.leaseMu.Lock()
		var jobs []string
		for k, l := range a.leases {
			if l.until.IsZero() && !slices.Contains(jobs, k.job) {
				jobs = append(jobs, k.job)
			}
		}
		if len(jobs) == 0 {
			a.polling = false
			a.leaseMu.Unlock()
			return
		}
		a.leaseMu.Unlock()
		sort.Strings(jobs)
		states, err := a.opts.Scheduler.States(a.ctx, jobs)
		if a.ctx.Err() != nil {
			return
		}
		now := a.opts.Now()
		var ended []*jobLease
		a.leaseMu.Lock()
		for k, l := range a.leases {
			if !l.until.IsZero() || !slices.Contains(jobs, k.job) {
				continue
			}
			if err != nil {
				if l.schedErr == "" {
					a.log.Warn("slurm_unavailable", "job", k.job, "err", err)
				}
				l.schedErr = err.Error()
				continue
			}
			l.schedErr, l.checked = "", now
			st, known := states[k.job]
			switch {
			case known && slurm.Active(st):
				l.jobState, l.unknownSince = st, time.Time{}
				continue
			case known:
				l.jobState, l.endReason = st, "the job ended ("+st+")"
			default:
				l.jobState = ipc.JobUnknown
				if l.unknownSince.IsZero() {
					l.unknownSince = now
				}
				if now.Sub(l.unknownSince) < a.opts.JobGrace {
					continue
				}
				l.endReason = "Slurm no longer knows the job"
			}
			delete(a.leases, k)
			ended = append(ended, l)
		}
		a.leaseMu.Unlock()
		for _, l := range ended {
			l.stop()
		}
	}
}

// leaseStatus describes l.
func (a *Agent) leaseStatus(l *jobLease) ipc.LeaseStatus {
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	st := ipc.LeaseStatus{Job: l.key.job, Tenant: l.key.tenant, Path: l.path, MinValid: int64(l.minValid / time.Second),
		Until: timePtr(l.until), JobState: l.jobState, CheckedAt: timePtr(l.checked),
		WrittenAt: timePtr(l.writtenAt), NextWrite: timePtr(l.nextWrite), CreatedAt: l.created.UTC()}
	if st.JobState == "" {
		st.JobState = ipc.JobUnknown
	}
	if l.written != nil {
		st.TokenExpiresAt = timePtr(l.written.expiresAt)
	}
	switch {
	case l.writeErr != "":
		st.LastError = l.writeErr
	case l.schedErr != "":
		st.LastError = "asking Slurm: " + l.schedErr
	}
	return st
}

// leaseStatuses describes every lease, by job and tenant.
func (a *Agent) leaseStatuses() []ipc.LeaseStatus {
	a.leaseMu.Lock()
	ls := make([]*jobLease, 0, len(a.leases))
	for _, l := range a.leases {
		ls = append(ls, l)
	}
	a.leaseMu.Unlock()
	out := make([]ipc.LeaseStatus, 0, len(ls))
	for _, l := range ls {
		out = append(out, a.leaseStatus(l))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Job != out[j].Job {
			return out[i].Job < out[j].Job
		}
		return out[i].Tenant < out[j].Tenant
	})
	return out
}

// findOrphanLeases looks in the lease directory for the files an earlier
// agent kept: nobody renews them now. Those whose token expired are
// removed; the others stay for their jobs to use while they last, and
// status warns of them until they are leased again.
func (a *Agent) findOrphanLeases() {
	dir := a.opts.LeaseDir
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.token"))
	now := a.opts.Now()
	for _, f := range files {
		job := filepath.Base(filepath.Dir(f))
		data, err := readLeaseFile(f)
		if err != nil {
			continue
		}
		t, err := lease.Parse(data)
		if err != nil || !lease.ValidJob(job) {
			continue
		}
		if !now.Before(t.ExpiresAt) {
			if removeIfExists(f) == nil {
				_ = os.Remove(filepath.Dir(f))
			}
			continue
		}
		a.orphans[leaseKey{job, t.Tenant}] = f
	}
	if len(a.orphans) > 0 {
		a.log.Warn("leases_forgotten", "jobs", strings.Join(a.orphanJobs(), ","), "dir", dir,
			"hint", "an agent keeps leases in memory only; lease each job again: tapis-token lease TENANT --job ID")
	}
}

// orphanJobs lists the jobs of orphaned lease files. The caller holds
// leaseMu, or no other goroutine runs yet.
func (a *Agent) orphanJobs() []string {
	var jobs []string
	for k := range a.orphans {
		if !slices.Contains(jobs, k.job) {
			jobs = append(jobs, k.job)
		}
	}
	sort.Strings(jobs)
	return jobs
}

// leaseWarnings are the status warnings about leases: files an earlier
// agent kept that nobody renews.
func (a *Agent) leaseWarnings() []string {
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	for k, f := range a.orphans {
		if _, err := os.Lstat(f); err != nil {
			delete(a.orphans, k)
		}
	}
	if len(a.orphans) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("lease files of jobs %s were kept by an earlier agent and are no longer renewed (a restart forgets leases); lease each job again: tapis-token lease TENANT --job ID",
		strings.Join(a.orphanJobs(), ", "))}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
