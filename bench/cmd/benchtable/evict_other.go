//go:build !linux

package main

import "errors"

// evict drops a file from the page cache on Linux only: elsewhere the
// cold-start rows cannot be measured.
func evict(string) error {
	return errors.New("evicting a file from the page cache needs Linux (posix_fadvise)")
}
