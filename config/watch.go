package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxSymlinks bounds the symlink chain Watch follows, as the kernel does.
const maxSymlinks = 40

// Watch calls onChange each time the configuration file at path may have
// changed, until ctx is done; then it returns nil. Events are debounced:
// onChange runs once, debounce after the last of a burst of events (an
// editor's save, a `git checkout`). onChange runs on Watch's goroutine, one
// call at a time; it should re-read the file with Load and must not assume
// the file still exists.
//
// Watch watches directories, not the file: editors save by writing a
// temporary file and renaming it over the old one, which a watch on the old
// file would miss. When path is a symlink, the directories of every link in
// the chain and of the final target are watched too, and the chain is
// resolved again after each event, so both rewriting the target and
// re-pointing the link are seen (as is the swap of a Kubernetes ConfigMap's
// ..data link). When a directory does not exist yet, its nearest existing
// ancestor is watched until it appears. Events about other files are
// ignored.
//
// Watch returns an error only when it cannot start watching. Lost events
// (an inotify queue overflow) count as a change.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func()) error {
	return watch(ctx, path, debounce, onChange, nil)
}

// watch is Watch with a hook called once the first watches are in place,
// so tests know when changes will be seen.
func watch(ctx context.Context, path string, debounce time.Duration, onChange, armed func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	defer w.Close()
	s := &watchSet{w: w, path: abs}
	if err := s.arm(); err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	if armed != nil {
		armed()
	}
	return debounceLoop(ctx, w.Events, w.Errors, debounce, onChange, func(ev fsnotify.Event) bool {
		if !s.relevant(ev) {
			return false
		}
		// Best effort: a directory that vanished again is re-armed at
		// the next event of its parent.
		_ = s.arm()
		return true
	}, func(error) {
		// Only overflows and read errors arrive here: events may have
		// been lost, so look at everything again.
		_ = s.arm()
	})
}

// debounceLoop calls onChange debounce after the last event for which
// relevant reports true, and after errors, until ctx is done.
func debounceLoop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, debounce time.Duration,
	onChange func(), relevant func(fsnotify.Event) bool, onError func(error)) error {
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errors.New("config: file watcher closed")
			}
			if relevant(ev) {
				timer.Reset(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				return errors.New("config: file watcher closed")
			}
			onError(err)
			timer.Reset(debounce)
		case <-timer.C:
			onChange()
		}
	}
}

// watchSet is the set of directories watched for one configuration path.
// It is used by one goroutine only.
type watchSet struct {
	w    *fsnotify.Watcher
	path string                     // absolute, as given (not resolved)
	dirs map[string]map[string]bool // watched directory → names in it that matter
	real string                     // path with all symlinks resolved at the last arm; "" if it did not resolve
}

// arm computes the directories that matter now and brings the watcher's
// list in line with them.
func (s *watchSet) arm() error {
	dirs := map[string]map[string]bool{}
	add := func(p string) {
		dir, name := nearestDir(p)
		// inotify watches the directory a path led to when it was added:
		// watch it under its real name, so that a symlink re-pointed on
		// the way is a new directory to watch.
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		if dirs[dir] == nil {
			dirs[dir] = map[string]bool{}
		}
		dirs[dir][name] = true
	}
	// Follow the chain of symlinks by hand: each link's directory matters,
	// since re-pointing a link replaces it there.
	cur := s.path
	for range maxSymlinks {
		add(cur)
		fi, err := os.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(cur)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = target
	}
	// A symlinked directory on the path (~/.config -> /data/dotfiles) is
	// replaced in its own parent, which no other watch sees.
	eachLink(s.path, add)
	// Symlinked directories along the path lead elsewhere still.
	s.real = ""
	if real, err := filepath.EvalSymlinks(s.path); err == nil {
		s.real = real
		add(real)
	}

	var firstErr error
	watched := map[string]bool{}
	for _, d := range s.w.WatchList() {
		watched[d] = true
	}
	for d := range dirs {
		if !watched[d] {
			if err := s.w.Add(d); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	for d := range watched {
		if dirs[d] == nil {
			_ = s.w.Remove(d) // it may be gone already
		}
	}
	s.dirs = dirs
	return firstErr
}

// eachLink calls add with every symlink met while resolving p, component
// by component, the way the kernel does: in p itself and, from each link
// on, in its target. It stops after maxSymlinks links, or where the path
// does not resolve.
func eachLink(p string, add func(string)) {
	for hops := 0; hops < maxSymlinks; hops++ {
		cur, rest, link := "/", strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/"), ""
		for i, part := range rest {
			if part == "" {
				continue
			}
			next := filepath.Join(cur, part)
			fi, err := os.Lstat(next)
			if err != nil {
				return
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				link, rest = next, rest[i+1:]
				break
			}
			cur = next
		}
		if link == "" {
			return
		}
		add(link)
		target, err := os.Readlink(link)
		if err != nil {
			return
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		p = filepath.Join(append([]string{target}, rest...)...)
	}
}

// relevant reports whether ev may concern the configuration file.
func (s *watchSet) relevant(ev fsnotify.Event) bool {
	if s.dirs[filepath.Dir(ev.Name)][filepath.Base(ev.Name)] {
		return true
	}
	if s.dirs[ev.Name] != nil {
		return true // a watched directory itself was removed or moved
	}
	// A directory symlink along the path may have been re-pointed.
	real, err := filepath.EvalSymlinks(s.path)
	if err != nil {
		real = ""
	}
	return real != s.real
}

// nearestDir returns the directory to watch for p: its parent if that
// exists, else the nearest existing ancestor, together with the name in it
// that leads to p.
func nearestDir(p string) (dir, name string) {
	dir, name = filepath.Dir(p), filepath.Base(p)
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, name
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir, name
		}
		dir, name = parent, filepath.Base(dir)
	}
}
