package slacksim

import "sort"

// State is what the Slack emulator keeps across restarts besides its
// authorization server: teams and their members (ids derive from names).
type State struct {
	Teams map[string][]string `json:"teams"` // team name → member emails
}

// Snapshot copies the durable state.
func (s *Sim) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Teams: map[string][]string{}}
	for name, t := range s.teams {
		emails := []string{}
		for e := range t.users {
			emails = append(emails, e)
		}
		sort.Strings(emails)
		st.Teams[name] = emails
	}
	return st
}

// Restore recreates a snapshot's teams and members.
func (s *Sim) Restore(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, emails := range st.Teams {
		t := s.teamLocked(name)
		for _, e := range emails {
			t.user(e)
		}
	}
}
