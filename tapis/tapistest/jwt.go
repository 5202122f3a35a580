package tapistest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"
)

// keys caches one RSA key per tenant id for the whole process: 2048-bit key
// generation takes seconds under the race detector, and a test binary
// starts many fake servers. Servers with the same tenant id therefore share
// a key, which a real site would never do; for a fake that is harmless and
// lets one fake tenant validate tokens of another (§7.2 tenant mismatch).
var keys struct {
	mu sync.Mutex // guards m
	m  map[string]*tenantKey
}

type tenantKey struct {
	once sync.Once
	priv *rsa.PrivateKey
	pem  string
	err  error
}

// keyFor returns the process-wide key of tenant, generating it on first use.
func keyFor(tenant string) (*tenantKey, error) {
	keys.mu.Lock()
	if keys.m == nil {
		keys.m = make(map[string]*tenantKey)
	}
	k := keys.m[tenant]
	if k == nil {
		k = new(tenantKey)
		keys.m[tenant] = k
	}
	keys.mu.Unlock()
	if err := k.load(); err != nil {
		return nil, fmt.Errorf("generating key of tenant %s: %w", tenant, err)
	}
	return k, nil
}

// load generates the key once.
func (k *tenantKey) load() error {
	k.once.Do(func() {
		k.priv, k.err = rsa.GenerateKey(rand.Reader, 2048)
		if k.err != nil {
			return
		}
		der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
		if err != nil {
			k.err = err
			return
		}
		k.pem = strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n")
	})
	return k.err
}

// knownKey returns the public key of tenant if some fake server of this
// process has one.
func knownKey(tenant string) *rsa.PublicKey {
	keys.mu.Lock()
	k := keys.m[tenant]
	keys.mu.Unlock()
	if k == nil {
		return nil
	}
	if k.load() != nil {
		return nil
	}
	return &k.priv.PublicKey
}

// claim is one JWT claim; claims keeps them in the order the real
// authenticator emits (§5.1).
type claim struct {
	key string
	val any
}

type claims []claim

// MarshalJSON encodes c as an object with its keys in order.
func (c claims) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(kv.key)
		if err != nil {
			return nil, err
		}
		v, err := marshalNoEscape(kv.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalNoEscape encodes v compactly without HTML escaping and without
// the encoder's trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))

// sign returns the RS256 JWT of payload (any JSON-encodable value).
func sign(priv *rsa.PrivateKey, payload any) (string, error) {
	body, err := marshalNoEscape(payload)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	input := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// parsedJWT is a decoded but not yet verified token.
type parsedJWT struct {
	alg    string
	claims map[string]any // numbers as json.Number
	input  string         // header.payload
	sig    []byte
}

var errMalformed = errors.New("malformed token")

// parseJWT decodes tok without verifying it.
func parseJWT(tok string) (*parsedJWT, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errMalformed
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errMalformed
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, errMalformed
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil || c == nil {
		return nil, errMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errMalformed
	}
	return &parsedJWT{alg: hdr.Alg, claims: c, input: parts[0] + "." + parts[1], sig: sig}, nil
}

// verify reports whether p carries a valid RS256 signature by pub and has
// not expired at now. Like PyJWT with zero leeway, a token is expired from
// the second of its exp on.
func (p *parsedJWT) verify(pub *rsa.PublicKey, now time.Time) bool {
	if p.alg != "RS256" {
		return false
	}
	sum := sha256.Sum256([]byte(p.input))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.sig) != nil {
		return false
	}
	exp, ok := numberClaim(p.claims["exp"])
	if !ok {
		return false
	}
	return now.Before(time.Unix(exp, 0))
}

// numberClaim returns an integer claim decoded as json.Number (or a Go
// number, for claims built in memory).
func numberClaim(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return int64(f), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

// mapClaims converts signed claims for SignClaims: keys sorted.
func mapClaims(m map[string]any) claims {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	c := make(claims, 0, len(m))
	for _, k := range ks {
		c = append(c, claim{k, m[k]})
	}
	return c
}

// newUUID returns a random UUID4 string.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const (
	lettersDigits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	letters       = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// randomString returns n characters drawn uniformly from alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		j, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		b[i] = alphabet[j.Int64()]
	}
	return string(b)
}

// pyISO formats t like Python's datetime.isoformat() of an aware UTC
// datetime: microseconds, "+00:00", no fraction when the microsecond is 0.
func pyISO(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "+00:00"
}
