package baseurl

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"https://tacc.tapis.io", "https://tacc.tapis.io"},
		{"https://tacc.tapis.io/", "https://tacc.tapis.io"},
		{"HTTPS://Tacc.Tapis.IO/", "https://tacc.tapis.io"},
		{"https://tacc.tapis.io:8443/prefix//", "https://tacc.tapis.io:8443/prefix"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.1.2.3", "http://127.1.2.3"},
		{"http://[::1]:9000/", "http://[::1]:9000"},
		{"http://[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]"},
		{"http://localhost:5000", "http://localhost:5000"},
		{"http://LocalHost", "http://localhost"},
		{"http://tacc.tapis.io", ""},
		{"http://10.0.0.1", ""},
		{"http://localhost.evil.com", ""},
		{"ftp://tacc.tapis.io", ""},
		{"tacc.tapis.io", ""},
		{"https://", ""},
		{"https:///path", ""},
		{"https://tacc.tapis.io?x=1", ""},
		{"https://tacc.tapis.io/?", ""},
		{"https://tacc.tapis.io#frag", ""},
		{"https://tacc.tapis.io/v3", ""},
		{"https://tacc.tapis.io/prefix/v3/", ""},
		{"", ""},
		{"://bad", ""},
	}
	for _, tc := range cases {
		got, err := Normalize(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Normalize(%q) = %q, nil; want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("Normalize(%q) error %v; want %q", tc.in, err, tc.want)
		case got != tc.want:
			t.Errorf("Normalize(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeHidesUserinfo(t *testing.T) {
	for _, in := range []string{
		"https://jdoe:hunter2@tacc.tapis.io",
		"//jdoe:hunter2@tacc.tapis.io",
		"jdoe:hunter2@tacc.tapis.io",
		"https://jdoe:hunter2@tacc.tapis.io/%zz",
	} {
		_, err := Normalize(in)
		if err == nil {
			t.Errorf("Normalize(%q) = nil error; want one", in)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Normalize(%q) error %q repeats the password", in, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	cases := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"localhost.example.org", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"tacc.tapis.io", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := IsLoopback(tc.host); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v; want %v", tc.host, got, tc.want)
		}
	}
}

func TestDefault(t *testing.T) {
	if got, want := Default("designsafe"), "https://designsafe.tapis.io"; got != want {
		t.Errorf("Default(designsafe) = %q; want %q", got, want)
	}
	if _, err := Normalize(Default("designsafe")); err != nil {
		t.Errorf("Normalize(Default(designsafe)): %v", err)
	}
}
