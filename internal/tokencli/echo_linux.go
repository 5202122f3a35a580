package tokencli

import "golang.org/x/sys/unix"

// echoOff turns the echo of terminal fd off, if it can; the caller
// restores the terminal's state.
func echoOff(fd int) {
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		t.Lflag &^= unix.ECHO
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
}
