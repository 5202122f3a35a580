package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/lease"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// fakeScheduler answers States from a table the test changes.
type fakeScheduler struct {
	mu     sync.Mutex // guards the fields below
	states map[string]string
	err    error
	calls  int
}

func (f *fakeScheduler) States(ctx context.Context, jobs []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]string{}
	for _, j := range jobs {
		if st, ok := f.states[j]; ok {
			out[j] = st
		}
	}
	return out, nil
}

func (f *fakeScheduler) set(job, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == "" {
		delete(f.states, job)
	} else {
		f.states[job] = state
	}
}

func (f *fakeScheduler) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// leaseWorld is an agent in a synctest bubble, logged in to tenant dev
// whose tokens live ttl, with a fake scheduler and a lease directory.
type leaseWorld struct {
	a     *Agent
	fake  *tapistest.Server
	sched *fakeScheduler
	dir   string // the lease directory, …/jobs
	log   *bytes.Buffer
}

const leaseTTL = 10 * time.Minute

func newLeaseWorld(t *testing.T, fake *tapistest.Server, dir string) *leaseWorld {
	w := &leaseWorld{fake: fake, sched: &fakeScheduler{states: map[string]string{}}, dir: dir, log: &bytes.Buffer{}}
	w.a = New(Options{Logger: slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient: &http.Client{Transport: memTransport{fake}}, Scheduler: w.sched, LeaseDir: dir})
	t.Cleanup(w.a.Close)
	w.a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {Name: "dev", BaseURL: fake.URL(), Username: "jdoe", ClientID: "c1", ClientKey: "k1"}}})
	if _, err := w.a.Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Password: "pw"}); err != nil {
		t.Fatalf("login: %v", err)
	}
	return w
}

func newLeaseFake(t *testing.T) *tapistest.Server {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "pw"}, AccessTTL: leaseTTL})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	return fake
}

func leaseDir(t *testing.T) string { return filepath.Join(t.TempDir(), "state", "tapis-agent", "jobs") }

func (w *leaseWorld) lease(t *testing.T, req *ipc.LeaseRequest) *ipc.LeaseStatus {
	t.Helper()
	st, err := w.a.Lease(context.Background(), req)
	if err != nil {
		t.Fatalf("Lease(%+v): %v", req, err)
	}
	return st
}

// readLease reads the lease file at path; nil when there is none.
func readLease(t *testing.T, path string) *lease.Token {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	tok, err := lease.Parse(data)
	if err != nil {
		t.Fatalf("lease file %s: %v\n%s", path, err, data)
	}
	return tok
}

func TestLeaseKeepsTokenValid(t *testing.T) {
	fake := newLeaseFake(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, leaseDir(t))
		w.sched.set("1234", "RUNNING")
		const minValid = 4 * time.Minute
		st := w.lease(t, &ipc.LeaseRequest{Job: "1234", MinValid: int64(minValid / time.Second)})
		path := filepath.Join(w.dir, "1234", "dev.token")
		if st.Path != path || st.Tenant != "dev" || st.JobState != "RUNNING" || st.MinValid != 240 {
			t.Errorf("Lease = %+v; want job 1234 of dev at %s, RUNNING, 240 s", st, path)
		}
		for _, p := range []string{w.dir, filepath.Dir(path), path} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			want := os.FileMode(0o600)
			if fi.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s has mode %04o; want %04o", p, fi.Mode().Perm(), want)
			}
		}
		// Three token lifetimes, looked at every 5 s: the file always
		// holds a token valid for the minimum, the agent's own or an
		// older one, never a refresh token, and it changes.
		seen := map[string]bool{}
		for end := time.Now().Add(3 * leaseTTL); time.Now().Before(end); time.Sleep(5 * time.Second) {
			synctest.Wait()
			tok := readLease(t, path)
			if tok == nil {
				t.Fatalf("at %s the lease file is gone", time.Now())
			}
			if left := time.Until(tok.ExpiresAt); left < minValid {
				t.Fatalf("at %s the lease file's token is valid for %s; want at least %s", time.Now(), left, minValid)
			}
			cur := w.a.session("dev").tok.Load()
			if strings.Contains(tok.AccessToken, cur.refresh.Reveal()) || tok.AccessToken == cur.refresh.Reveal() {
				t.Fatal("the lease file holds the refresh token")
			}
			seen[tok.AccessToken] = true
		}
		if len(seen) < 3 {
			t.Errorf("the lease file held %d tokens over three lifetimes; want at least 3", len(seen))
		}
		data, _ := os.ReadFile(path)
		if bytes.Contains(data, []byte(w.a.session("dev").tok.Load().refresh.Reveal())) {
			t.Error("the lease file holds the refresh token")
		}
	})
}

func TestLeaseEndsWithJob(t *testing.T) {
	fake := newLeaseFake(t)
	cases := []struct {
		name  string
		end   func(s *fakeScheduler)
		after time.Duration // the lease may last this long after end, at most
	}{
		{"completed", func(s *fakeScheduler) { s.set("77", "COMPLETED") }, DefaultJobPoll},
		{"cancelled", func(s *fakeScheduler) { s.set("77", "CANCELLED") }, DefaultJobPoll},
		{"purged", func(s *fakeScheduler) { s.set("77", "") }, DefaultJobPoll + DefaultJobGrace + DefaultJobPoll},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newLeaseWorld(t, fake, leaseDir(t))
				w.sched.set("77", "PENDING")
				st := w.lease(t, &ipc.LeaseRequest{Job: "77"})
				time.Sleep(time.Minute)
				w.sched.set("77", "RUNNING")
				time.Sleep(time.Minute)
				synctest.Wait()
				if readLease(t, st.Path) == nil {
					t.Fatal("the lease file went while the job ran")
				}
				tc.end(w.sched)
				ended := time.Now()
				for readLease(t, st.Path) != nil {
					if time.Since(ended) > tc.after {
						t.Fatalf("the lease file is still there %s after the job ended", time.Since(ended))
					}
					time.Sleep(time.Second)
					synctest.Wait()
				}
				if tc.name == "purged" && time.Since(ended) < DefaultJobGrace {
					t.Errorf("the lease ended %s after Slurm forgot the job; want a grace of %s", time.Since(ended), DefaultJobGrace)
				}
				if _, err := os.Stat(filepath.Dir(st.Path)); !os.IsNotExist(err) {
					t.Errorf("the job's directory is still there: %v", err)
				}
				status, _ := w.a.Status(context.Background())
				if len(status.Leases) != 0 {
					t.Errorf("status lists %d leases after the job ended", len(status.Leases))
				}
			})
		})
	}
}

// TestLeaseSurvivesSlurmDown: a controller that does not answer is never
// a job that ended.
func TestLeaseSurvivesSlurmDown(t *testing.T) {
	fake := newLeaseFake(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, leaseDir(t))
		w.sched.set("5", "RUNNING")
		st := w.lease(t, &ipc.LeaseRequest{Job: "5"})
		w.sched.fail(errors.New("squeue: Unable to contact slurm controller"))
		w.sched.set("5", "")
		time.Sleep(2 * leaseTTL)
		synctest.Wait()
		tok := readLease(t, st.Path)
		if tok == nil || time.Until(tok.ExpiresAt) < time.Duration(st.MinValid)*time.Second {
			t.Fatalf("while Slurm is down the lease file is %+v; want a token valid for the minimum", tok)
		}
		status, _ := w.a.Status(context.Background())
		if len(status.Leases) != 1 || !strings.Contains(status.Leases[0].LastError, "Unable to contact") {
			t.Errorf("status of the lease while Slurm is down: %+v; want the error", status.Leases)
		}
		w.sched.fail(nil)
		time.Sleep(DefaultJobPoll + DefaultJobGrace + DefaultJobPoll)
		synctest.Wait()
		if readLease(t, st.Path) != nil {
			t.Error("Slurm answers again and knows no job 5, yet the lease file stays")
		}
	})
}

func TestLeaseUntilAndCancel(t *testing.T) {
	fake := newLeaseFake(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, leaseDir(t))
		until := time.Now().Add(25 * time.Minute)
		st := w.lease(t, &ipc.LeaseRequest{Job: "4711.pbs01", Until: &until})
		if st.JobState != ipc.JobUntil || st.Until == nil {
			t.Errorf("Lease with until = %+v", st)
		}
		time.Sleep(24 * time.Minute)
		synctest.Wait()
		if readLease(t, st.Path) == nil {
			t.Fatal("the lease file went before its time")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if readLease(t, st.Path) != nil {
			t.Error("the lease file is there after its --until time")
		}
		w.sched.mu.Lock()
		calls := w.sched.calls
		w.sched.mu.Unlock()
		if calls != 0 {
			t.Errorf("a lease with an end time asked the scheduler %d times", calls)
		}

		w.sched.set("9", "RUNNING")
		st = w.lease(t, &ipc.LeaseRequest{Job: "9"})
		if _, err := w.a.Lease(context.Background(), &ipc.LeaseRequest{Job: "9", Cancel: true}); err != nil {
			t.Fatal(err)
		}
		if readLease(t, st.Path) != nil {
			t.Error("the lease file is there after the lease was cancelled")
		}
		if _, err := w.a.Lease(context.Background(), &ipc.LeaseRequest{Job: "9", Cancel: true}); err == nil {
			t.Error("cancelling a lease twice: no error")
		}
	})
}

func TestLeaseRefusals(t *testing.T) {
	fake := newLeaseFake(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, leaseDir(t))
		w.sched.set("1", "RUNNING")
		w.sched.set("2", "COMPLETED")
		notLease := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(notLease, []byte("my notes\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		cases := []struct {
			name string
			req  ipc.LeaseRequest
			code string
			want string
		}{
			{"no job", ipc.LeaseRequest{}, ipc.CodeBadRequest, "not a job id"},
			{"path in job", ipc.LeaseRequest{Job: "../1"}, ipc.CodeBadRequest, "not a job id"},
			{"not a slurm id", ipc.LeaseRequest{Job: "12abc"}, ipc.CodeBadRequest, "not a Slurm job id"},
			{"unknown job", ipc.LeaseRequest{Job: "3"}, ipc.CodeBadRequest, "Slurm knows no job 3"},
			{"ended job", ipc.LeaseRequest{Job: "2"}, ipc.CodeBadRequest, "has ended (COMPLETED)"},
			{"not logged in", ipc.LeaseRequest{Job: "1", Tenant: "tacc"}, ipc.CodeLoginRequired, "not logged in"},
			{"too long", ipc.LeaseRequest{Job: "1", MinValid: int64(leaseTTL / time.Second)}, ipc.CodeUnsatisfiable, "tokens live 10m"},
			{"user's file", ipc.LeaseRequest{Job: "1", Path: notLease}, ipc.CodeBadRequest, "not a lease file"},
			{"relative path", ipc.LeaseRequest{Job: "1", Path: "x.token"}, ipc.CodeBadRequest, "absolute"},
			{"past", ipc.LeaseRequest{Job: "1", Until: &past}, ipc.CodeBadRequest, "in the past"},
		}
		for _, tc := range cases {
			_, err := w.a.Lease(context.Background(), &tc.req)
			var ie *ipc.Error
			if !errors.As(err, &ie) || ie.Code != tc.code || !strings.Contains(ie.Message, tc.want) || ie.Hint == "" {
				t.Errorf("%s: Lease(%+v) = %v; want %s saying %q, with a hint", tc.name, tc.req, err, tc.code, tc.want)
			}
		}
		if data, _ := os.ReadFile(notLease); string(data) != "my notes\n" {
			t.Errorf("a refused lease changed the user's file: %q", data)
		}
		w.sched.fail(errors.New("squeue: Unable to contact slurm controller"))
		if _, err := w.a.Lease(context.Background(), &ipc.LeaseRequest{Job: "1"}); err == nil || !strings.Contains(err.Error(), "cannot ask Slurm") {
			t.Errorf("Lease while Slurm is down = %v; want it refused", err)
		}
		if ents, _ := os.ReadDir(w.dir); len(ents) != 0 {
			t.Errorf("refused leases left %d entries in the lease directory", len(ents))
		}
	})
}

// TestLeaseSurvivesReload: a reload keeps the leases, and a tenant's new
// login resumes the lease its logout interrupted.
func TestLeaseSurvivesReload(t *testing.T) {
	fake := newLeaseFake(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, leaseDir(t))
		w.sched.set("1", "RUNNING")
		st := w.lease(t, &ipc.LeaseRequest{Job: "1"})
		w.a.ApplyConfig(w.a.Config())
		time.Sleep(leaseTTL)
		synctest.Wait()
		status, _ := w.a.Status(context.Background())
		if len(status.Leases) != 1 || status.Leases[0].LastError != "" {
			t.Fatalf("leases after a reload: %+v", status.Leases)
		}
		if tok := readLease(t, st.Path); tok == nil || time.Until(tok.ExpiresAt) < time.Duration(st.MinValid)*time.Second {
			t.Fatalf("after a reload and a lifetime the lease file holds %+v", tok)
		}
	})
}

// TestLeaseRestart: an agent that stops leaves the files; the next one
// warns of them and removes those that expired.
func TestLeaseRestart(t *testing.T) {
	fake := newLeaseFake(t)
	dir := leaseDir(t)
	synctest.Test(t, func(t *testing.T) {
		w := newLeaseWorld(t, fake, dir)
		w.sched.set("1", "RUNNING")
		w.sched.set("2", "RUNNING")
		w.lease(t, &ipc.LeaseRequest{Job: "1"})
		w.lease(t, &ipc.LeaseRequest{Job: "2"})
		w.a.Close()
		if !strings.Contains(w.log.String(), "lease_abandoned") {
			t.Errorf("an agent stopping with leases logs no warning:\n%s", w.log)
		}
		// Job 2's file has expired by the next start.
		p2 := filepath.Join(dir, "2", "dev.token")
		tok := readLease(t, p2)
		tok.ExpiresAt = time.Now().Add(-time.Minute)
		data, _ := lease.Append(nil, "2", tok)
		if err := os.WriteFile(p2, data, 0o600); err != nil {
			t.Fatal(err)
		}
		next := newLeaseWorld(t, fake, dir)
		if !strings.Contains(next.log.String(), "leases_forgotten") {
			t.Errorf("a new agent logs nothing of the lease files of the last:\n%s", next.log)
		}
		st, _ := next.a.Status(context.Background())
		if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "jobs 1 ") || strings.Contains(st.Warnings[0], "2") {
			t.Errorf("status warnings = %q; want one naming job 1 only", st.Warnings)
		}
		if _, err := os.Stat(filepath.Dir(p2)); !os.IsNotExist(err) {
			t.Errorf("the expired lease file of job 2 is still there: %v", err)
		}
		next.sched.set("1", "RUNNING")
		next.lease(t, &ipc.LeaseRequest{Job: "1"})
		if st, _ := next.a.Status(context.Background()); len(st.Warnings) != 0 {
			t.Errorf("status warnings after job 1 is leased again = %q", st.Warnings)
		}
	})
}
