package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.savedPath == path && bytes.Equal(s.saved, data) {
		return nil // unchanged since the last save
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
	s.saved, s.savedPath = data, path
	return nil
}

// AutoSave saves the state to path every interval while it changes, until
// ctx ends: a crash (kill -9) loses at most one interval of sandbox state
// instead of everything since the start. Errors go to report.
func (s *Sandbox) AutoSave(ctx context.Context, path string, every time.Duration, report func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.SaveFile(path); err != nil && report != nil {
			report(err)
		}
	}
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
