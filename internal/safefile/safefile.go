// Package safefile reads the files the agent is pointed at — its config,
// token files, key and CA files — without letting one of them hurt it. A
// named pipe or a terminal would block the open or the read for ever, a
// device or a sparse giant would fill memory, a hung network file system
// would hold the caller in a system call: every read here opens without
// blocking, refuses anything but a regular file, caps the size and, with
// ReadTimeout, bounds the time.
package safefile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotRegular is wrapped by the error for a path that names something
// other than a regular file (a named pipe, a device, a directory, and, with
// NoFollow, a symlink).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by the error for a file larger than the cap, a
// [*SizeError].
var ErrTooLarge = errors.New("file too large")

// ErrTimeout is wrapped by the error of a read that did not end in time.
var ErrTimeout = errors.New("read timed out")

// Options say how to read a file.
type Options struct {
	// Max is the largest size accepted, in bytes; it must be positive.
	Max int64
	// NoFollow refuses a symlink in the last component of the path.
	NoFollow bool
}

// Open opens name for reading without blocking on a named pipe or a
// terminal, and returns it only if it is a regular file (a symlink to one
// unless o.NoFollow). The errors name the file and say what it is instead.
func Open(name string, o Options) (*os.File, fs.FileInfo, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	if o.NoFollow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(name, flags, 0)
	if err != nil {
		if o.NoFollow && errors.Is(err, syscall.ELOOP) {
			return nil, nil, &fileError{name + " is a symlink, which is not followed here", ErrNotRegular}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fileError{name + " is " + Kind(fi.Mode()) + ", not a regular file", ErrNotRegular}
	}
	return f, fi, nil
}

// Read returns the content of the regular file name, refusing more than
// o.Max bytes. A missing file is an error wrapping fs.ErrNotExist.
func Read(name string, o Options) ([]byte, error) {
	f, fi, err := Open(name, o)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > o.Max {
		return nil, tooLarge(name, fi.Size(), o.Max)
	}
	// The size may grow between the stat and the read.
	data, err := io.ReadAll(io.LimitReader(f, o.Max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > o.Max {
		clear(data)
		size := int64(len(data))
		if fi, err := f.Stat(); err == nil && fi.Size() > size {
			size = fi.Size()
		}
		return nil, tooLarge(name, size, o.Max)
	}
	return data, nil
}

// ReadTimeout is Read bounded by timeout. A read that does not end in
// time (a hung network file system) is left to finish in the background;
// its result is dropped and the error wraps ErrTimeout.
func ReadTimeout(name string, o Options, timeout time.Duration) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		data, err := Read(name, o)
		ch <- result{data, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.data, r.err
	case <-t.C:
		return nil, &fileError{"reading " + name + " did not finish within " + timeout.String() + " (a hung network file system?)", ErrTimeout}
	}
}

// Kind names the type of a file mode for messages: "a named pipe", "a
// directory", "a symlink", ….
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

func tooLarge(name string, size, limit int64) error {
	return &SizeError{Name: name, Size: size, Max: limit}
}

// SizeError is the error for a file larger than the cap. It wraps
// ErrTooLarge.
type SizeError struct {
	Name string
	Size int64 // the file's size, as far as it was seen
	Max  int64 // the cap
}

func (e *SizeError) Error() string {
	return e.Name + " is " + SizeAbove(e.Size, e.Max) + ", more than the " + Size(e.Max) + " allowed"
}

func (e *SizeError) Unwrap() error { return ErrTooLarge }

// fileError is an error with its own message that wraps one of the
// package's sentinel errors.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// SizeAbove shows n, a size above limit, as Size does, unless rounding
// would make it read as no more than limit ("1.0 MiB" for 1 MiB and a
// few bytes): then in bytes.
func SizeAbove(n, limit int64) string {
	s := Size(n)
	if v, unit, ok := strings.Cut(s, " "); ok && unit != "bytes" {
		shown, err := strconv.ParseFloat(v, 64)
		div := int64(1) << (10 * (1 + strings.IndexByte("KMGTPE", unit[0])))
		if err == nil && shown*float64(div) <= float64(limit) {
			return strconv.FormatInt(n, 10) + " bytes"
		}
	}
	return s
}

// Size shows a byte count for messages: "512 bytes", "64 KiB", "2.0 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if n%div == 0 {
		s = strconv.FormatInt(n/div, 10)
	}
	return s + " " + string("KMGTPE"[exp]) + "iB"
}
