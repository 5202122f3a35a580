package tapistest_test

import (
	"testing"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestGrantTypesPerTenant checks §2.6 row 4 against a tenant that allows
// fewer grant types than the default: the message lists the tenant's own
// list, and the check comes before the client check.
func TestGrantTypesPerTenant(t *testing.T) {
	s := newTenant(t, tapistest.Config{GrantTypes: []string{"password", "device_code"}})
	const want = "Invalid grant_type (refresh_token); this grant type is not allowed for this tenant. Allowable grant types: ['password', 'device_code']"
	body := `{"grant_type":"refresh_token","refresh_token":"x"}`
	for _, auth := range []string{"", basic("myclient1", "wrong")} {
		a := postTokens(t, s, auth, body)
		if a.status != 400 || a.env.Message != want || a.env.Status != "error" || string(a.env.Result) != "null" {
			t.Errorf("refresh on a password-only tenant (auth %q) = %d %q; want 400 %q", auth, a.status, a.env.Message, want)
		}
	}
	password(t, s, basic("myclient1", "mykey1"), "testuser1", "pw1")

	s.SetGrantTypes([]string{})
	a := postTokens(t, s, "", `{"grant_type":"password","username":"testuser1","password":"pw1"}`)
	if want := "Invalid grant_type (password); this grant type is not allowed for this tenant. Allowable grant types: []"; a.status != 400 || a.env.Message != want {
		t.Errorf("password with no grant allowed = %d %q; want 400 %q", a.status, a.env.Message, want)
	}

	s.SetGrantTypes(nil)
	r := password(t, s, basic("myclient1", "mykey1"), "testuser1", "pw1")
	mustTokens(t, refresh(t, s, basic("myclient1", "mykey1"), r.RefreshToken.RefreshToken))
}

// TestGrantTypesConfigCopied checks that the fake keeps its own copy of
// Config.GrantTypes.
func TestGrantTypesConfigCopied(t *testing.T) {
	types := []string{"password"}
	s := newTenant(t, tapistest.Config{GrantTypes: types})
	types[0] = "refresh_token"
	password(t, s, "", "testuser1", "pw1")
}
