package suggest

import "testing"

func TestClosest(t *testing.T) {
	commands := []string{"login", "logout", "status", "claims", "import", "version", "help"}
	cases := []struct {
		word string
		cand []string
		want string
	}{
		{"lgoin", commands, "login"},
		{"statsu", commands, "status"},
		{"logot", commands, "logout"},
		{"login", commands, ""}, // not a typo
		{"designsafe", commands, ""},
		{"dev", commands, ""},
		{"", commands, ""},
		{"--jsn", []string{"--json", "--env", "-H"}, "--json"},
		{"--min-vaild", []string{"--min-valid", "--json"}, "--min-valid"},
		{"--minvalid", []string{"--json", "--min-valid"}, "--min-valid"},
		{"baseURL", []string{"username", "base_url"}, "base_url"},
		{"desginsafe", []string{"tacc", "designsafe"}, "designsafe"},
		{"xyz", []string{"tacc", "designsafe"}, ""},
	}
	for _, tc := range cases {
		if got := Closest(tc.word, tc.cand); got != tc.want {
			t.Errorf("Closest(%q, %q) = %q; want %q", tc.word, tc.cand, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"login", "lgoin", 1},
		{"kitten", "sitting", 3},
		{"ca", "abc", 3}, // OSA, not Damerau: no edit of a swapped pair
		{string(make([]byte, 65)), "a", 1 << 30},
	}
	for _, tc := range cases {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestClosestAllocatesNothing(t *testing.T) {
	cand := []string{"login", "logout", "status"}
	if n := testing.AllocsPerRun(100, func() { Closest("lgoin", cand) }); n != 0 {
		t.Errorf("Closest allocates %v times; want 0", n)
	}
}
