package wire

import (
	"net/url"
	"testing"
)

func TestQueryEscape(t *testing.T) {
	cases := []string{"", "designsafe", "a b", "a+b&c=d", "é/?#%", "\x00\xff", "x-y_z.~"}
	for _, s := range cases {
		got, err := url.ParseQuery("tenant=" + queryEscape(s))
		if err != nil {
			t.Fatalf("ParseQuery(tenant=%s) = %v", queryEscape(s), err)
		}
		if v := got.Get("tenant"); v != s {
			t.Errorf("queryEscape(%q) = %q, which decodes to %q", s, queryEscape(s), v)
		}
	}
	if got, want := queryEscape("a b&c"), "a%20b%26c"; got != want {
		t.Errorf("queryEscape(%q) = %q; want %q", "a b&c", got, want)
	}
}
