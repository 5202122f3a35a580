package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Client c1 (key k1) of user jdoe, registered in the fake by withClient.
const (
	testClientID  = "c1"
	testClientKey = "k1"
)

// withClient registers client c1 in the fake and writes a config naming it
// for "dev" (key in a 0600 file), plus the extra lines for [tenants.dev].
func (e *env) withClient(extra string) {
	e.t.Helper()
	if err := e.fake.AddClient("jdoe", testClientID, testClientKey); err != nil {
		e.t.Fatal(err)
	}
	keyFile := filepath.Join(e.dir, "c1.key")
	if err := os.WriteFile(keyFile, []byte(testClientKey+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\nclient_id = %q\nclient_key_file = %q\n%s",
		e.fake.URL(), testClientID, keyFile, extra))
}

// tenantLines writes a config for "dev" with extra lines for its table.
func (e *env) tenantLines(extra string) {
	e.t.Helper()
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n%s", e.fake.URL(), extra))
}

// bg is a tapis-token run in the background.
type bg struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	code   int
}

// tokenBg starts tapis-token with args; wait for it with bg.wait.
func (e *env) tokenBg(args ...string) *bg {
	e.t.Helper()
	return e.tokenBgEnv("", nil, args...)
}

// tokenBgEnv is tokenBg with stdin and more environment variables.
func (e *env) tokenBgEnv(stdin string, extraEnv []string, args ...string) *bg {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tapis-token"), args...)
	cmd.Env = append(e.environ(), extraEnv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	b := &bg{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = lockedWriter{&e.mu, b.stderr}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			b.code = ee.ExitCode()
		}
		close(b.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// wait waits up to d for the background run to end and returns its exit
// code and stderr.
func (e *env) wait(b *bg, d time.Duration) (int, string) {
	e.t.Helper()
	select {
	case <-b.done:
	case <-time.After(d):
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.done
		e.t.Fatalf("tapis-token %v did not end within %s; stderr:\n%s\nagent log:\n%s", b.cmd.Args[1:], d, e.out(b), e.agentLog())
	}
	return b.code, e.out(b)
}

// out returns what the background run printed on stderr so far.
func (e *env) out(b *bg) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return b.stderr.String()
}

// script writes an executable shell script and returns its path.
func (e *env) script(name, body string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// connectTapisCheck reads a token file the way DesignSafe's connect_tapis
// does: json.load, datetime.fromisoformat(expires_at), reuse the token
// when it is later than now in UTC. It prints the token.
const connectTapisCheck = `
import json, sys
from datetime import datetime, timezone
with open(sys.argv[1]) as f:
    d = json.load(f)
assert set(d) == {"access_token", "expires_at"}, d.keys()
exp = datetime.fromisoformat(d["expires_at"])
assert exp.tzinfo is not None and exp.utcoffset().total_seconds() == 0, d["expires_at"]
if not d["access_token"] or exp <= datetime.now(timezone.utc):
    sys.exit("token expired or empty")
print(d["access_token"])
`

// pythonReads runs connectTapisCheck on path and returns the token.
func pythonReads(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", connectTapisCheck, path).CombinedOutput()
	if err != nil {
		t.Fatalf("connect_tapis check of %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}
