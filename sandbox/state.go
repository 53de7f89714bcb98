package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/authgate/authgate/sandbox/googlesim"
	"github.com/authgate/authgate/sandbox/notionsim"
	"github.com/authgate/authgate/sandbox/oauthcore"
	"github.com/authgate/authgate/sandbox/slacksim"
)

// state is the sandbox's durable state, as its state file holds it.
type state struct {
	Version int                        `json:"version"`
	Servers map[string]oauthcore.State `json:"servers"`
	Google  googlesim.State            `json:"google"`
	Notion  notionsim.State            `json:"notion"`
	Slack   slacksim.State             `json:"slack"`
}

const stateVersion = 1

// SaveFile writes the sandbox's state (clients, grants, live tokens,
// accounts, Notion content) to path, atomically and mode 0600: it holds
// sandbox tokens and client secrets. Faults and counters are not saved.
func (s *Sandbox) SaveFile(path string) error {
	st := state{Version: stateVersion, Servers: map[string]oauthcore.State{}, Google: s.google.Snapshot(), Notion: s.notion.Snapshot(), Slack: s.slack.Snapshot()}
	for name, p := range s.providers {
		st.Servers[name] = p.Core().Snapshot()
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sandbox-state-*")
	if err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	defer os.Remove(tmp.Name())
	_ = tmp.Chmod(0o600)
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("sandbox state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sandbox state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	return nil
}

// LoadFile restores what SaveFile wrote; a missing file is a fresh start.
func (s *Sandbox) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("sandbox state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("sandbox state %s: version %d, want %d (delete the file to start over)", path, st.Version, stateVersion)
	}
	s.google.Restore(st.Google)
	s.notion.Restore(st.Notion)
	s.slack.Restore(st.Slack)
	for name, ss := range st.Servers {
		if p, ok := s.providers[name]; ok {
			p.Core().Restore(ss)
		}
	}
	return nil
}
