package shell

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/run/user/1000/tapis-agent/agent.sock", "/run/user/1000/tapis-agent/agent.sock"},
		{"a-b_c.d+e,f:g@h%i=j", "a-b_c.d+e,f:g@h%i=j"},
		{"/tmp/my dir/agent.sock", "'/tmp/my dir/agent.sock'"},
		{"/tmp/it's/a.sock", `'/tmp/it'\''s/a.sock'`},
		{"/tmp/$HOME/a.sock", "'/tmp/$HOME/a.sock'"},
		{"~", "'~'"},
		{"", "''"},
	}
	for _, tc := range cases {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

// TestQuoteRoundTrip has /bin/sh print each quoted string back as one
// argument: what the shell reads must be the string itself.
func TestQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("/bin/sh")
	if err != nil {
		t.Fatalf("no /bin/sh: %v", err)
	}
	inputs := []string{
		"", "plain", "/run/user/1000/tapis-agent/agent.sock", "two words", "it's", "''", "'\\''",
		`back\slash`, `\`, "$HOME", "${HOME}", "$(id)", "`id`", "a;b", "a&b", "a|b", "a>b", "a<b",
		"*", "?", "[a]", "~", "~root", "#comment", "!", "!!", "a\tb", "line\nbreak", `"dq"`,
		"-n", "--", "é ü 日本", "=", "a=b c", "{a,b}", "(sub)",
	}
	for _, in := range inputs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// The marker after the word shows that it was exactly one word.
		out, err := exec.CommandContext(ctx, sh, "-c", "printf '%s|' "+Quote(in)+" END").Output()
		cancel()
		if err != nil {
			t.Errorf("sh -c with Quote(%q) = %s: %v", in, Quote(in), err)
			continue
		}
		if got, want := string(out), in+"|END|"; got != want {
			t.Errorf("sh read Quote(%q) = %s as %q; want %q", in, Quote(in), strings.TrimSuffix(got, "|END|"), in)
		}
	}
}
