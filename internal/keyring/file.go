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

// CreateFile writes a new key file holding one fresh key, mode 0600,
// atomically: the key is written and fsynced to a temporary file in the same
// directory, which is then hard-linked into place (failing if the file
// exists, so two processes starting at once cannot each write one) and the
// directory fsynced. A crash leaves no file or a complete one, never an
// empty or half-written key file.
func CreateFile(path string, now time.Time) (*Keyring, error) {
	key := Generate(NewKeyID(now))
	content := "# authgate master keys: id:base64, primary first. Keep this file secret and backed up.\n" + Format(key)
	if err := writeNew(path, []byte(content)); err != nil {
		return nil, err
	}
	return New(key)
}

// writeNew creates path with data unless it exists (fs.ErrExist).
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".authgate-keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadOrCreateFile loads path, or creates it when it does not exist (or is
// empty: what an unsafe writer's crash used to leave). created says which
// happened.
func LoadOrCreateFile(path string, now time.Time) (k *Keyring, created, tooOpen bool, err error) {
	k, tooOpen, err = LoadFile(path)
	if err == nil {
		return k, false, tooOpen, nil
	}
	if IsEmptyFile(path) {
		if err := os.Remove(path); err != nil {
			return nil, false, false, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, err
	}
	k, err = CreateFile(path, now)
	if errors.Is(err, fs.ErrExist) { // another process won the race: use its file
		k, tooOpen, err = LoadFile(path)
		return k, false, tooOpen, err
	}
	return k, err == nil, false, err
}

// IsEmptyFile reports whether path exists and holds nothing.
func IsEmptyFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Size() == 0
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
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, "", err
	}
	k, _, err := LoadFile(path)
	return k, key.ID, err
}
