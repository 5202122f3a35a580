// Package baseurl holds the rules for a Tapis tenant's base URL, the root
// every API path hangs from (https://designsafe.tapis.io): the config
// loader checks base_url with them and the upstream client checks the URL
// it is given, so both accept exactly the same URLs.
//
// It imports nothing of tapis-agent, so that the config loader need not
// import the upstream client.
package baseurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Default returns the Tapis base-URL template for tenant:
// https://<tenant>.tapis.io.
func Default(tenant string) string {
	return "https://" + tenant + ".tapis.io"
}

// Normalize checks a tenant base URL and returns it without a trailing
// slash, with the scheme and host in lower case. The URL must be https, or
// http on a loopback host (see IsLoopback) for tests and local fakes; it
// must name a host and have no user info, query or fragment, and it is the
// tenant's root, without /v3.
//
// Its errors read as predicates of the URL ("must be https (got …)"), to
// follow the name of what was checked; they never repeat user info.
func Normalize(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", fmt.Errorf("must be a URL such as https://designsafe.tapis.io (got %q)", withoutUserinfo(s))
	}
	if u.Scheme == "" {
		return "", fmt.Errorf("must be an https:// URL; write https://%s", withoutUserinfo(strings.TrimPrefix(s, "//")))
	}
	if u.User != nil {
		return "", errors.New("must not contain a username or password; set username instead")
	}
	host := strings.ToLower(u.Host)
	shown := u.Scheme + "://" + host + u.EscapedPath()
	switch {
	case u.Hostname() == "":
		return "", fmt.Errorf("must name a host, such as https://designsafe.tapis.io (got %s)", shown)
	case u.Scheme == "http" && !IsLoopback(u.Hostname()):
		return "", fmt.Errorf("must be https (got %s); use https:// or a loopback address", shown)
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("must be https (got %s://); use https:// or http:// on a loopback address", u.Scheme)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("must not have a query or fragment (got %s…)", shown)
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	if p == "/v3" || strings.HasSuffix(p, "/v3") {
		return "", fmt.Errorf("is the tenant's root URL, without /v3 (got %s); use %s", shown, u.Scheme+"://"+host+strings.TrimSuffix(p, "/v3"))
	}
	return u.Scheme + "://" + host + p, nil
}

// IsLoopback reports whether host names the local machine: localhost (in
// any case) or a loopback IP address (127.0.0.0/8, ::1, or either mapped).
// A name that merely starts with localhost, such as localhost.example.org,
// is not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// withoutUserinfo drops what may be user info (everything up to the last
// '@') from a URL that did not parse, before an error repeats it.
func withoutUserinfo(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return "…" + s[i+1:]
	}
	return s
}
