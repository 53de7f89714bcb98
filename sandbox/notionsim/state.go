package notionsim

// State is what the Notion emulator keeps across restarts besides its
// authorization server: workspaces, users, installs (bots) and content.
type State struct {
	Workspaces map[string]*workspace `json:"workspaces"`
	Users      map[string]*user      `json:"users"`
	Bots       map[string]*bot       `json:"bots"`
	Objects    map[string]*object    `json:"objects"`
	Seq        uint64                `json:"seq"`
}

// Snapshot copies the durable state. The caller marshals it at once; the
// maps are copied, the records shared.
func (s *Sim) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Workspaces: map[string]*workspace{}, Users: map[string]*user{}, Bots: map[string]*bot{}, Objects: map[string]*object{}, Seq: s.seq}
	for k, v := range s.workspaces {
		st.Workspaces[k] = v
	}
	for k, v := range s.users {
		st.Users[k] = v
	}
	for k, v := range s.bots {
		st.Bots[k] = v
	}
	for k, v := range s.objects {
		st.Objects[k] = v
	}
	return st
}

// Restore replaces the emulator's data with a snapshot's.
func (s *Sim) Restore(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range st.Workspaces {
		s.workspaces[k] = v
	}
	for k, v := range st.Users {
		s.users[k] = v
		s.usersByID[v.ID] = v
	}
	for k, v := range st.Bots {
		if v.Shared == nil {
			v.Shared = map[string]bool{}
		}
		s.bots[k] = v
	}
	for k, v := range st.Objects {
		s.objects[k] = v
	}
	s.seq = max(s.seq, st.Seq)
}
