package tapis_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
)

// fuzzSecrets are the credentials every fuzzed call sends; upstream may
// echo them back, and no error text may show them.
const (
	fuzzRefresh   = "fuzz-refresh-token-value"
	fuzzClientKey = "fuzz-client-key-value"
	fuzzPassword  = "fuzz-password-value"
)

// cannedTransport answers every request with one status, content type and
// body, without a network.
type cannedTransport struct {
	status int
	ctype  string
	body   []byte
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: c.status,
		Header:     http.Header{"Content-Type": {c.ctype}},
		Body:       io.NopCloser(bytes.NewReader(c.body)),
		Request:    r,
	}, nil
}

// FuzzUpstreamAnswer feeds arbitrary upstream answers (status, content type,
// body) through the client's envelope and token-result parsing, by way of
// the refresh and password grants. Every outcome is either a Token with
// both tokens and a future-or-past expiry that is set, or a *tapis.Error
// whose text carries none of the secrets sent. The seed corpus is in
// testdata/fuzz/FuzzUpstreamAnswer.
func FuzzUpstreamAnswer(f *testing.F) {
	ok := `{"message":"Token created successfully.","metadata":{},"result":{"access_token":{"access_token":"a.b.c","expires_at":"2030-01-01T00:00:00.000000+00:00","expires_in":14400,"jti":"j1"},"refresh_token":{"refresh_token":"d.e.f","expires_at":"2031-01-01T00:00:00.000000+00:00","expires_in":31536000,"jti":"j2"}},"status":"success","version":"dev"}`
	f.Add(200, "application/json", []byte(ok))
	f.Add(400, "application/json", []byte(`{"message":"Invalid refresh_token.","metadata":{},"result":null,"status":"error","version":"dev"}`))
	f.Add(400, "application/json", []byte(`{"message":"Invalid client credentials: `+fuzzClientKey+`","metadata":{},"result":null,"status":"error","version":"dev"}`))
	f.Add(500, "text/html; charset=utf-8", []byte("<!doctype html><title>500 Internal Server Error</title>"))
	f.Add(200, "application/json", []byte(`{"message":"","result":`))
	f.Add(200, "application/json", []byte(`{"status":"success","result":null}`))
	f.Add(200, "application/json; charset=utf-8", []byte(`{"status":"success","result":{"access_token":{"access_token":"x"}}}`))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		if status < 100 || status > 999 {
			return // net/http never produces these
		}
		hc := &http.Client{Transport: cannedTransport{status, ctype, body}}
		c, err := tapis.New("https://tenant.example.org", tapis.WithHTTPClient(hc), tapis.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		creds := tapis.ClientCredentials{ID: "cid", Key: secret.Value(fuzzClientKey)}
		tok, err := c.Refresh(context.Background(), secret.Value(fuzzRefresh), creds)
		checkFuzzOutcome(t, "refresh", tok, err, true)
		tok, err = c.PasswordGrant(context.Background(), "jdoe", secret.Value(fuzzPassword), &creds)
		checkFuzzOutcome(t, "password grant", tok, err, false)
	})
}

func checkFuzzOutcome(t *testing.T, op string, tok *tapis.Token, err error, needRefresh bool) {
	t.Helper()
	if err != nil {
		var te *tapis.Error
		if !errors.As(err, &te) {
			t.Fatalf("%s: error %T is not a *tapis.Error: %v", op, err, err)
		}
		for _, s := range []string{fuzzRefresh, fuzzClientKey, fuzzPassword} {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("%s: error text shows a secret: %q", op, err)
			}
		}
		return
	}
	if tok == nil || tok.AccessToken.IsZero() || tok.AccessExpiresAt.IsZero() {
		t.Fatalf("%s: success without an access token and its expiry: %+v", op, tok)
	}
	if needRefresh && tok.RefreshToken.IsZero() {
		t.Fatalf("%s: refresh succeeded without a new refresh token", op)
	}
}
