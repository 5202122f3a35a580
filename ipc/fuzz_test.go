package ipc_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// seedRequests are raw requests whose answers, recorded from the real
// ipcserver, seed FuzzParseResponse: successes, the server's own errors
// and net/http's answers to broken requests.
var seedRequests = map[string]string{
	"token":          "GET /v1/token?tenant=t&min_valid=60 HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
	"status":         "GET /v1/status HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
	"login_device":   "POST /v1/login HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nContent-Length: 29\r\n\r\n{\"tenant\":\"t\",\"device\":true}\n",
	"unknown_tenant": "GET /v1/token?tenant=nope HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
	"internal":       "POST /v1/logout HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nContent-Length: 17\r\n\r\n{\"tenant\":\"boom\"}",
	"not_found":      "GET /v2/token HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
	"method":         "DELETE /v1/status HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
	"bad_json":       "POST /v1/import HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nContent-Length: 1\r\n\r\n{",
	"garbage":        "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
	"no_host":        "GET /v1/status HTTP/1.1\r\n\r\n",
	"big_header":     "GET /v1/status HTTP/1.1\r\nHost: tapis-agent\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n",
	"keepalive":      "GET /v1/status HTTP/1.1\r\nHost: tapis-agent\r\n\r\nGET /v1/token HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n",
}

// recordAnswers sends each seed request to a real server and returns the
// raw bytes it answered.
func recordAnswers(t testing.TB) map[string][]byte {
	t.Helper()
	path := startServer(t, &fakeAgent{})
	out := map[string][]byte{}
	for name, req := range seedRequests {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil && len(b) == 0 {
			t.Fatalf("recording %s: %v", name, err)
		}
		out[name] = b
	}
	return out
}

func FuzzParseResponse(f *testing.F) {
	for _, b := range recordAnswers(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out ipc.StatusResponse
		status, body, err := ipc.ParseResponse(data, &out)
		if err != nil {
			var e *ipc.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("ParseResponse error %v (%T); want *ipc.Error with a code", err, err)
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("ParseResponse = status %d without error", status)
		}
		if len(body) > 1<<20 {
			t.Fatalf("ParseResponse body of %d bytes; want at most 1 MiB", len(body))
		}
	})
}

// TestRecordedAnswers checks what the real server answers, through the
// client's parser: the fixed corpus stays meaningful only if these parse.
func TestRecordedAnswers(t *testing.T) {
	want := map[string]struct {
		status int
		code   string
	}{
		"token":          {200, ""},
		"status":         {200, ""},
		"login_device":   {200, ""},
		"unknown_tenant": {404, ipc.CodeUnknownTenant},
		"internal":       {500, ipc.CodeInternal},
		"not_found":      {404, ipc.CodeNotFound},
		"method":         {405, ipc.CodeMethodNotAllowed},
		"bad_json":       {400, ipc.CodeBadRequest},
		"garbage":        {400, ipc.CodeInternal}, // net/http's plain-text 400
		"no_host":        {400, ipc.CodeInternal},
		"big_header":     {431, ipc.CodeInternal},
		"keepalive":      {200, ""}, // the first answer of two
	}
	answers := recordAnswers(t)
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			var out map[string]any
			status, _, err := ipc.ParseResponse(answers[name], &out)
			var e *ipc.Error
			switch {
			case w.code == "" && (err != nil || status != w.status):
				t.Errorf("ParseResponse = %d, %v; want %d, nil\n%q", status, err, w.status, answers[name])
			case w.code != "" && (!errors.As(err, &e) || e.Status != w.status || e.Code != w.code):
				t.Errorf("ParseResponse = %v; want status %d code %s\n%q", err, w.status, w.code, answers[name])
			}
		})
	}
	if os.Getenv("IPC_WRITE_CORPUS") != "" {
		dir := filepath.Join("testdata", "fuzz", "FuzzParseResponse")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range answers {
			// Drop the Date header so the committed corpus is stable.
			b = dropHeader(b, "Date: ")
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, "server_"+name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func dropHeader(b []byte, prefix string) []byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\r\n")) {
		if !bytes.HasPrefix(l, []byte(prefix)) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, nil)
}
