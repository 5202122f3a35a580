package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// a *Error with a message, and that every configuration it accepts keeps
// the invariants the rest of the agent relies on. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("default_tenant = \"ds\"\nrefresh_margin = \"1h\"\n[tenants.ds]\nbase_url = \"https://designsafe.tapis.io/\"\nusername = \"jdoe\"\n"))
	f.Add([]byte("[tenants.dev]\nbase_url = \"http://127.0.0.1:5000\"\npassword_command = \"/bin/sh -c 'echo pw'\"\n"))
	f.Add([]byte("tenants = { a = { base_url = \"http://[::1]\" }, b = {} }\n"))
	f.Add([]byte("[[tenants]]\n"))
	f.Add([]byte("log_level = \"\xff\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("config.toml", data)
		if err != nil {
			if cfg != nil {
				t.Errorf("Parse returned a config and the error %v", err)
			}
			checkErrors(t, err)
			return
		}
		if cfg == nil || cfg.Tenants == nil {
			t.Fatalf("Parse = %v, nil; want a config with a tenant map", cfg)
		}
		if cfg.DefaultTenant != "" && ValidTenantName(cfg.DefaultTenant) != nil {
			t.Errorf("accepted default_tenant %q: %v", cfg.DefaultTenant, ValidTenantName(cfg.DefaultTenant))
		}
		if cfg.RefreshMargin < 0 || cfg.RefreshMargin >= MaxRefreshMargin {
			t.Errorf("accepted refresh_margin %v", cfg.RefreshMargin)
		}
		for name, tn := range cfg.Tenants {
			if tn.Name != name || ValidTenantName(name) != nil {
				t.Errorf("accepted tenant %q named %q", name, tn.Name)
			}
			if strings.HasSuffix(tn.BaseURL, "/") {
				t.Errorf("tenant %s: base_url %q keeps a trailing slash", name, tn.BaseURL)
			}
			if !strings.HasPrefix(tn.BaseURL, "https://") {
				host, _ := strings.CutPrefix(tn.BaseURL, "http://")
				if host == tn.BaseURL || !(strings.HasPrefix(host, "localhost") || strings.HasPrefix(host, "127.") || strings.HasPrefix(host, "[::1]") || strings.HasPrefix(host, "[::ffff:127.")) {
					t.Errorf("tenant %s: accepted non-https base_url %q", name, tn.BaseURL)
				}
			}
			if (tn.ClientID == "") != tn.ClientKey.IsZero() {
				t.Errorf("tenant %s: client id and key not set together", name)
			}
			if tn.PasswordCommand != nil && tn.PasswordCommand[0] == "" {
				t.Errorf("tenant %s: empty program in password_command", name)
			}
		}
	})
}

// checkErrors fails unless err and every error joined in it is a *Error
// with a message.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			checkErrors(t, e)
		}
		return
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *config.Error", err, err)
	}
	if ce.Msg == "" || ce.File != "config.toml" {
		t.Errorf("error %#v lacks a message or the file name", ce)
	}
}
