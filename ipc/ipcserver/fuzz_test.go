package ipcserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// FuzzServeHTTP feeds raw requests, parsed the way net/http parses them on
// the socket, to the request handling of a Server whose peer is its own
// user. Whatever arrives, the answer is one JSON value with a matching
// Content-Length; a success only comes from a known route and method; every
// other answer is an error body whose code maps to the answer's status.
//
// A request the fast path takes (written whole) must be one net/http reads
// as the same token request, and the fast path's answer must be net/http's.
// The seed corpus is in testdata/fuzz/FuzzServeHTTP.
func FuzzServeHTTP(f *testing.F) {
	f.Add([]byte("GET /v1/token?tenant=dev&min_valid=60 HTTP/1.1\r\nHost: tapis-agent\r\n\r\n"))
	f.Add([]byte("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n{\"tenant\":\"dev\",\"username\":\"u\",\"x\":1}"))
	f.Add([]byte(helperRequest))
	s := New(&fakeHandler{}, nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast := takes(string(raw))
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			if fast {
				t.Fatalf("the fast path takes %q, which net/http refuses: %v", raw, err)
			}
			return // net/http answers these itself, before any handler
		}
		ctx := context.WithValue(context.Background(), peerKey{}, &peer{uid: s.uid, pid: 1})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req.WithContext(ctx))
		if fast {
			checkFastAnswer(t, s, raw, req, rec)
		}

		body := rec.Body.Bytes()
		if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Fatalf("Content-Length %q for a %d-byte body", cl, len(body))
		}
		if !json.Valid(body) || !bytes.HasSuffix(body, []byte("\n")) {
			t.Fatalf("answer is not one JSON value and a newline: %q", body)
		}
		rt, known := routes[req.URL.Path]
		if rec.Code == http.StatusOK {
			if !known || req.Method != rt.method {
				t.Fatalf("%s %q answered 200", req.Method, req.URL.Path)
			}
			return
		}
		var eb ipc.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("status %d with a body that is not an error: %q", rec.Code, body)
		}
		if got := ipc.HTTPStatus(eb.Error.Code); got != rec.Code {
			t.Fatalf("code %q answered with status %d; HTTPStatus says %d", eb.Error.Code, rec.Code, got)
		}
		if eb.Error.Code == ipc.CodeInternal {
			t.Fatalf("the fake handler never fails, yet the answer is internal: %q", body)
		}
	})
}

// checkFastAnswer checks that raw, which the fast path takes, is the token
// request net/http reads it as, and that the fast path answers it as
// net/http did in rec.
func checkFastAnswer(t *testing.T, s *Server, raw []byte, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	fr, _ := parseTokenHead(raw)
	if req.Method != http.MethodGet || req.URL.Path != ipc.PathToken || req.URL.RawQuery != fr.rawQuery {
		t.Fatalf("fast path reads %q as query %q; net/http as %s %s ? %q", raw, fr.rawQuery, req.Method, req.URL.Path, req.URL.RawQuery)
	}
	if req.ContentLength != 0 || len(req.TransferEncoding) != 0 || !req.Close || (req.ProtoMinor == 0) != fr.http10 {
		t.Fatalf("fast path takes %q: net/http reads length %d, encoding %v, close %v, HTTP/1.%d", raw, req.ContentLength, req.TransferEncoding, req.Close, req.ProtoMinor)
	}
	// The server wants one Host in HTTP/1.1; ReadRequest hides the header.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	_, _ = tp.ReadLine()
	h, err := tp.ReadMIMEHeader()
	if hosts := len(h["Host"]); err != nil || hosts > 1 || (hosts == 0 && !fr.http10) {
		t.Fatalf("fast path takes %q with %d Host headers (%v)", raw, hosts, err)
	}
	a, aborted := s.work(context.Background(), tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
		return s.token(ctx, fr.rawQuery)
	})
	if aborted {
		t.Fatalf("fast answer to %q aborted", raw)
	}
	out := appendAnswer(nil, a, fr.http10, time.Now())
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), req)
	if err != nil {
		t.Fatalf("fast answer %q does not parse: %v", out, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("fast answer %q: reading body: %v", out, err)
	}
	if resp.StatusCode != rec.Code || !bytes.Equal(body, rec.Body.Bytes()) {
		t.Fatalf("fast answer %d %q; net/http %d %q", resp.StatusCode, body, rec.Code, rec.Body.Bytes())
	}
	for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control"} {
		if got, want := resp.Header.Get(k), rec.Header().Get(k); got != want {
			t.Fatalf("fast answer %s %q; net/http %q", k, got, want)
		}
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Fatalf("fast answer Date: %v", err)
	}
	if !resp.Close {
		t.Fatalf("fast answer %q keeps the connection", out)
	}
}
