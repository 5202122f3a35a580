package agent

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis"
)

// ProbeTimeout bounds the check that a tenant answers, made before the
// user is asked for any secret: a black-holed address must not leave a
// blank screen for the 30 s of an ordinary call. With the start of
// tapis-token and the agent's answer, the user knows within 10 s.
const ProbeTimeout = 7 * time.Second

// knownTenants are tenants served at https://<name>.tapis.io, offered
// when a name does not resolve, besides the tenants the agent knows.
var knownTenants = []string{"tacc", "designsafe", "portals", "a2cps", "vdj"}

// probe answers a LoginRequest with Probe: the grant types the tenant
// allows, or why no Tapis authenticator answers at its base URL.
func (a *Agent) probe(ctx context.Context, name string) (*ipc.LoginResponse, error) {
	t := a.Config().TenantOrDefault(name)
	api, err := a.newAPITimeout(t, ProbeTimeout)
	if err != nil {
		return nil, err
	}
	types, err := api.GrantTypes(ctx)
	if err != nil {
		return nil, a.probeError(name, t, err)
	}
	return &ipc.LoginResponse{Tenant: a.tenantStatus(name), GrantTypes: types}, nil
}

// probeError says why the tenant could not be reached, in the user's
// words: a name DNS does not know (with the tenant the user may have
// meant), a refused connection, no answer within ProbeTimeout, or an
// answer that is not Tapis's.
func (a *Agent) probeError(name string, t *config.Tenant, err error) error {
	where := t.BaseURL
	host := where
	if u, perr := url.Parse(where); perr == nil {
		host = u.Hostname()
	}
	checkURL := "check base_url under [tenants." + name + "] in the config"
	if a.Config().Lookup(name) == nil {
		checkURL = "set base_url under [tenants." + name + "] in the config if the tenant lives elsewhere"
	}
	switch tapis.Fault(err) {
	case tapis.FaultUnknownHost:
		msg := "no tenant answers at " + where + ": check the name"
		if m := a.didYouMean(name); m != "" {
			msg += " (did you mean " + m + "?)"
		}
		return &ipc.Error{Code: ipc.CodeUnknownTenant, Message: msg,
			Hint: "DNS does not know " + host + "; if the name is right, check the network, or " + checkURL}
	case tapis.FaultRefused:
		return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "nothing answers at " + where + ": the connection was refused",
			Hint: "is the address right? " + checkURL}
	case tapis.FaultTimeout:
		return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: fmt.Sprintf("%s did not answer within %s", where, ProbeTimeout),
			Hint: "the network or a firewall drops the connection, or the address is wrong; " + checkURL}
	case tapis.FaultNone:
		if tapis.IsTransient(err) {
			return &ipc.Error{Code: ipc.CodeUpstreamUnavailable,
				Message: where + " does not answer as a Tapis authenticator: " + tapis.Describe(err),
				Hint:    "if Tapis itself is failing, try again in a minute; otherwise " + checkURL}
		}
	}
	return &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: tapis.Describe(err),
		Hint: "check the network; " + checkURL}
}

// didYouMean returns the tenant name closest to name among the tenants
// the agent knows of, when one is a likely typo of it; "" otherwise.
func (a *Agent) didYouMean(name string) string {
	cands := slices.Clone(knownTenants)
	cands = append(cands, a.Config().TenantNames()...)
	a.mu.Lock()
	for n := range a.tenants {
		cands = append(cands, n)
	}
	a.mu.Unlock()
	best, bestD := "", 3
	for _, c := range cands {
		if c == name {
			continue
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(1, len(name)/4) {
		return best
	}
	return ""
}

// editDistance is the Damerau–Levenshtein distance (adjacent swaps count
// once: desginsafe is one step from designsafe).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
