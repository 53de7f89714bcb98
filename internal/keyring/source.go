package keyring

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Source is a keyring that follows its key file: when the file changes (a
// new primary from `authgate keys rotate --generate`, an old key retired) the
// running process picks it up without a restart. It stats the file at most
// once per CheckEvery, and reloads at once when it meets a key id it lacks.
// A keyring from the environment never changes; use Static for it.
type Source struct {
	cur  atomic.Pointer[Keyring]
	path string
	now  func() time.Time
	// CheckEvery bounds how often the file is stat'ed (default 5s).
	CheckEvery time.Duration
	// Check, if set, vets a changed file's keys before they are used (the
	// server makes sure they still open the database); a refused file keeps
	// the keys in force and is reported through OnRefuse.
	Check    func(*Keyring) error
	OnRefuse func(error)

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
}

// Static wraps a keyring that never reloads.
func Static(k *Keyring) *Source {
	s := &Source{}
	s.cur.Store(k)
	return s
}

// FileSource follows the key file at path, starting from k (loaded from it).
// now tells the time for the stat throttle.
func FileSource(k *Keyring, path string, now func() time.Time) *Source {
	s := &Source{path: path, now: now, CheckEvery: 5 * time.Second}
	s.cur.Store(k)
	if st, err := os.Stat(path); err == nil {
		s.modTime, s.size = st.ModTime(), st.Size()
	}
	s.checked = now()
	return s
}

// Current is the keyring in force.
func (s *Source) Current() *Keyring {
	s.maybeReload(false)
	return s.cur.Load()
}

// Primary is the id of the key that encrypts.
func (s *Source) Primary() string { return s.Current().Primary() }

// Seal encrypts with the current primary key.
func (s *Source) Seal(plaintext, ad []byte) Sealed { return s.Current().Seal(plaintext, ad) }

// Open decrypts; a ciphertext under a key this process lacks triggers one
// reload of the key file before the error stands.
func (s *Source) Open(sealed Sealed, ad []byte) ([]byte, error) {
	pt, err := s.Current().Open(sealed, ad)
	var uk *UnknownKeyError
	if errors.As(err, &uk) && s.maybeReload(true) {
		return s.cur.Load().Open(sealed, ad)
	}
	return pt, err
}

// maybeReload re-reads the file when it changed (or, when forced, whenever
// it may have); it reports whether a new keyring is in force. A file that no
// longer parses keeps the old keyring: a half-written edit must not take
// the keys away.
func (s *Source) maybeReload(force bool) bool {
	if s.path == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !force && now.Sub(s.checked) < s.CheckEvery {
		return false
	}
	s.checked = now
	st, err := os.Stat(s.path)
	if err != nil || (st.ModTime().Equal(s.modTime) && st.Size() == s.size) {
		return false
	}
	k, _, err := LoadFile(s.path)
	if err != nil {
		return false
	}
	s.modTime, s.size = st.ModTime(), st.Size()
	if s.Check != nil {
		if err := s.Check(k); err != nil {
			if s.OnRefuse != nil {
				s.OnRefuse(err)
			}
			return false
		}
	}
	s.cur.Store(k)
	return true
}
