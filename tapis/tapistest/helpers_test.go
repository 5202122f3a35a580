package tapistest_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// httpClient bounds every request of these tests.
var httpClient = &http.Client{Timeout: 20 * time.Second}

// envelope is the decoded five-key body.
type envelope struct {
	Message  string          `json:"message"`
	Metadata map[string]any  `json:"metadata"`
	Result   json.RawMessage `json:"result"`
	Status   string          `json:"status"`
	Version  string          `json:"version"`
}

// answer is one HTTP response.
type answer struct {
	status int
	ctype  string
	raw    []byte
	env    envelope
	header http.Header
}

// call sends a request; hdr values of "" delete that header.
func call(t *testing.T, method, url string, hdr map[string]string, body string) answer {
	t.Helper()
	a, err := tryCall(method, url, hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryCall is call for goroutines other than the test's, which must not
// call t.Fatal.
func tryCall(method, url string, hdr map[string]string, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("reading %s %s: %w", method, url, err)
	}
	a := answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: raw, header: resp.Header}
	if a.ctype == "application/json" {
		if err := json.Unmarshal(raw, &a.env); err != nil {
			return answer{}, fmt.Errorf("%s %s: decoding %q: %w", method, url, raw, err)
		}
	}
	return a, nil
}

func basic(id, key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+key))
}

// postTokens posts a JSON token request with an optional Basic client.
func postTokens(t *testing.T, s *tapistest.Server, auth, body string) answer {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	if auth != "" {
		hdr["Authorization"] = auth
	}
	return call(t, "POST", s.URL()+"/v3/oauth2/tokens", hdr, body)
}

// tokenResult is the result of a successful grant.
type tokenResult struct {
	AccessToken struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   string `json:"expires_at"`
		ExpiresIn   int64  `json:"expires_in"`
		JTI         string `json:"jti"`
	} `json:"access_token"`
	RefreshToken *struct {
		ExpiresAt    string `json:"expires_at"`
		ExpiresIn    int64  `json:"expires_in"`
		JTI          string `json:"jti"`
		RefreshToken string `json:"refresh_token"`
	} `json:"refresh_token"`
}

// mustTokens checks a 200 token answer and decodes its result.
func mustTokens(t *testing.T, a answer) tokenResult {
	t.Helper()
	if a.status != 200 || a.env.Message != "Token created successfully." {
		t.Fatalf("token answer = %d %q; want 200 Token created successfully.", a.status, a.raw)
	}
	var r tokenResult
	if err := json.Unmarshal(a.env.Result, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// password grants tokens for user with an optional client.
func password(t *testing.T, s *tapistest.Server, auth, user, pw string) tokenResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"grant_type": "password", "username": user, "password": pw})
	return mustTokens(t, postTokens(t, s, auth, string(body)))
}

// refresh runs the refresh grant.
func refresh(t *testing.T, s *tapistest.Server, auth, rt string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": rt})
	return postTokens(t, s, auth, string(body))
}

// verifyJWT checks tok's RS256 signature against the PEM independently of
// the fake's own code and returns its header and payload bytes.
func verifyJWT(t *testing.T, pemKey, tok string) (header, payload []byte) {
	t.Helper()
	blk, _ := pem.Decode([]byte(pemKey))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not a PUBLIC KEY PEM: %q", pemKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(k.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	header, _ = base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ = base64.RawURLEncoding.DecodeString(parts[1])
	return header, payload
}

// claimsOf decodes a token's payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fixedClock is an adjustable clock for Config.Now.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// newTenant starts a fake with user testuser1/pw1 owning myclient1/mykey1
// and user testuser2/pw2 owning myclient2/mykey2.
func newTenant(t *testing.T, cfg tapistest.Config) *tapistest.Server {
	t.Helper()
	cfg.Users = map[string]string{"testuser1": "pw1", "testuser2": "pw2"}
	s := tapistest.New(t, cfg)
	if err := s.AddClient("testuser1", "myclient1", "mykey1"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddClient("testuser2", "myclient2", "mykey2"); err != nil {
		t.Fatal(err)
	}
	return s
}
