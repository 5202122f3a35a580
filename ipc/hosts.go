package ipc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/tapis-agent/tapis-agent/internal/safefile"
)

// The agent's socket is local to the machine it runs on, while the home
// directory of a cluster is shared by all its login nodes. So an agent
// records on which host it runs, in a file named after the host under the
// shared state directory, and tapis-token on another node that finds no
// agent says where the user's agent is. A record holds the host name, the
// socket path and the pid: no secret.

// StateDir is the agent's state directory: $XDG_STATE_HOME/tapis-agent,
// else ~/.local/state/tapis-agent. On a cluster it is on the shared home.
func StateDir() string {
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" || !filepath.IsAbs(state) { // the XDG spec ignores relative paths
		home, err := os.UserHomeDir()
		if err != nil {
			home = "/"
		}
		state = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(state, "tapis-agent")
}

// HostsDir is the directory of the agents' host records.
func HostsDir() string { return filepath.Join(StateDir(), "agents") }

// HostRecord says where an agent runs.
type HostRecord struct {
	Host   string
	Socket string
	PID    int
}

// WriteHostRecord writes r into dir as the file named r.Host, atomically
// and private to the user (a directory 0700, a file 0600), replacing the
// record of an earlier agent on that host.
func WriteHostRecord(dir string, r HostRecord) error {
	if !validHost(r.Host) {
		return wrap("recording the agent's host: unusable host name " + strconv.Quote(r.Host))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return wrap("recording the agent's host: "+err.Error(), err)
	}
	body := "host=" + r.Host + "\nsocket=" + r.Socket + "\npid=" + strconv.Itoa(r.PID) + "\n"
	tmp := filepath.Join(dir, "."+r.Host+".tmp-"+strconv.Itoa(os.Getpid()))
	err := os.WriteFile(tmp, []byte(body), 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, r.Host))
	}
	if err != nil {
		os.Remove(tmp)
		return wrap("recording the agent's host: "+err.Error(), err)
	}
	return nil
}

// RemoveHostRecord removes the record of r.Host in dir if it is still r's
// (another agent on the host may have replaced it since). It reports
// whether it removed it.
func RemoveHostRecord(dir string, r HostRecord) bool {
	path := filepath.Join(dir, r.Host)
	got, err := ReadHostRecord(path)
	if err != nil || *got != r {
		return false
	}
	return os.Remove(path) == nil
}

// maxHostRecord bounds what ReadHostRecord reads: a record is a few
// lines.
const maxHostRecord = 4096

// ReadHostRecord reads the record at path. Anything but a regular file
// there is an error: the agent reads its record as it stops, and a named
// pipe must not hold up its exit.
func ReadHostRecord(path string) (*HostRecord, error) {
	b, err := safefile.Read(path, safefile.Options{Max: maxHostRecord})
	if err != nil {
		return nil, err
	}
	var r HostRecord
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		switch k {
		case "host":
			r.Host = v
		case "socket":
			r.Socket = v
		case "pid":
			r.PID, _ = strconv.Atoi(v)
		}
	}
	return &r, nil
}

// OtherAgentHosts returns the hosts other than self that hold an agent's
// record in dir, in name order. A record may outlive an agent that was
// killed; it is gone when an agent stops cleanly.
func OtherAgentHosts(dir, self string) []string {
	names := dirNames(dir)
	// An insertion sort of the few names, not package slices: its sort
	// would add to tapis-token's size for this one call.
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	var hosts []string
	for _, n := range names {
		var st syscall.Stat_t
		if validHost(n) && n != self && syscall.Lstat(filepath.Join(dir, n), &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			hosts = append(hosts, n)
		}
	}
	return hosts
}

// validHost reports whether name can be a record's file name: a host
// name, not hidden, no path.
func validHost(name string) bool {
	return name != "" && name[0] != '.' && !strings.ContainsAny(name, "/\x00\n")
}

// dirNames returns the names in dir, read with syscall.ReadDirent: package
// os reads a directory through code that builds an os.FileInfo, which
// brings time's formatting into tapis-token, which calls this.
func dirNames(dir string) []string {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err != nil || n <= 0 {
			return names
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}
