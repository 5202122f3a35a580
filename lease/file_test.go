package lease

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

func sample() *Token {
	t := &Token{MinValid: time.Hour}
	t.Tenant, t.BaseURL, t.Username = "designsafe", "https://designsafe.tapis.io", "jdoe"
	t.AccessToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqZG9lIn0.c2ln"
	t.ExpiresAt = time.Unix(1765000000, 0).UTC()
	return t
}

func TestAppendParseRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Token)
	}{
		{"plain", func(*Token) {}},
		{"odd username", func(t *Token) { t.Username = "j doe's $HOME `x`" }},
		{"empty username", func(t *Token) { t.Username = "" }},
		{"no min valid", func(t *Token) { t.MinValid = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := sample()
			tc.edit(want)
			data, err := Append(nil, "1234", want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse(Append(…)) = %v\n%s", err, data)
			}
			if *got != *want {
				t.Errorf("Parse(Append(%+v)) = %+v", want, got)
			}
		})
	}
}

// TestFileIsShell: a job script may source the file; sh must read every
// value as written.
func TestFileIsShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	tok := sample()
	tok.Username = "j doe's $HOME `x`"
	data, err := Append(nil, "1234", tok)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dev.token")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sh, "-c", `. "$1" && printf '%s\n%s\n%s\n' "$TAPIS_TOKEN" "$TAPIS_USERNAME" "$TAPIS_TOKEN_EXPIRES_AT"`, "sh", f).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := tok.AccessToken + "\n" + tok.Username + "\n1765000000\n"
	if string(out) != want {
		t.Errorf("sourcing the file gives %q; want %q", out, want)
	}
}

func TestAppendRefusesLineBreaks(t *testing.T) {
	tok := sample()
	tok.Username = "jdoe\nTAPIS_TOKEN=evil"
	if _, err := Append(nil, "1", tok); err == nil {
		t.Error("Append with a newline in a value succeeded")
	}
}

func TestParseRefuses(t *testing.T) {
	good := "TAPIS_TENANT=dev\nTAPIS_TOKEN=abc\nTAPIS_TOKEN_EXPIRES_AT=1765000000\n"
	cases := []struct{ name, data string }{
		{"empty", ""},
		{"not a lease file", "#!/bin/bash\necho hello\n"},
		{"unknown name", good + "PATH=/evil\n"},
		{"no expiry", "TAPIS_TENANT=dev\nTAPIS_TOKEN=abc\n"},
		{"bad expiry", "TAPIS_TENANT=dev\nTAPIS_TOKEN=abc\nTAPIS_TOKEN_EXPIRES_AT=soon\n"},
		{"no token", "TAPIS_TENANT=dev\nTAPIS_TOKEN_EXPIRES_AT=1765000000\n"},
		{"no tenant", "TAPIS_TOKEN=abc\nTAPIS_TOKEN_EXPIRES_AT=1765000000\n"},
		{"unquoted space", good + "TAPIS_USERNAME=j doe\n"},
		{"open quote", good + "TAPIS_USERNAME='jdoe\n"},
		{"command substitution", good + "TAPIS_USERNAME=$(rm -rf ~)\n"},
		{"bad min valid", good + "TAPIS_LEASE_MIN_VALID=-5\n"},
		{"too large", good + "#" + strings.Repeat("x", MaxFileBytes) + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := Parse([]byte(tc.data)); err == nil {
				t.Errorf("Parse(%.60q) = %+v; want an error", tc.data, got)
			}
		})
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Errorf("Parse(good) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	data, _ := Append(nil, "1", sample())
	f.Add(data)
	f.Add([]byte("TAPIS_USERNAME='a'\\''b'\nTAPIS_TENANT=x\nTAPIS_TOKEN=y\nTAPIS_TOKEN_EXPIRES_AT=5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		// What parses writes back to the same values.
		out, err := Append(nil, "1", tok)
		if err != nil {
			return // a value with a line break cannot come from a file of lines
		}
		again, err := Parse(out)
		if err != nil || *again != *tok {
			t.Fatalf("Parse(Append(%+v)) = %+v, %v", tok, again, err)
		}
	})
}

func TestValidJob(t *testing.T) {
	cases := []struct {
		job          string
		valid, slurm bool
	}{
		{"1234", true, true},
		{"1234_7", true, true},
		{"1234.pbs01", true, false},
		{"12abc", true, false}, // squeue would read it as job 12
		{"", false, false},
		{"..", false, false},
		{"../x", false, false},
		{"a/b", false, false},
		{"-1", false, false},
		{"1234_", true, false},
		{"1 2", false, false},
		{strings.Repeat("9", 129), false, false},
	}
	for _, tc := range cases {
		if got := ValidJob(tc.job); got != tc.valid {
			t.Errorf("ValidJob(%q) = %v; want %v", tc.job, got, tc.valid)
		}
		if got := ValidJob(tc.job) && ValidSlurmJob(tc.job); got != tc.slurm {
			t.Errorf("ValidSlurmJob(%q) = %v; want %v", tc.job, got, tc.slurm)
		}
	}
}

// leaseErr returns the *Error in err, failing the test when there is none.
func leaseErr(t *testing.T, err error) *Error {
	t.Helper()
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *lease.Error", err, err)
	}
	if le.Hint == "" {
		t.Errorf("error %q has no hint", le.Message)
	}
	return le
}

func writeFile(t *testing.T, path string, tok *Token, mode os.FileMode) {
	t.Helper()
	data, err := Append(nil, "1234", tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	now := time.Unix(1765000000, 0).Add(-2 * time.Hour)
	path := filepath.Join(t.TempDir(), "dev.token")
	tok := sample()
	writeFile(t, path, tok, 0o600)

	got, err := Read(path, "", ipc.NoMinValid, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != tok.AccessToken || got.Tenant != "designsafe" || got.ExpiresIn != 7200 {
		t.Errorf("Read = %+v", got)
	}
	if _, err := Read(path, "designsafe", 90*time.Minute, now); err != nil {
		t.Errorf("Read asking 90m of a token valid 2h: %v", err)
	}

	cases := []struct {
		name, tenant string
		minValid     time.Duration
		at           time.Time
		want         string
	}{
		{"lapsed", "", ipc.NoMinValid, now.Add(3 * time.Hour), "expired 1h ago"},
		{"too short", "", 3 * time.Hour, now, "valid for 2h, less than the 3h asked"},
		{"default minimum", "", ipc.NoMinValid, now.Add(2*time.Hour - 30*time.Second), "less than the 1m asked"},
		{"other tenant", "tacc", ipc.NoMinValid, now, "holds a token of designsafe, not of tacc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(path, tc.tenant, tc.minValid, tc.at)
			if le := leaseErr(t, err); !strings.Contains(le.Message, tc.want) || !strings.Contains(le.Message, path) {
				t.Errorf("Read: %q; want it to name the file and say %q", le.Message, tc.want)
			}
		})
	}

	// A lease's own minimum below a minute is the default's floor.
	short := sample()
	short.MinValid = 10 * time.Second
	sp := filepath.Join(t.TempDir(), "short.token")
	writeFile(t, sp, short, 0o600)
	if _, err := Read(sp, "", ipc.NoMinValid, short.ExpiresAt.Add(-15*time.Second)); err != nil {
		t.Errorf("Read with 15s left of a lease keeping 10s: %v", err)
	}

	open := filepath.Join(t.TempDir(), "open.token")
	writeFile(t, open, tok, 0o644)
	if le := leaseErr(t, func() error { _, err := Read(open, "", ipc.NoMinValid, now); return err }()); !strings.Contains(le.Message, "0644") {
		t.Errorf("Read of a 0644 file: %q; want it refused naming the mode", le.Message)
	}
	if le := leaseErr(t, func() error { _, err := Read(filepath.Dir(open), "", ipc.NoMinValid, now); return err }()); !strings.Contains(le.Message, "not a regular file") {
		t.Errorf("Read of a directory: %q", le.Message)
	}
	fifo := filepath.Join(t.TempDir(), "fifo.token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Read(fifo, "", ipc.NoMinValid, now); done <- err }()
	select {
	case err := <-done:
		if le := leaseErr(t, err); !strings.Contains(le.Message, "not a regular file") {
			t.Errorf("Read of a named pipe: %q", le.Message)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read of a named pipe nobody writes blocked")
	}
	missing := filepath.Join(t.TempDir(), "none.token")
	leaseErr(t, func() error { _, err := Read(missing, "", ipc.NoMinValid, now); return err }())
}

func TestPath(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	t.Setenv(FileEnv, "")
	t.Setenv("SLURM_JOB_ID", "")
	if p, err := Path(""); p != "" || err != nil {
		t.Errorf("Path outside a job = %q, %v; want none", p, err)
	}
	t.Setenv(FileEnv, "/some/file")
	if p, _ := Path("dev"); p != "/some/file" {
		t.Errorf("Path with %s set = %q", FileEnv, p)
	}
	t.Setenv(FileEnv, "")
	t.Setenv("SLURM_JOB_ID", "77")
	dir := filepath.Join(state, "tapis-agent", "jobs", "77")
	if p, _ := Path("dev"); p != filepath.Join(dir, "dev.token") {
		t.Errorf("Path(dev) in job 77 = %q", p)
	}
	if _, err := Path(""); err == nil {
		t.Error("Path(\"\") in a job without lease files: no error")
	}
	writeFile(t, filepath.Join(dir, "dev.token"), sample(), 0o600)
	if p, err := Path(""); p != filepath.Join(dir, "dev.token") || err != nil {
		t.Errorf("Path(\"\") with one lease file = %q, %v", p, err)
	}
	writeFile(t, filepath.Join(dir, "tacc.token"), sample(), 0o600)
	if _, err := Path(""); err == nil || !strings.Contains(err.Error(), "dev, tacc") {
		t.Errorf("Path(\"\") with two lease files = %v; want an error naming both", err)
	}
}
