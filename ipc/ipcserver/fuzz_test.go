package ipcserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// FuzzServeHTTP feeds raw requests, parsed the way net/http parses them on
// the socket, to the request handling of a Server whose peer is its own
// user. Whatever arrives, the answer is one JSON value with a matching
// Content-Length; a success only comes from a known route and method; every
// other answer is an error body whose code maps to the answer's status.
// The seed corpus is in testdata/fuzz/FuzzServeHTTP.
func FuzzServeHTTP(f *testing.F) {
	f.Add([]byte("GET /v1/token?tenant=dev&min_valid=60 HTTP/1.1\r\nHost: tapis-agent\r\n\r\n"))
	f.Add([]byte("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n{\"tenant\":\"dev\",\"username\":\"u\",\"x\":1}"))
	s := New(&fakeHandler{}, nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers these itself, before any handler
		}
		ctx := context.WithValue(context.Background(), peerKey{}, &peer{uid: s.uid, pid: 1})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req.WithContext(ctx))

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
