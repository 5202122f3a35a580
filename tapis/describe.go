package tapis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"unicode"

	"github.com/tapis-agent/tapis-agent/secret"
)

// NetFault says why no answer came from upstream at all.
type NetFault int

// Network faults of a failed call.
const (
	// FaultNone: upstream answered (or the error is not a call's).
	FaultNone NetFault = iota
	// FaultUnknownHost: DNS does not know the host (a mistyped tenant,
	// or no network at all).
	FaultUnknownHost
	// FaultRefused: the host refused the connection; nothing listens on
	// the port.
	FaultRefused
	// FaultTimeout: no answer within the call's timeout (a black-holed
	// address, a hanging server).
	FaultTimeout
	// FaultNoRoute: the network or host is unreachable from here.
	FaultNoRoute
	// FaultTLS: the TLS handshake failed, usually an untrusted
	// certificate.
	FaultTLS
	// FaultOther: any other transport failure (a dropped connection).
	FaultOther
)

// Fault returns the network fault behind err, FaultNone when upstream
// answered.
func Fault(err error) NetFault {
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 0 || e.Reason != ReasonUpstream {
		return FaultNone
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var verErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return FaultUnknownHost
	case errors.Is(err, syscall.ECONNREFUSED):
		return FaultRefused
	case errors.Is(err, ErrTimeout), errors.As(err, &netErr) && netErr.Timeout():
		return FaultTimeout
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return FaultNoRoute
	case errors.As(err, &uaErr), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &verErr):
		return FaultTLS
	case errors.As(err, &dnsErr):
		// "server misbehaving", no resolver reachable: no network.
		return FaultNoRoute
	}
	return FaultOther
}

// Describe says in words for people why an upstream call failed: the
// status line Tapis (or a proxy before it) sent with its message or the
// start of its page, or what became of the connection. It never repeats
// Go's error chain, nor a secret.
func Describe(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	where := e.BaseURL
	if where == "" {
		where = "Tapis"
	}
	status := e.Status
	if status == "" && e.StatusCode != 0 {
		status = fmt.Sprint(e.StatusCode)
	}
	switch {
	case e.Reason == ReasonCanceled:
		return "the call to " + where + " was canceled"
	case e.Message != "":
		return fmt.Sprintf("%s answered %s: %s", where, status, e.Message)
	case e.ContentType != "" || (e.StatusCode != 0 && e.Body != ""):
		ct := e.ContentType
		if ct == "" {
			ct = "no content type"
		}
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		s := fmt.Sprintf("%s answered %s with %s, not a Tapis answer", where, status, ct)
		if e.Body != "" {
			s += ": " + e.Body
		}
		return s
	case e.StatusCode != 0:
		return fmt.Sprintf("%s answered %s with a body that is not a Tapis answer", where, status)
	}
	switch Fault(err) {
	case FaultUnknownHost:
		return "no tenant answers at " + where + ": its host name is not known"
	case FaultRefused:
		return "nothing answers at " + where + ": the connection was refused"
	case FaultTimeout:
		if e.timeout > 0 {
			return fmt.Sprintf("%s did not answer within %s", where, e.timeout)
		}
		return where + " did not answer in time"
	case FaultNoRoute:
		return where + " cannot be reached from here: no route to it (is the network up?)"
	case FaultTLS:
		return "the TLS connection to " + where + " failed: its certificate is not trusted here (a site proxy needs ca_file)"
	}
	if e.Err != nil {
		return fmt.Sprintf("the call to %s failed: %v", where, e.Err)
	}
	return e.Error()
}

// maxSnippet bounds the start of a non-Tapis body kept in an *Error.
const maxSnippet = 120

// bodySnippet returns the start of a body that is not a Tapis answer,
// for people: HTML tags dropped, white space folded, unprintable runes
// and every value sent with the request removed.
func bodySnippet(b []byte, secrets []secret.Value) string {
	s := string(b)
	if len(s) > 4096 {
		s = s[:4096]
	}
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v.Reveal(), secret.Redacted)
		}
	}
	var out strings.Builder
	inTag, space := false, false
	for _, r := range strings.ToValidUTF8(s, "") {
		switch {
		case r == '<':
			inTag = true
			continue
		case r == '>' && inTag:
			inTag = false
			space = true
			continue
		case inTag:
			continue
		case unicode.IsSpace(r) || !unicode.IsPrint(r):
			space = true
			continue
		}
		if space && out.Len() > 0 {
			out.WriteByte(' ')
		}
		space = false
		out.WriteRune(r)
	}
	return truncate(out.String(), maxSnippet)
}
