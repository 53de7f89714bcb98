package googlesim

import "sort"

// State is what the Google emulator keeps across restarts besides its
// authorization server: the accounts tokens were issued to (their subjects
// derive from their emails, and seeded Drive files are seeded again).
type State struct {
	Accounts []string `json:"accounts"`
}

// Snapshot copies the durable state.
func (s *Sim) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{}
	for email := range s.accounts {
		st.Accounts = append(st.Accounts, email)
	}
	sort.Strings(st.Accounts)
	return st
}

// Restore recreates the accounts of a snapshot.
func (s *Sim) Restore(st State) {
	for _, e := range st.Accounts {
		s.AccountFor(e)
	}
}
