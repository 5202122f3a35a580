package lease

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/human"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// DefaultMinValid is what a reader of a lease file that names no minimum
// validity asks for, as a token request to the agent does (or the
// lease's own minimum, when that is less).
const DefaultMinValid = 60 * time.Second

// Error is a lease file that a job cannot use: missing, not the user's,
// not a lease file, or holding a token that lapsed or lives less than
// asked. Message says which file and what is wrong, Hint what to do on
// the login node.
type Error struct {
	Message string
	Hint    string
}

func (e *Error) Error() string { return e.Message }

// Path returns the lease file this process names, or "" for none:
// $TAPIS_TOKEN_FILE, else in a Slurm job ($SLURM_JOB_ID) the file of
// tenant in the job's directory under Dir; with tenant "", the only lease
// file there.
func Path(tenant string) (string, error) {
	if p := os.Getenv(FileEnv); p != "" {
		return p, nil
	}
	job := os.Getenv("SLURM_JOB_ID")
	if job == "" || !ValidJob(job) {
		return "", nil
	}
	dir := filepath.Join(Dir(), job)
	if tenant != "" {
		return filepath.Join(dir, tenant+".token"), nil
	}
	names, err := readDirNames(dir)
	var found []string
	for _, n := range names {
		if strings.HasSuffix(n, ".token") && n[0] != '.' {
			found = append(found, strings.TrimSuffix(n, ".token"))
		}
	}
	switch {
	case err != nil || len(found) == 0:
		return filepath.Join(dir, "TENANT.token"), &Error{
			Message: "job " + job + " has no lease file in " + dir,
			Hint:    "on the login node, before the job starts: tapis-token lease TENANT --job " + job + " (or submit with tapis-token sbatch)"}
	case len(found) > 1:
		return "", &Error{
			Message: "job " + job + " has lease files for several tenants (" + strings.Join(found, ", ") + ") in " + dir,
			Hint:    "name the tenant: tapis-token " + found[0]}
	}
	return filepath.Join(dir, found[0]+".token"), nil
}

// readDirNames lists dir with system calls: os's directory reading
// brings os.FileInfo, and with it time's formatting, into tapis-token.
func readDirNames(dir string) ([]string, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}

// Read returns the token of the lease file at path for tenant ("" for
// whichever the file holds), valid for at least minValid at now
// (ipc.NoMinValid: DefaultMinValid, or the lease's minimum when less).
// The file must be the user's and closed to others.
func Read(path, tenant string, minValid time.Duration, now time.Time) (*ipc.TokenResponse, error) {
	data, err := readOwn(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, &Error{Message: "lease file " + path + ": " + err.Error(),
			Hint: FileEnv + " must name a file that tapis-token lease keeps"}
	}
	if tenant != "" && t.Tenant != tenant {
		return nil, &Error{Message: "lease file " + path + " holds a token of " + t.Tenant + ", not of " + tenant,
			Hint: "ask for " + t.Tenant + ", or lease a token of " + tenant + " for the job too"}
	}
	if minValid < 0 {
		minValid = DefaultMinValid
		if t.MinValid > 0 && t.MinValid < minValid {
			minValid = t.MinValid
		}
	}
	left := t.ExpiresAt.Sub(now)
	switch {
	case left <= 0:
		return nil, &Error{Message: "the token in lease file " + path + " expired " + human.DurationDown(-left) + " ago: the agent that keeps it stopped refreshing it",
			Hint: "on the login node: tapis-token status shows the lease; lease the job again with tapis-token lease " + t.Tenant + " --job JOBID"}
	case left < minValid:
		return nil, &Error{Message: "the token in lease file " + path + " is valid for " + human.DurationDown(left) + ", less than the " + human.Duration(minValid) + " asked",
			Hint: "ask for less, or lease with a longer --min-valid on the login node; tapis-token status there shows the lease"}
	}
	r := t.TokenResponse
	r.ExpiresIn = int64(left / time.Second)
	return &r, nil
}

// readOwn reads the file at path, refusing one that is not a regular
// file of the user's or that others may read or write.
func readOwn(path string) ([]byte, error) {
	// Without blocking: a named pipe would hold the open until someone
	// writes it, before the check below could refuse it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		var hint string
		if errors.Is(err, os.ErrNotExist) {
			hint = "on the login node: tapis-token lease --job JOBID keeps it; is the job's lease over?"
		} else {
			hint = "check " + FileEnv
		}
		return nil, &Error{Message: "reading lease file: " + err.Error(), Hint: hint}
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &Error{Message: "reading lease file " + path + ": " + err.Error(), Hint: "check " + FileEnv}
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, &Error{Message: "lease file " + path + " is not a regular file", Hint: FileEnv + " must name a file that tapis-token lease keeps"}
	case int(st.Uid) != os.Getuid():
		return nil, &Error{Message: "lease file " + path + " is owned by uid " + strconv.FormatUint(uint64(st.Uid), 10) + ", not by you",
			Hint: "a token file of another user is not yours to use; lease your own: tapis-token lease --job JOBID"}
	case st.Mode&0o077 != 0:
		return nil, &Error{Message: "lease file " + path + " is open to other users (mode 0" + strconv.FormatUint(uint64(st.Mode&0o777), 8) + ")",
			Hint: "remove it and lease again: tapis-token lease --job JOBID writes it with mode 0600"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &Error{Message: "reading lease file " + path + ": " + err.Error(), Hint: "check " + FileEnv}
	}
	return data, nil
}
