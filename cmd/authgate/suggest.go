package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
)

// oneOf refuses a flag value that is not one of allowed, suggesting the
// nearest when it is a likely typo: `--provider gogle` must fail, not print
// an empty table with exit 0. An empty value means "no filter".
func oneOf(flag, value string, allowed []string) error {
	if value == "" || slices.Contains(allowed, value) {
		return nil
	}
	msg := fmt.Sprintf("unknown %s %q", strings.TrimPrefix(flag, "--"), value)
	if s := nearest(value, allowed); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return fmt.Errorf("%s (known: %s)", msg, strings.Join(allowed, ", "))
}

// knownProviders are the provider names a --provider flag may name here:
// the built-in ones and the providers file's.
func knownProviders() ([]string, error) {
	return catalog.ProviderNames(os.Getenv("AUTHGATE_PROVIDERS_FILE"))
}

// checkProvider is oneOf for a --provider flag.
func checkProvider(value string) error {
	if value == "" {
		return nil
	}
	names, err := knownProviders()
	if err != nil {
		return err
	}
	return oneOf("--provider", value, names)
}

var (
	credentialStatuses = []string{string(authgate.CredentialStatusActive), string(authgate.CredentialStatusReauthRequired), string(authgate.CredentialStatusRevoked)}
	runStates          = []string{string(authgate.RunStatePending), string(authgate.RunStateRunning), string(authgate.RunStateBlockedOnAuth),
		string(authgate.RunStateSucceeded), string(authgate.RunStateFailed), string(authgate.RunStateCanceled)}
)

// nearest is the allowed value v starts, else the one closest to v by edit
// distance when close enough to be a typo (a third of its length, at most 3).
func nearest(v string, allowed []string) string {
	// A prefix ("blocked" for blocked_on_auth) is the likeliest slip.
	if i := slices.IndexFunc(allowed, func(a string) bool { return len(v) >= 3 && strings.HasPrefix(a, strings.ToLower(v)) }); i >= 0 {
		return allowed[i]
	}
	best, bestD := "", min(3, max(1, len(v)/3))+1
	for _, a := range allowed {
		if d := editDistance(strings.ToLower(v), a); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, by bytes (flag
// values are ASCII names).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
