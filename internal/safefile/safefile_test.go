package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	cases := []struct {
		name     string
		path     string
		opts     Options
		want     string
		wantErr  error
		wantText string
	}{
		{"regular", regular, Options{Max: 5}, "hello", nil, ""},
		{"symlink followed", link, Options{Max: 5}, "hello", nil, ""},
		{"symlink refused", link, Options{Max: 5, NoFollow: true}, "", ErrNotRegular, "is a symlink"},
		{"fifo", fifo, Options{Max: 5}, "", ErrNotRegular, "is a named pipe"},
		{"directory", dir, Options{Max: 5}, "", ErrNotRegular, "is a directory"},
		{"device", "/dev/zero", Options{Max: 5}, "", ErrNotRegular, "is a device"},
		{"too large", regular, Options{Max: 4}, "", ErrTooLarge, "is 5 bytes, more than the 4 bytes allowed"},
		{"sparse giant", sparse, Options{Max: 1 << 20}, "", ErrTooLarge, "is 2 GiB, more than the 1 MiB allowed"},
		{"missing", filepath.Join(dir, "missing"), Options{Max: 5}, "", fs.ErrNotExist, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				defer close(done)
				got, err = Read(tc.path, tc.opts)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Read(%s) blocked", tc.path)
			}
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("Read(%s) error = %v; want %v", tc.path, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Read(%s) error = %q; want it to say %q", tc.path, err, tc.wantText)
			}
			if string(got) != tc.want {
				t.Errorf("Read(%s) = %q; want %q", tc.path, got, tc.want)
			}
			var se *SizeError
			if errors.Is(err, ErrTooLarge) && (!errors.As(err, &se) || se.Name != tc.path || se.Max != tc.opts.Max || se.Size <= se.Max) {
				t.Errorf("Read(%s) error = %#v; want a *SizeError with the name, the size and the cap", tc.path, err)
			}
		})
	}
}

func TestReadTimeout(t *testing.T) {
	// A FIFO opened without O_NONBLOCK would block; the timeout is the
	// last line of defence for reads that hang anyway. Simulate one with
	// a FIFO that is opened for writing but never written: the open does
	// not block, the read returns at once with nothing (EOF on a FIFO
	// without writers is not reached since a writer holds it), and the
	// non-regular check refuses it first.
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTimeout(regular, Options{Max: 10}, time.Minute)
	if err != nil || string(got) != "x" {
		t.Fatalf("ReadTimeout = %q, %v; want x", got, err)
	}
}

func TestSize(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"}, {1023, "1023 bytes"}, {1024, "1 KiB"}, {1536, "1.5 KiB"}, {1 << 20, "1 MiB"}, {2 << 30, "2 GiB"},
	}
	for _, tc := range cases {
		if got := Size(tc.n); got != tc.want {
			t.Errorf("Size(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}

func TestSizeAbove(t *testing.T) {
	cases := []struct {
		n, limit int64
		want     string
	}{
		{5, 4, "5 bytes"},
		{3 << 19, 1 << 20, "1.5 MiB"},
		{2 << 30, 1 << 20, "2 GiB"},
		// One decimal would say 1.0 MiB, which is no more than 1 MiB.
		{1088890, 1 << 20, "1088890 bytes"},
		{1<<20 + 1, 1 << 20, "1048577 bytes"},
		{1<<20 + 1, 1 << 19, "1.0 MiB"},
	}
	for _, tc := range cases {
		if got := SizeAbove(tc.n, tc.limit); got != tc.want {
			t.Errorf("SizeAbove(%d, %d) = %q; want %q", tc.n, tc.limit, got, tc.want)
		}
	}
}
