package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// The Watch tests use real fsnotify on t.TempDir(): real I/O, so they wait
// for events with a bounded timeout rather than a fake clock. The debounce
// logic itself is tested with synctest in TestDebounceLoop.

const (
	testDebounce = 50 * time.Millisecond
	eventTimeout = 2 * time.Second
	quietWindow  = 300 * time.Millisecond
)

// startWatch runs Watch on path until the test ends and returns the channel
// its onChange calls are sent on. It returns once the watches are in place.
func startWatch(t *testing.T, path string, debounce time.Duration) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 100)
	armed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- watch(ctx, path, debounce, func() { calls <- struct{}{} }, func() { close(armed) })
	}()
	select {
	case <-armed:
	case err := <-done:
		cancel()
		t.Fatalf("Watch(%s) = %v before arming", path, err)
	case <-time.After(eventTimeout):
		cancel()
		t.Fatalf("Watch(%s) did not arm within %v", path, eventTimeout)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel; want nil", err)
			}
		case <-time.After(eventTimeout):
			t.Errorf("Watch did not return within %v of cancel", eventTimeout)
		}
	})
	return calls
}

func wantCall(t *testing.T, calls <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(eventTimeout):
		t.Fatalf("no onChange within %v after %s", eventTimeout, after)
	}
}

func wantNoCall(t *testing.T, calls <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-calls:
		t.Fatalf("onChange called after %s; want no call", after)
	case <-time.After(quietWindow):
	}
}

// settle drains calls until none has come for quietWindow, so that a later
// wantCall is not satisfied by an earlier event.
func settle(calls <-chan struct{}) {
	for {
		select {
		case <-calls:
		case <-time.After(quietWindow):
			return
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func replace(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	write(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".new"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil { // as ln -sfn does
		t.Fatal(err)
	}
}

func TestWatchWriteInPlace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.toml")
	write(t, p, "a")
	calls := startWatch(t, p, testDebounce)
	write(t, p, "b")
	wantCall(t, calls, "writing the file in place")
}

func TestWatchAtomicRename(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.toml")
	write(t, p, "a")
	calls := startWatch(t, p, testDebounce)
	replace(t, p, "b")
	wantCall(t, calls, "renaming a new file over it")
	settle(calls)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	wantCall(t, calls, "removing it")
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	write(t, p, "a")
	calls := startWatch(t, p, testDebounce)
	write(t, p, "b")
	wantCall(t, calls, "writing the file") // the watcher is live
	settle(calls)
	write(t, filepath.Join(dir, "other.toml"), "x")
	replace(t, filepath.Join(dir, "config.toml.bak"), "y")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	wantNoCall(t, calls, "changing other files in the directory")
}

func TestWatchSymlinkTargetRewritten(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "dotfiles", "tapis.toml")
	link := filepath.Join(root, "config", "config.toml")
	for _, d := range []string{filepath.Dir(real), filepath.Dir(link)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write(t, real, "a")
	if err := os.Symlink("../dotfiles/tapis.toml", link); err != nil {
		t.Fatal(err)
	}
	calls := startWatch(t, link, testDebounce)

	write(t, real, "b")
	wantCall(t, calls, "rewriting the symlink's target in place")
	settle(calls)
	replace(t, real, "c")
	wantCall(t, calls, "replacing the symlink's target by rename")
	settle(calls)
	write(t, filepath.Join(root, "dotfiles", "unrelated"), "x")
	wantNoCall(t, calls, "writing another file beside the target")
}

func TestWatchSymlinkRepointed(t *testing.T) {
	root := t.TempDir()
	old := filepath.Join(root, "old.toml")
	newDir := filepath.Join(root, "new")
	if err := os.Mkdir(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(newDir, "next.toml")
	link := filepath.Join(root, "config.toml")
	write(t, old, "a")
	write(t, next, "b")
	if err := os.Symlink(old, link); err != nil {
		t.Fatal(err)
	}
	calls := startWatch(t, link, testDebounce)

	symlink(t, next, link)
	wantCall(t, calls, "re-pointing the symlink")
	settle(calls)
	write(t, next, "c")
	wantCall(t, calls, "rewriting the new target")
	settle(calls)
	write(t, old, "d")
	wantNoCall(t, calls, "rewriting the old target")
}

// TestWatchSymlinkedDirectoryRepointed is the Kubernetes ConfigMap layout:
// config.toml -> ..data/config.toml, and ..data -> a versioned directory
// that an update swaps.
func TestWatchSymlinkedDirectoryRepointed(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(root, v), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, v, "config.toml"), v)
	}
	if err := os.Symlink("v1", filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "config.toml")
	if err := os.Symlink("..data/config.toml", link); err != nil {
		t.Fatal(err)
	}
	calls := startWatch(t, link, testDebounce)

	symlink(t, "v2", filepath.Join(root, "..data"))
	wantCall(t, calls, "swapping the ..data symlink")
	settle(calls)
	write(t, filepath.Join(root, "v2", "config.toml"), "v2b")
	wantCall(t, calls, "rewriting the file in the new directory")
}

// TestWatchSymlinkedParentReplaced: the config's directory is a symlink
// (~/.config/tapis-agent -> a dotfiles checkout) that is re-pointed in its
// own parent, which holds nothing else of the config's path.
func TestWatchSymlinkedParentReplaced(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(root, "dotfiles-"+v), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, "dotfiles-"+v, "config.toml"), v)
	}
	if err := os.Mkdir(filepath.Join(root, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "home", "tapis-agent")
	if err := os.Symlink(filepath.Join(root, "dotfiles-a"), dir); err != nil {
		t.Fatal(err)
	}
	calls := startWatch(t, filepath.Join(dir, "config.toml"), testDebounce)

	symlink(t, filepath.Join(root, "dotfiles-b"), dir)
	wantCall(t, calls, "re-pointing the config's directory")
	settle(calls)
	write(t, filepath.Join(root, "dotfiles-b", "config.toml"), "b2")
	wantCall(t, calls, "rewriting the file in the new directory")
	settle(calls)
	write(t, filepath.Join(root, "dotfiles-a", "config.toml"), "a2")
	wantNoCall(t, calls, "rewriting the file in the old directory")
}

func TestWatchDirectoryCreatedLater(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "xdg", "tapis-agent")
	p := filepath.Join(dir, "config.toml")
	calls := startWatch(t, p, testDebounce)

	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, p, "a")
	wantCall(t, calls, "creating the directories and the file")
	settle(calls)
	write(t, p, "b")
	wantCall(t, calls, "writing the file in the new directory")
	settle(calls)
	write(t, filepath.Join(dir, "other"), "x")
	wantNoCall(t, calls, "writing another file in the new directory")
}

func TestWatchDirectoryRemovedAndRecreated(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "tapis-agent")
	p := filepath.Join(dir, "config.toml")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, p, "a")
	calls := startWatch(t, p, testDebounce)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wantCall(t, calls, "removing the directory")
	settle(calls)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	wantCall(t, calls, "recreating the directory")
	settle(calls)
	write(t, p, "b")
	wantCall(t, calls, "writing the file in the recreated directory")
}

func TestWatchDebounceCoalescesBurst(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.toml")
	write(t, p, "a")
	const debounce = 250 * time.Millisecond
	calls := startWatch(t, p, debounce)
	for i := range 20 {
		if i%2 == 0 {
			write(t, p, "burst")
		} else {
			replace(t, p, "burst")
		}
	}
	wantCall(t, calls, "a burst of 20 writes")
	select {
	case <-calls:
		t.Fatal("a burst of writes gave two onChange calls; want one")
	case <-time.After(2 * debounce):
	}
}

// TestDebounceLoop checks the debounce timing on a fake clock.
func TestDebounceLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const debounce = 100 * time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		events := make(chan fsnotify.Event)
		errs := make(chan error)
		var called []time.Duration
		start := time.Now()
		done := make(chan error)
		go func() {
			done <- debounceLoop(ctx, events, errs, debounce,
				func() { called = append(called, time.Since(start)) },
				func(ev fsnotify.Event) bool { return ev.Name == "config.toml" },
				func(error) {})
		}()

		// A burst, 30ms apart: one call, debounce after the last event.
		for range 5 {
			events <- fsnotify.Event{Name: "config.toml", Op: fsnotify.Write}
			time.Sleep(30 * time.Millisecond)
		}
		time.Sleep(time.Second)
		// Irrelevant events: no call.
		events <- fsnotify.Event{Name: "other", Op: fsnotify.Write}
		time.Sleep(time.Second)
		// An error (lost events) counts as a change.
		errs <- fsnotify.ErrEventOverflow
		time.Sleep(time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("debounceLoop returned %v after cancel; want nil", err)
		}

		want := []time.Duration{4*30*time.Millisecond + debounce, 2*time.Second + 150*time.Millisecond + debounce}
		if len(called) != len(want) {
			t.Fatalf("onChange called at %v; want %v", called, want)
		}
		for i := range want {
			if called[i] != want[i] {
				t.Errorf("call %d at %v; want %v", i, called[i], want[i])
			}
		}
	})
}
