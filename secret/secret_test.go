package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const value = "eyJhbGciOiJSUzI1NiJ9.very-secret"
	s := Value(value)
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("token", "tok", s)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("token", "tok", s)
	js, err := json.Marshal(struct{ S Value }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%s":   fmt.Sprintf("%s", s),
		"%q":   fmt.Sprintf("%q", s),
		"%#v":  fmt.Sprintf("%#v", struct{ S Value }{s}),
		"%+v":  fmt.Sprintf("%+v", struct{ S Value }{s}),
		"%x":   fmt.Sprintf("%x", s),
		"slog": logBuf.String(),
		"json": string(js),
		"err":  fmt.Errorf("wrapped: %v", s).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "very-secret") {
			t.Errorf("%s printed the secret: %s", name, out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s = %q; want REDACTED in it", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q; want %q", s.Reveal(), value)
	}
	if s.IsZero() || !Value("").IsZero() {
		t.Errorf("IsZero wrong")
	}
}
