// Package secret holds the Secret type and the redacting log handler.
//
// A Secret is a token, key or code the moment it leaves the wire. Its only
// printable, loggable or marshallable form is its fingerprint: the first 10 hex
// digits of its SHA-256. Code that needs the plaintext calls Reveal, which is
// easy to grep for. This package must never log or return a plaintext itself.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret is a sensitive string. The zero value is the empty secret.
type Secret struct{ v string }

// New wraps a plaintext.
func New(plaintext string) Secret { return Secret{v: plaintext} }

// Reveal returns the plaintext. Call it only at the point of use (an HTTP
// header, an encryption call).
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Fingerprint is the first 10 hex digits of the SHA-256 of the plaintext, or
// "" for the empty secret. It identifies a token in logs without revealing it.
func (s Secret) Fingerprint() string { return Fingerprint(s.v) }

// Equal compares two secrets.
func (s Secret) Equal(o Secret) bool { return s.v == o.v }

// String returns the fingerprint.
func (s Secret) String() string { return s.Fingerprint() }

// GoString returns the fingerprint, so %#v does not leak either.
func (s Secret) GoString() string { return "secret.Secret(" + s.Fingerprint() + ")" }

// Format makes every fmt verb print the fingerprint.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.Fingerprint()))
}

// LogValue logs the fingerprint.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Fingerprint()) }

// MarshalJSON writes the fingerprint; a Secret never round-trips through JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.Fingerprint()) }

// MarshalText writes the fingerprint.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Fingerprint()), nil }

// Fingerprint returns the first 10 hex digits of the SHA-256 of plaintext,
// or "" when plaintext is empty.
func Fingerprint(plaintext string) string {
	if plaintext == "" {
		return ""
	}
	// Tokens are hashed on every token answer: hash from a stack copy
	// when one fits ([]byte(plaintext) would allocate) and build the hex
	// in place, so the result string is the only allocation.
	var sum [sha256.Size]byte
	var buf [512]byte
	if len(plaintext) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], plaintext)])
	} else {
		sum = sha256.Sum256([]byte(plaintext))
	}
	var out [10]byte
	hex.Encode(out[:], sum[:5])
	return string(out[:])
}
