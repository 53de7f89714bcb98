// Package keyring encrypts credential secrets at rest with AES-256-GCM.
//
// A Keyring holds several 256-bit keys, each with an id; the primary key
// encrypts, any loaded key decrypts. Every ciphertext is stored beside the id
// of the key that made it, so keys can rotate without a flag day, and every
// ciphertext is bound by GCM associated data to the place it belongs (the
// caller passes e.g. credential id + field name): a ciphertext copied into
// another row or field fails to decrypt instead of yielding someone else's token.
//
// This package never logs, and its errors never contain key material or
// plaintext.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the length of every key in bytes (AES-256).
const KeySize = 32

// Sealed is a ciphertext with the id of the key that made it. Data is the GCM
// nonce followed by the sealed bytes. The zero value means "no secret stored".
type Sealed struct {
	KeyID string
	Data  []byte
}

// IsZero reports whether nothing is sealed.
func (s Sealed) IsZero() bool { return s.KeyID == "" && len(s.Data) == 0 }

// UnknownKeyError is returned when a ciphertext was made with a key this
// process has not loaded — almost always two environments with different keys
// pointed at one database.
type UnknownKeyError struct{ KeyID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("encrypted with key %s, which this process does not have: environment mismatch?", e.KeyID)
}

// ErrMismatch is returned when a ciphertext does not authenticate under its
// key and associated data: it was moved from another row or field, or altered.
var ErrMismatch = errors.New("ciphertext does not belong here (moved from another row or field, or altered)")

// Key is one named key.
type Key struct {
	ID       string
	Material []byte // KeySize bytes
}

// Keyring is safe for concurrent use; it is immutable after New.
type Keyring struct {
	primary string
	ids     []string // in the order given, primary first
	aeads   map[string]cipher.AEAD
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// New builds a keyring; keys[0] is the primary.
func New(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	k := &Keyring{primary: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, key := range keys {
		if !keyIDPattern.MatchString(key.ID) {
			return nil, fmt.Errorf("keyring: key id %q: use 1-64 of A-Z a-z 0-9 _ . -", key.ID)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("keyring: key id %s appears twice", key.ID)
		}
		if len(key.Material) != KeySize {
			return nil, fmt.Errorf("keyring: key %s is %d bytes; want %d (AES-256)", key.ID, len(key.Material), KeySize)
		}
		block, err := aes.NewCipher(key.Material)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %s: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %s: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
		k.ids = append(k.ids, key.ID)
	}
	return k, nil
}

// Primary is the id of the key that encrypts.
func (k *Keyring) Primary() string { return k.primary }

// IDs lists the loaded key ids, primary first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// Has reports whether the key id is loaded.
func (k *Keyring) Has(id string) bool { _, ok := k.aeads[id]; return ok }

// Seal encrypts plaintext with the primary key, binding it to ad.
func (k *Keyring) Seal(plaintext, ad []byte) Sealed {
	aead := k.aeads[k.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms.
	return Sealed{KeyID: k.primary, Data: aead.Seal(nonce, nonce, plaintext, ad)}
}

// Open decrypts s, which must have been sealed with the same ad.
func (k *Keyring) Open(s Sealed, ad []byte) ([]byte, error) {
	aead, ok := k.aeads[s.KeyID]
	if !ok {
		return nil, &UnknownKeyError{KeyID: s.KeyID}
	}
	if len(s.Data) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrMismatch
	}
	nonce, ct := s.Data[:aead.NonceSize()], s.Data[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, ErrMismatch
	}
	return pt, nil
}

// Parse reads keys written as "id:base64[,id:base64…]" (commas or newlines
// between entries, '#' starts a comment line). The first entry is the primary.
// The base64 may be standard or URL alphabet, padded or not.
func Parse(spec string) (*Keyring, error) {
	var keys []Key
	for _, line := range strings.Split(spec, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			id, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("keyring: entry %d is not id:base64", len(keys)+1)
			}
			material, err := decodeKey(strings.TrimSpace(b64))
			if err != nil {
				return nil, fmt.Errorf("keyring: key %s: %w", strings.TrimSpace(id), err)
			}
			keys = append(keys, Key{ID: strings.TrimSpace(id), Material: material})
		}
	}
	return New(keys...)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// Format writes keys in the form Parse reads, one per line, primary first.
func Format(keys ...Key) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.ID + ":" + base64.StdEncoding.EncodeToString(k.Material) + "\n")
	}
	return b.String()
}

// Generate returns a new random key with the given id.
func Generate(id string) Key {
	m := make([]byte, KeySize)
	_, _ = rand.Read(m)
	return Key{ID: id, Material: m}
}
