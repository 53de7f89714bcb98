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
