package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var baseRE = regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`)

// syncBuffer is a goroutine-safe stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// passwordGrant does a password grant with a client-less JSON request and
// returns the decoded envelope.
func passwordGrant(t *testing.T, base, user, pw string) (int, map[string]any, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"grant_type": "password", "username": user, "password": pw})
	req, _ := http.NewRequest("POST", base+"/v3/oauth2/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env map[string]any
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("decoding %q: %v", raw, err)
	}
	return resp.StatusCode, env, resp.Header.Get("Content-Type")
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-tenant", "demo", "-user", "demo:secret", "-access-ttl", "15s", "-grant-types", "password,refresh_token", "-browser-user", "demo"}, pw, stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v (stderr %q)", err, stderr.String())
	}
	base := strings.TrimSuffix(line, "\n")
	if !baseRE.MatchString(base) {
		t.Fatalf("first line = %q; want the base URL", line)
	}
	go io.Copy(io.Discard, pr)

	status, env, ctype := passwordGrant(t, base, "demo", "secret")
	if status != 200 || ctype != "application/json" || env["message"] != "Token created successfully." || env["status"] != "success" {
		t.Fatalf("password grant = %d %q %v", status, ctype, env)
	}
	at := env["result"].(map[string]any)["access_token"].(map[string]any)
	if at["expires_in"] != 15.0 {
		t.Errorf("expires_in = %v; want 15", at["expires_in"])
	}
	tok := at["access_token"].(string)
	claims, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.Contains(string(claims), `"iss":"`+base+`/v3/tokens"`) || !strings.Contains(string(claims), `"tapis/tenant_id":"demo"`) {
		t.Errorf("claims = %s", claims)
	}
	resp, err := http.Get(base + "/v3/oauth2/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(wk), `"grant_types_supported":["password","refresh_token"]`) {
		t.Errorf(".well-known = %s; want the grant types of -grant-types", wk)
	}
	status, env, _ = passwordGrant(t, base, "demo", "wrong")
	if status != 400 || env["message"] != "Invalid username/password combination." {
		t.Errorf("bad password = %d %v", status, env)
	}

	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run = %v; want nil after cancel", err)
	}
	log := stderr.String()
	if !strings.Contains(log, "method=POST path=/v3/oauth2/tokens status=200") || !strings.Contains(log, "status=400") {
		t.Errorf("request log = %q", log)
	}
	if strings.Contains(log, tok) || strings.Contains(log, "secret") {
		t.Errorf("request log leaks a token or password: %q", log)
	}
}

func TestRunRejects(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"public address", []string{"-addr", "0.0.0.0:0"}, "not a loopback address"},
		{"empty host", []string{"-addr", ":0"}, "not a loopback address"},
		{"bad address", []string{"-addr", "nope"}, "bad -addr"},
		{"bad user", []string{"-user", "nopassword"}, "want NAME:PASSWORD"},
		{"bad ttl", []string{"-access-ttl", "0s"}, "lifetimes must be positive"},
		{"extra argument", []string{"serve"}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
				t.Fatalf("run(%q) = %v (stderr %q); want an error containing %q", tc.args, err, stderr.String(), tc.want)
			}
			if errExitCode(err) != 2 {
				t.Errorf("exit code = %d; want 2", errExitCode(err))
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q; want nothing", stdout.String())
			}
		})
	}
}

func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "tapis-fake")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-user", "u:p")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !baseRE.MatchString(strings.TrimSpace(line)) {
		cmd.Process.Kill()
		t.Fatalf("first line = %q, %v; stderr %q", line, err, stderr.String())
	}
	if status, _, _ := passwordGrant(t, strings.TrimSpace(line), "u", "p"); status != 200 {
		t.Errorf("password grant = %d; want 200", status)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v (stderr %q); want status 0", err, stderr.String())
	}
}
