package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// TestImportChecksTheSourceTenant: credentials whose source names another
// tenant address are refused before anything is asked of upstream, and the
// session held stays.
func TestImportChecksTheSourceTenant(t *testing.T) {
	w := newWorld(t, "alpha", "beta")
	w.login(t, "alpha")
	held := w.token(t, "alpha")
	access, _ := w.fakes["alpha"].IssueTokens("jdoe", "")
	cases := []struct{ name, base, want string }{
		{"another tenant", w.fakes["beta"].URL(), "holds credentials for " + w.fakes["beta"].URL()},
		{"tapis v2", "https://api.tacc.utexas.edu", "holds credentials for https://api.tacc.utexas.edu"},
		{"not a base url", "ftp://x", "not a Tapis v3 base URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.a.Import(context.Background(), &ipc.ImportRequest{Tenant: "alpha", AccessToken: access, BaseURL: tc.base, Source: "environment"})
			if code(err) != ipc.CodeBadRequest || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "environment") {
				t.Errorf("import = %v; want bad_request saying %q and naming the source", err, tc.want)
			}
			if w.token(t, "alpha") != held {
				t.Errorf("a refused import replaced the session")
			}
		})
	}
	// The tenant's own address, written differently, is the same.
	if _, err := w.a.Import(context.Background(), &ipc.ImportRequest{Tenant: "alpha", AccessToken: access, BaseURL: w.fakes["alpha"].URL() + "/"}); err != nil {
		t.Errorf("import naming the tenant's base URL with a slash: %v", err)
	}
}

// TestImportLogin: a username and password log in, through the client
// given or the agent's own; a wrong password changes nothing.
func TestImportLogin(t *testing.T) {
	w := newWorld(t, "alpha")
	fake := w.fakes["alpha"]
	if err := fake.AddClient("jdoe", "cid", "ckey"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := w.a.Import(ctx, &ipc.ImportRequest{Tenant: "alpha", Username: "jdoe", Password: "pw-alpha", ClientID: "cid", ClientKey: "ckey"})
	if err != nil || st.State != ipc.StateReady || st.ClientID != "cid" {
		t.Fatalf("import of a password with a client = %+v, %v; want ready with client cid", st, err)
	}
	held := w.token(t, "alpha")
	if _, err := w.a.Import(ctx, &ipc.ImportRequest{Tenant: "alpha", Username: "jdoe", Password: "wrong"}); code(err) != ipc.CodeBadCredentials {
		t.Errorf("import of a wrong password = %v; want %s", err, ipc.CodeBadCredentials)
	}
	if _, err := w.a.Import(ctx, &ipc.ImportRequest{Tenant: "alpha", Username: "jdoe", Password: "pw-alpha", ClientID: "cid", ClientKey: "nope"}); code(err) != ipc.CodeBadClient {
		t.Errorf("import with a wrong client key = %v; want %s", err, ipc.CodeBadClient)
	}
	if _, err := w.a.Import(ctx, &ipc.ImportRequest{Tenant: "alpha", Username: "jdoe", Password: "pw-alpha", ClientID: "cid"}); code(err) != ipc.CodeBadRequest {
		t.Errorf("import with a client and no key = %v; want %s", err, ipc.CodeBadRequest)
	}
	if w.token(t, "alpha") != held {
		t.Errorf("a refused import replaced the session")
	}
	st, err = w.a.Import(ctx, &ipc.ImportRequest{Tenant: "alpha", Username: "jdoe", Password: "pw-alpha"})
	if err != nil || st.State != ipc.StateReady || st.ClientID == "" || st.ClientID == "cid" {
		t.Errorf("import of a password alone = %+v, %v; want ready with the agent's own client", st, err)
	}
}
