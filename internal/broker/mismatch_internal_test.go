package broker

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/vault"
)

// TestMismatchMessageNamesBothAccounts: two accounts that share an email (a
// deleted and re-created Google account, an imported credential with another
// subject) are told apart by their ids, never "belongs to alice, but you
// signed in as alice".
func TestMismatchMessageNamesBothAccounts(t *testing.T) {
	t.Parallel()
	same := mismatchMessage(&vault.IdentityMismatchError{Expected: "alice@example.com", Got: "alice@example.com",
		ExpectedSubject: "1093847561", GotSubject: "sandbox-sub-42"}, "Google")
	if !strings.Contains(same, "alice@example.com (account id 1093847561)") || !strings.Contains(same, "alice@example.com (account id sandbox-sub-42)") {
		t.Fatalf("same email: %q", same)
	}
	ws := mismatchMessage(&vault.IdentityMismatchError{Expected: "ann@acme.example", Got: "ann@acme.example", ExpectedSubject: "U1", GotSubject: "U1",
		ExpectedWorkspace: "T1", GotWorkspace: "T2"}, "Slack")
	if !strings.Contains(ws, "workspace T1") || !strings.Contains(ws, "workspace T2") {
		t.Fatalf("same person, other workspace: %q", ws)
	}
	other := mismatchMessage(&vault.IdentityMismatchError{Expected: "alice@acme.example", Got: "mallory@acme.example"}, "Google")
	if !strings.Contains(other, "belongs to alice@acme.example, but you signed in to Google as mallory@acme.example") {
		t.Fatalf("other account: %q", other)
	}
}

// TestExpectedAccountNeedsVouchedValues: expected_account matches only what
// the provider vouches for, compared without Unicode case folding.
func TestExpectedAccountNeedsVouchedValues(t *testing.T) {
	t.Parallel()
	slack := identity{subject: "U1", workspace: "T1", domain: "Acme"} // a Slack team name anyone can choose
	oidcUnverified := identity{subject: "s1", email: "alice@acme.example"}
	google := identity{subject: "g1", email: "kate@acme.example", emailVerified: true, domain: "acme.example", domainVerified: true}
	for _, tc := range []struct {
		id       identity
		expected string
		want     bool
	}{
		{slack, "acme", false},
		{slack, "T1", true},
		{slack, "U1", true},
		{oidcUnverified, "alice@acme.example", false},
		{oidcUnverified, "s1", true},
		{google, "KATE@acme.example", true},
		{google, "\u212Aate@acme.example", false}, // Kelvin sign, which EqualFold equates with k
		{google, "ACME.example", true},
		{google, "acme.exampl\u017F", false}, // long s
	} {
		if got := tc.id.matches(tc.expected); got != tc.want {
			t.Errorf("%+v matches %q = %v, want %v", tc.id, tc.expected, got, tc.want)
		}
	}
}
