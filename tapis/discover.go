package tapis

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

const pathWellKnown = "/v3/oauth2/.well-known/oauth-authorization-server"

// Grant types a tenant may allow.
const (
	GrantPassword          = "password"
	GrantAuthorizationCode = "authorization_code"
	GrantDeviceCode        = "device_code"
	GrantRefreshToken      = "refresh_token"
	GrantImplicit          = "implicit"
)

// GrantTypes returns the grant types the tenant allows, without any
// credential: from its OAuth metadata document, whose
// grant_types_supported is the tenant's live list, else from the error a
// bogus grant type gets, which lists them too (tapis-flows.md §6). It is
// also the cheapest check that a Tapis authenticator answers at the base
// URL at all.
func (c *Client) GrantTypes(ctx context.Context) ([]string, error) {
	var res struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	err := c.do(ctx, request{op: "oauth metadata", method: http.MethodGet, path: pathWellKnown}, &res)
	if err == nil && len(res.GrantTypes) > 0 {
		return res.GrantTypes, nil
	}
	if Fault(err) != FaultNone || errors.Is(err, context.Canceled) {
		// No answer at all: asking again elsewhere only doubles the wait.
		return nil, err
	}
	probe := request{op: "grant types", method: http.MethodPost, path: pathTokens,
		body: map[string]string{"grant_type": "tapis-agent-probe"}}
	perr := c.do(ctx, probe, nil)
	var e *Error
	if errors.As(perr, &e) {
		if _, list, found := strings.Cut(e.Message, "Allowable grant types: "); found {
			if types := parsePyList(list); len(types) > 0 {
				return types, nil
			}
		}
	}
	if err == nil {
		err = perr
	}
	return nil, err
}

// parsePyList reads a Python list of strings as repr prints it:
// ['password', 'device_code'].
func parsePyList(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil
	}
	var out []string
	for _, item := range strings.Split(s[1:len(s)-1], ",") {
		item = strings.Trim(strings.TrimSpace(item), `'"`)
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}
