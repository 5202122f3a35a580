//go:build !linux

package e2e

import (
	"errors"
	"os"
)

// openPTY opens pseudo-terminals on Linux only; elsewhere the tests that
// type at a terminal skip.
func openPTY() (master, tty *os.File, err error) {
	return nil, nil, errNoPTY
}

// echoOn is never reached where openPTY fails.
func echoOn(*os.File) (bool, error) { return false, errNoPTY }

var errNoPTY = errors.New("opening a pseudo-terminal is implemented for Linux only")
