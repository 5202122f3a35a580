package ipcserver

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// FuzzTokenJSON: appendTokenJSON writes exactly what json.Marshal writes,
// and declines only values it must leave to encoding/json.
func FuzzTokenJSON(f *testing.F) {
	f.Add("designsafe", "https://designsafe.tapis.io", "jdoe", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqZG9lIn0.c2ln", int64(1893456000123456789), int64(3600), 0)
	f.Add("a<b", "https://x/?a=1&b=2", "j\"doe", "tok\\en", int64(0), int64(-5), 0)
	f.Add("é", "\u2028", "\x7f", "\xff", int64(-62135596800000000), int64(0), 3600)
	f.Add("t", "u", "v", "w", int64(253402300800000000), int64(1), 0) // year 10000
	f.Fuzz(func(t *testing.T, tenant, baseURL, user, token string, ns, in int64, zone int) {
		tr := &ipc.TokenResponse{Tenant: tenant, BaseURL: baseURL, Username: user, AccessToken: token,
			ExpiresAt: time.Unix(0, ns).In(time.FixedZone("z", zone%(26*3600))), ExpiresIn: in}
		if zone%(26*3600) == 0 {
			tr.ExpiresAt = tr.ExpiresAt.UTC()
		}
		got, ok := appendTokenJSON([]byte("x"), tr)
		want, err := json.Marshal(tr)
		if !ok {
			if string(got) != "x" {
				t.Fatalf("appendTokenJSON declined but appended %q", got[1:])
			}
			_, off := tr.ExpiresAt.Zone()
			y := tr.ExpiresAt.Year()
			if err == nil && off == 0 && y >= 0 && y <= 9999 && plainJSON(tenant) && plainJSON(baseURL) && plainJSON(user) && plainJSON(token) {
				t.Fatalf("appendTokenJSON declined a plain answer %+v", tr)
			}
			return
		}
		if err != nil {
			t.Fatalf("appendTokenJSON wrote %q; json.Marshal fails: %v", got[1:], err)
		}
		if string(got[1:]) != string(want) {
			t.Fatalf("appendTokenJSON =\n%s\njson.Marshal =\n%s", got[1:], want)
		}
	})
}

func TestPlainTokenJSON(t *testing.T) {
	tr := &ipc.TokenResponse{Tenant: "dev", BaseURL: "http://127.0.0.1:1", Username: "jdoe", AccessToken: "a.b.c",
		ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC), ExpiresIn: 42}
	got, ok := appendTokenJSON(nil, tr)
	want, _ := json.Marshal(tr)
	if !ok || string(got) != string(want) {
		t.Errorf("appendTokenJSON = %s, %v; want %s, true", got, ok, want)
	}
}

// FuzzPlainTokenQuery: plainTokenQuery reads a query as tokenQuery does,
// or declines it; and it reads the helper's queries.
func FuzzPlainTokenQuery(f *testing.F) {
	for _, q := range []string{"", "tenant=dev", "tenant=dev&min_valid=60", "min_valid=007&tenant=a.b-c_d",
		"tenant=a&tenant=b", "tenant=%64ev", "min_valid=-1", "min_valid=99999999999999999999", "x=1", "tenant",
		"tenant=dev&", "&tenant=dev", "tenant=a=b", "min_valid=", "tenant=a+b"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tenant, minValid, ok := plainTokenQuery(raw)
		if !ok {
			return
		}
		wt, wm, refusal := tokenQuery(raw)
		if refusal != nil || tenant != wt || minValid != wm {
			t.Fatalf("plainTokenQuery(%q) = %q, %v; tokenQuery gives %q, %v, %+v", raw, tenant, minValid, wt, wm, refusal)
		}
	})
}

func TestPlainTokenQueryTakesTheHelpers(t *testing.T) {
	for _, raw := range []string{"", "tenant=dev", "min_valid=60", "tenant=designsafe&min_valid=7200"} {
		if _, _, ok := plainTokenQuery(raw); !ok {
			t.Errorf("plainTokenQuery(%q) declined the helper's query", raw)
		}
	}
}

// FuzzHTTPDate: appendHTTPDate writes what AppendFormat with
// http.TimeFormat writes.
func FuzzHTTPDate(f *testing.F) {
	f.Add(int64(0))
	f.Add(time.Date(2026, 12, 1, 4, 46, 5, 0, time.UTC).UnixNano())
	f.Add(int64(-1) << 62)
	f.Fuzz(func(t *testing.T, ns int64) {
		tm := time.Unix(0, ns).In(time.FixedZone("x", 3600))
		if got, want := string(appendHTTPDate(nil, tm)), tm.UTC().Format(http.TimeFormat); got != want {
			t.Fatalf("appendHTTPDate(%v) = %q; want %q", tm, got, want)
		}
	})
}
