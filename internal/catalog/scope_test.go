package catalog_test

import (
	"slices"
	"testing"

	"github.com/authgate/authgate/internal/catalog"
)

// TestScopeEquivalents: a scope is granted under any name the provider
// grants it under, and only for that provider.
func TestScopeEquivalents(t *testing.T) {
	t.Parallel()
	c, err := catalog.Load(catalog.Options{SandboxBase: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	google, _ := c.Get("google")
	oidc, _ := c.Get("oidc")
	const long = "https://www.googleapis.com/auth/userinfo.email"
	granted := []string{"openid", long, "https://www.googleapis.com/auth/userinfo.profile", "https://www.googleapis.com/auth/drive.file"}
	cases := []struct {
		p       *catalog.Provider
		granted []string
		want    []string
		missing []string
	}{
		{google, granted, []string{"openid", "email", "profile", "https://www.googleapis.com/auth/drive.file"}, nil},
		{google, []string{"openid", "email"}, []string{long, "https://www.googleapis.com/auth/userinfo.profile"}, []string{"https://www.googleapis.com/auth/userinfo.profile"}},
		{google, granted, []string{"https://www.googleapis.com/auth/drive"}, []string{"https://www.googleapis.com/auth/drive"}},
		// Other providers compare names as they are.
		{oidc, []string{long}, []string{"email"}, []string{"email"}},
	}
	for _, tc := range cases {
		if got := tc.p.Ungranted(tc.want, tc.granted); !slices.Equal(got, tc.missing) {
			t.Errorf("%s: Ungranted(%v, %v) = %v; want %v", tc.p.Name, tc.want, tc.granted, got, tc.missing)
		}
	}
	// Actions read the same comparison: identity.read is satisfied by the long name.
	if m, err := google.Missing([]string{"identity.read"}, []string{long}); err != nil || len(m) != 0 {
		t.Fatalf("Missing(identity.read) = %v, %v", m, err)
	}
}
