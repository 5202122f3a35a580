package ipc

import "syscall"

// Hostname returns the machine's host name, as os.Hostname does, from
// uname(2): os.Hostname reads a file in /proc first, through code that
// tapis-token, which calls this, has no other use for.
func Hostname() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", wrap("reading the host name: "+err.Error(), err)
	}
	b := make([]byte, 0, len(u.Nodename))
	for _, c := range u.Nodename {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	if len(b) == 0 {
		return "", wrap("reading the host name: uname gives none")
	}
	return string(b), nil
}
