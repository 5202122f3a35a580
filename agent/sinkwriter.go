package agent

import (
	"sync"
	"time"
)

// sinkWait bounds how long a login, a refresh, a logout or a reload waits
// for a token file to be written or removed. A write that takes longer (a
// named pipe, a stalled network file system) goes on in the background
// and shows as a warning in the tenant's status; nothing else waits on it.
const sinkWait = 2 * time.Second

// sinkWriter runs the writes and removals of one token file in a goroutine
// of its own, one at a time and in order, so that a file that blocks holds
// up only the tenants writing it: never the agent's lock, another tenant's
// token, status, a login or the shutdown. It is safe for concurrent use.
type sinkWriter struct {
	mu      sync.Mutex // guards the fields below
	jobs    []*sinkJob
	running bool
	since   time.Time // when the running job began; zero while idle
}

// sinkJob is one write or removal. A job queued with the key of the last
// one waiting is that job: a session's writes always write its current
// token, so two in a row are one.
type sinkJob struct {
	key  sinkKey
	run  func()
	done chan struct{}
}

// sinkKey names what a job does, and for which session.
type sinkKey struct {
	s      *session
	remove bool
}

// do queues run under key and waits up to sinkWait for it to finish,
// reporting whether it did. It does not wait when the writer has been
// stuck on an earlier job for longer than that.
func (w *sinkWriter) do(key sinkKey, run func()) bool {
	done, stuck := w.queue(key, run)
	if stuck {
		return false
	}
	t := time.NewTimer(sinkWait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (w *sinkWriter) queue(key sinkKey, run func()) (done <-chan struct{}, stuck bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stuck = w.running && !w.since.IsZero() && time.Since(w.since) > sinkWait
	if n := len(w.jobs); n > 0 && w.jobs[n-1].key == key {
		return w.jobs[n-1].done, stuck
	}
	j := &sinkJob{key: key, run: run, done: make(chan struct{})}
	w.jobs = append(w.jobs, j)
	if !w.running {
		w.running = true
		go w.drain()
	}
	return j.done, stuck
}

// drain runs the queued jobs until there are none.
func (w *sinkWriter) drain() {
	for {
		w.mu.Lock()
		if len(w.jobs) == 0 {
			w.running, w.since = false, time.Time{}
			w.mu.Unlock()
			return
		}
		j := w.jobs[0]
		w.jobs = w.jobs[1:]
		w.since = time.Now()
		w.mu.Unlock()
		j.run()
		close(j.done)
	}
}

// busy returns how long the running job has run; 0 while idle.
func (w *sinkWriter) busy() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.since.IsZero() {
		return 0
	}
	return time.Since(w.since)
}

// sinkWriter returns the writer of the token file at path, making it on
// first use.
func (a *Agent) sinkWriter(path string) *sinkWriter {
	a.sinksMu.Lock()
	defer a.sinksMu.Unlock()
	w := a.sinks[path]
	if w == nil {
		w = &sinkWriter{}
		a.sinks[path] = w
	}
	return w
}
