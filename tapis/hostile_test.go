package tapis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis"
)

// newRaw starts a plain httptest server on 127.0.0.1 and a Client for it.
func newRaw(t *testing.T, h http.HandlerFunc, opts ...tapis.Option) *tapis.Client {
	t.Helper()
	// done ends handlers that wait for the request context: the server
	// does not always notice that a client gave up on a response.
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, stop := context.WithCancel(r.Context())
		defer stop()
		go func() {
			select {
			case <-done:
				stop()
			case <-ctx.Done():
			}
		}()
		h(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	c, err := tapis.New(srv.URL, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", srv.URL, err)
	}
	return c
}

// reply writes status and body with Content-Type application/json.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// errorEnvelope is a Tapis error body carrying msg.
func errorEnvelope(msg string) string {
	return `{"message":` + quote(msg) + `,"metadata":{},"result":null,"status":"error","version":"dev"}` + "\n"
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func asError(t *testing.T, err error) *tapis.Error {
	t.Helper()
	var e *tapis.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *tapis.Error", err, err)
	}
	return e
}

// calls runs every method of the client that reads a result, so hostile
// bodies are tried against each decoder.
var calls = []struct {
	name string
	call func(ctx context.Context, c *tapis.Client) error
}{
	{"password grant", func(ctx context.Context, c *tapis.Client) error {
		_, err := c.PasswordGrant(ctx, "jdoe", "pw", &tapis.ClientCredentials{ID: "cid", Key: "ckey"})
		return err
	}},
	{"refresh", func(ctx context.Context, c *tapis.Client) error {
		_, err := c.Refresh(ctx, "rt", tapis.ClientCredentials{ID: "cid", Key: "ckey"})
		return err
	}},
	{"start device", func(ctx context.Context, c *tapis.Client) error {
		_, err := c.StartDevice(ctx, "cid")
		return err
	}},
	{"create client", func(ctx context.Context, c *tapis.Client) error {
		_, err := c.CreateClient(ctx, "at", tapis.NewClient{})
		return err
	}},
}

func TestHostileResponses(t *testing.T) {
	huge := `{"message":"` + strings.Repeat("x", 2<<20) + `","metadata":{},"result":{},"status":"success","version":"dev"}`
	cases := []struct {
		name    string
		handler http.HandlerFunc
		status  int // want StatusCode
	}{
		{"truncated json", reply(200, `{"message":"Token created successfully.","metadata":{},"result":{"access_token":{"acc`), 200},
		{"2 MiB body", reply(200, huge), 200},
		{"html 500", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(500)
			w.Write([]byte("<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>"))
		}, 500},
		{"json 500", reply(500, errorEnvelope("Unrecognized exception type: <class 'KeyError'>. Exception: 'x'")), 500},
		{"502 empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }, 502},
		{"text/plain 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(`{"message":"ok","metadata":{},"result":{},"status":"success","version":"dev"}`))
		}, 200},
		{"no content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte(`{}`))
		}, 200},
		{"empty body", reply(200, ""), 200},
		{"json null", reply(200, "null"), 200},
		{"json array", reply(200, "[]"), 200},
		{"trailing garbage", reply(200, `{"message":"","metadata":{},"result":{},"status":"success","version":"dev"} x`), 200},
		{"status error on 200", reply(200, errorEnvelope("Something odd happened.")), 200},
		{"unknown status", reply(200, `{"message":"","metadata":{},"result":{},"status":"failure","version":"dev"}`), 200},
		{"result wrong type", reply(200, `{"message":"","metadata":{},"result":42,"status":"success","version":"dev"}`), 200},
		{"result string", reply(200, `{"message":"","metadata":{},"result":"","status":"success","version":"dev"}`), 200},
		{"result null", reply(200, `{"message":"","metadata":{},"result":null,"status":"success","version":"dev"}`), 200},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
		}, 307},
		{"connection reset", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, 0},
		{"reset mid body", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"message\":")
			buf.Flush()
			conn.Close()
		}, 200},
		{"hang", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, 0},
		{"hang after headers", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			w.Write([]byte(`{"message":`))
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, tc.handler, tapis.WithTimeout(300*time.Millisecond))
			for _, call := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := call.call(ctx, c)
				cancel()
				if err == nil {
					t.Errorf("%s: err = nil; want a transient *tapis.Error", call.name)
					continue
				}
				e := asError(t, err)
				if !tapis.IsTransient(err) || tapis.IsDefinitive(err) || e.Reason != tapis.ReasonUpstream {
					t.Errorf("%s: %v: Reason %q, IsTransient %v, IsDefinitive %v; want upstream, true, false",
						call.name, err, e.Reason, tapis.IsTransient(err), tapis.IsDefinitive(err))
				}
				if e.StatusCode != tc.status {
					t.Errorf("%s: StatusCode = %d; want %d", call.name, e.StatusCode, tc.status)
				}
				if len(err.Error()) > 1000 {
					t.Errorf("%s: error text is %d bytes long", call.name, len(err.Error()))
				}
			}
		})
	}
}

func TestTimeoutIsTransientAndWrapped(t *testing.T) {
	c := newRaw(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, tapis.WithTimeout(50*time.Millisecond))
	start := time.Now()
	_, err := c.StartDevice(context.Background(), "cid")
	if !errors.Is(err, tapis.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StartDevice on a hanging server = %v; want ErrTimeout and DeadlineExceeded", err)
	}
	if !tapis.IsTransient(err) {
		t.Errorf("IsTransient(%v) = false; want true", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %v; want about the 50ms timeout", d)
	}
}

func TestCallerCancellation(t *testing.T) {
	started := make(chan struct{})
	c := newRaw(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.StartDevice(ctx, "cid")
	e := asError(t, err)
	if e.Reason != tapis.ReasonCanceled || e.Kind() != tapis.KindCanceled {
		t.Errorf("Reason, Kind = %q, %v; want canceled", e.Reason, e.Kind())
	}
	if tapis.IsTransient(err) || tapis.IsDefinitive(err) {
		t.Errorf("canceled call: IsTransient %v, IsDefinitive %v; want false, false", tapis.IsTransient(err), tapis.IsDefinitive(err))
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(%v, context.Canceled) = false", err)
	}

	// The caller's own deadline is an upstream too slow to answer: retry.
	ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	c2 := newRaw(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	_, err = c2.StartDevice(ctx, "cid")
	if !tapis.IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: %v, IsTransient %v; want transient DeadlineExceeded", err, tapis.IsTransient(err))
	}
}

func TestIsTransientOnOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("x"), context.Canceled} {
		if tapis.IsTransient(err) || tapis.IsDefinitive(err) {
			t.Errorf("IsTransient/IsDefinitive(%v) = true; want false for a non-*Error", err)
		}
	}
}
