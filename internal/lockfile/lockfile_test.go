package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// held reports whether another open file of path finds it locked.
func held(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

func TestLockCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v; want 0600", fi.Mode().Perm())
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if !held(t, path) {
		t.Fatal("path not locked while Lock holds it")
	}

	got := make(chan func(), 1)
	go func() {
		u, err := Lock(path)
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case u := <-got:
		u()
		t.Fatal("a second Lock of a held path returned at once")
	default:
	}
	unlock()
	// The second Lock gets it once the first lets go, and holds it.
	unlock2 := <-got
	if !held(t, path) {
		t.Error("path not locked by the second Lock")
	}
	unlock2()
	if held(t, path) {
		t.Error("path still locked after both unlocked")
	}
}

func TestLockExistingFileKeepsContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if err := os.WriteFile(path, []byte("123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if b, _ := os.ReadFile(path); string(b) != "123\n" {
		t.Errorf("lock file holds %q after Lock; want its content kept", b)
	}
}

func TestLockMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "x.lock")
	unlock, err := Lock(path)
	if err == nil {
		unlock()
		t.Fatalf("Lock(%s) = nil error; want one", path)
	}
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Lock(%s) = %v; want an error wrapping ErrNotExist naming the path", path, err)
	}
}
