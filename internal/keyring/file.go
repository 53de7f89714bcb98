package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileMode is the permission of key files authgate writes.
const FileMode fs.FileMode = 0o600

// LoadFile reads a key file (the Parse format). It reports whether the file's
// permissions let others than the owner read it, so the caller can warn.
func LoadFile(path string) (k *Keyring, tooOpen bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	k, err = Parse(string(data))
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		tooOpen = true
	}
	return k, tooOpen, nil
}

// NewKeyID returns a fresh key id that says when it was made and cannot
// collide with another environment's ("k20261125-3fa9c2").
func NewKeyID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}

// CreateFile writes a new key file holding one fresh key, mode 0600. It fails
// if the file exists, so two processes starting at once cannot each write one.
func CreateFile(path string, now time.Time) (*Keyring, error) {
	key := Generate(NewKeyID(now))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString("# authgate master keys: id:base64, primary first. Keep this file secret and backed up.\n" + Format(key)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return New(key)
}

// LoadOrCreateFile loads path, or creates it when it does not exist. created
// says which happened.
func LoadOrCreateFile(path string, now time.Time) (k *Keyring, created, tooOpen bool, err error) {
	k, tooOpen, err = LoadFile(path)
	if err == nil {
		return k, false, tooOpen, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, err
	}
	k, err = CreateFile(path, now)
	if errors.Is(err, fs.ErrExist) { // another process won the race: use its file
		k, tooOpen, err = LoadFile(path)
		return k, false, tooOpen, err
	}
	return k, err == nil, false, err
}

// AddPrimaryToFile generates a new key, writes it as the primary at the top
// of the key file and keeps every existing key after it (they still decrypt).
// The file is replaced atomically.
func AddPrimaryToFile(path string, now time.Time) (*Keyring, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	if _, err := Parse(string(data)); err != nil {
		return nil, "", fmt.Errorf("key file %s: %w", path, err)
	}
	key := Generate(NewKeyID(now))
	tmp, err := os.CreateTemp(filepath.Dir(path), ".authgate-keys-*")
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		return nil, "", err
	}
	if _, err := tmp.WriteString(Format(key) + string(data)); err != nil {
		tmp.Close()
		return nil, "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, "", err
	}
	if err := tmp.Close(); err != nil {
		return nil, "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, "", err
	}
	k, _, err := LoadFile(path)
	return k, key.ID, err
}
