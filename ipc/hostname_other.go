//go:build !linux

package ipc

import "os"

// Hostname returns the machine's host name.
func Hostname() (string, error) { return os.Hostname() }
