package wire

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWriteRequest(t *testing.T) {
	var b bytes.Buffer
	b.Write(appendRequest(nil, "POST", "/v1/logout", []byte(`{"tenant":"x"}`)))
	want := "POST /v1/logout HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nAccept: application/json\r\n" +
		"Content-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"tenant\":\"x\"}"
	if b.String() != want {
		t.Errorf("appendRequest wrote\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	b.Write(appendRequest(nil, "GET", "/v1/status", nil))
	if got := b.String(); strings.Contains(got, "Content-Type") || !strings.HasSuffix(got, "Content-Length: 0\r\n\r\n") {
		t.Errorf("appendRequest without body wrote %q", got)
	}
}

func TestReadResponse(t *testing.T) {
	const okHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	cases := []struct {
		name       string
		in         string
		wantStatus int
		wantBody   string
		wantErr    string // substring of the *Error message; empty means success
	}{
		{"content length", okHead + "Content-Length: 2\r\n\r\n{}", 200, "{}", ""},
		{"lower-case header", okHead + "content-length: 2\r\n\r\n{}trailing", 200, "{}", ""},
		{"read to EOF", okHead + "\r\n{\"a\":1}", 200, `{"a":1}`, ""},
		{"http/1.0", "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, "", ""},
		{"no reason", "HTTP/1.1 500\r\nContent-Length: 1\r\n\r\nx", 500, "x", ""},
		{"duplicate equal length", okHead + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", ""},
		{"empty", "", 0, "", "connection closed"},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", "not an HTTP/1.x status line"},
		{"http/2", "HTTP/2 200\r\n\r\n", 0, "", "not an HTTP/1.x status line"},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\n", 0, "", "unexpected status 100"},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, "", "bad status code"},
		{"long status", "HTTP/1.1 2000 OK\r\n\r\n", 0, "", "bad status code"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 0, "", "CRLF"},
		{"no headers end", okHead + "Content-Length: 2\r\n", 0, "", "connection closed"},
		{"chunked", okHead + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 0, "", "Transfer-Encoding"},
		{"bad length", okHead + "Content-Length: -1\r\n\r\n", 0, "", "bad Content-Length"},
		{"huge length", okHead + "Content-Length: 99999999999\r\n\r\n", 0, "", "bad Content-Length"},
		{"length over limit", okHead + "Content-Length: 1048577\r\n\r\n", 0, "", "body too large"},
		{"conflicting length", okHead + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 0, "", "conflicting"},
		{"short body", okHead + "Content-Length: 5\r\n\r\n{}", 0, "", "shorter than Content-Length"},
		{"EOF body over limit", okHead + "\r\n" + strings.Repeat("x", maxBodyBytes+1), 0, "", "body too large"},
		{"folded header", okHead + " X-Folded: x\r\n\r\n", 0, "", "bad header name"},
		{"no colon", okHead + "Broken\r\n\r\n", 0, "", "bad header line"},
		{"control char", okHead + "X: a\x00b\r\n\r\n", 0, "", "control character"},
		{"line too long", okHead + "X: " + strings.Repeat("a", maxLineBytes) + "\r\n\r\n", 0, "", "too long"},
		{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxHeaderLines+1) + "\r\n", 0, "", "too many header lines"},
		{"headers too large", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", 17) + "\r\n", 0, "", "headers too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := readResponse(bufio.NewReaderSize(strings.NewReader(tc.in), maxLineBytes))
			if tc.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, tc.wantErr) {
					t.Fatalf("readResponse = %d, %q, %v; want *Error internal containing %q", status, body, err, tc.wantErr)
				}
				return
			}
			if err != nil || status != tc.wantStatus || string(body) != tc.wantBody {
				t.Fatalf("readResponse = %d, %q, %v; want %d, %q, nil", status, body, err, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
