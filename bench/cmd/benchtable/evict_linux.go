package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// evict drops the file at path from the page cache, once its pages are on
// disk.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	return nil
}
