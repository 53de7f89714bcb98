package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/keyring"
)

var now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func b64(fill byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32)) }

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, err := keyring.Parse("k2:" + b64(2) + ", k1:" + b64(1))
	if err != nil {
		t.Fatal(err)
	}
	if k.Primary() != "k2" || !k.Has("k1") {
		t.Fatalf("primary %s ids %v", k.Primary(), k.IDs())
	}
	ad := []byte("cred_x\x00access_token")
	s := k.Seal([]byte("tok"), ad)
	if s.KeyID != "k2" || bytes.Contains(s.Data, []byte("tok")) {
		t.Fatalf("sealed %+v", s)
	}
	if s2 := k.Seal([]byte("tok"), ad); bytes.Equal(s.Data, s2.Data) {
		t.Fatal("two seals of one plaintext are identical: nonce reuse")
	}
	pt, err := k.Open(s, ad)
	if err != nil || string(pt) != "tok" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := k.Open(s, []byte("cred_y\x00access_token")); !errors.Is(err, keyring.ErrMismatch) {
		t.Fatalf("other AD err = %v; want ErrMismatch", err)
	}
	tampered := keyring.Sealed{KeyID: s.KeyID, Data: append([]byte(nil), s.Data...)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if _, err := k.Open(tampered, ad); !errors.Is(err, keyring.ErrMismatch) {
		t.Fatalf("tampered err = %v; want ErrMismatch", err)
	}
	if _, err := k.Open(keyring.Sealed{KeyID: "k2", Data: []byte{1}}, ad); !errors.Is(err, keyring.ErrMismatch) {
		t.Fatalf("short data err = %v; want ErrMismatch", err)
	}
	// A key that only decrypts (k1) still opens what it sealed.
	old, _ := keyring.Parse("k1:" + b64(1))
	if pt, err := k.Open(old.Seal([]byte("old"), ad), ad); err != nil || string(pt) != "old" {
		t.Fatalf("secondary key open = %q, %v", pt, err)
	}
	var uk *keyring.UnknownKeyError
	if _, err := old.Open(s, ad); !errors.As(err, &uk) || uk.KeyID != "k2" {
		t.Fatalf("unknown key err = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]string{
		"":       "no keys",
		"k1":     "not id:base64",
		"k1:!!!": "not valid base64",
		"k1:" + base64.StdEncoding.EncodeToString([]byte("short")): "want 32",
		"k1:" + b64(1) + ",k1:" + b64(2):                           "appears twice",
		"bad id:" + b64(1):                                         "key id",
	} {
		_, err := keyring.Parse(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) err = %v; want %q", spec, err, want)
		}
		if err != nil && strings.Contains(err.Error(), b64(1)) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
	// Comments, newlines and URL-safe unpadded base64 are accepted.
	raw := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
	if k, err := keyring.Parse("# keys\nk3:" + raw + "\n\nk2:" + b64(2) + "\n"); err != nil || k.Primary() != "k3" || len(k.IDs()) != 2 {
		t.Fatalf("Parse multi-line = %v, %v", k, err)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authgate.key")
	k, created, tooOpen, err := keyring.LoadOrCreateFile(path, now)
	if err != nil || !created || tooOpen {
		t.Fatalf("create = %v %v %v", created, tooOpen, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v; want 0600", st.Mode().Perm())
	}
	if !strings.HasPrefix(k.Primary(), "k20261125-") {
		t.Fatalf("generated key id %q", k.Primary())
	}
	again, created, _, err := keyring.LoadOrCreateFile(path, now)
	if err != nil || created || again.Primary() != k.Primary() {
		t.Fatalf("reload = %v %v %v", again, created, err)
	}
	sealed := k.Seal([]byte("x"), nil)
	rotated, newID, err := keyring.AddPrimaryToFile(path, now)
	if err != nil || rotated.Primary() != newID || newID == k.Primary() || !rotated.Has(k.Primary()) {
		t.Fatalf("AddPrimaryToFile = %v %s %v", rotated.IDs(), newID, err)
	}
	if pt, err := rotated.Open(sealed, nil); err != nil || string(pt) != "x" {
		t.Fatalf("old ciphertext after adding a key: %q %v", pt, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten key file mode %v", st.Mode().Perm())
	}
	os.Chmod(path, 0o644)
	if _, tooOpen, err := keyring.LoadFile(path); err != nil || !tooOpen {
		t.Fatalf("0644 key file: tooOpen=%v err=%v", tooOpen, err)
	}
}

func TestFileSourceFollowsTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authgate.key")
	k, _, _, err := keyring.LoadOrCreateFile(path, now)
	if err != nil {
		t.Fatal(err)
	}
	clk := now
	src := keyring.FileSource(k, path, func() time.Time { return clk })
	old := src.Seal([]byte("x"), nil)
	// Another process adds a new primary and re-encrypts.
	rotated, newID, err := keyring.AddPrimaryToFile(path, now)
	if err != nil {
		t.Fatal(err)
	}
	sealedNew := rotated.Seal([]byte("y"), nil)
	// Meeting the unknown key reloads at once, without waiting for the throttle.
	if pt, err := src.Open(sealedNew, nil); err != nil || string(pt) != "y" {
		t.Fatalf("open under the new key: %q %v", pt, err)
	}
	if src.Primary() != newID {
		t.Fatalf("primary %s; want the new %s", src.Primary(), newID)
	}
	if pt, err := src.Open(old, nil); err != nil || string(pt) != "x" {
		t.Fatalf("old ciphertext: %q %v", pt, err)
	}
	// A broken file keeps the keys in force.
	os.WriteFile(path, []byte("garbage"), 0o600)
	clk = clk.Add(time.Minute)
	if src.Primary() != newID {
		t.Fatal("a corrupt key file replaced the keyring")
	}
	// A truly unknown key still fails with the clear error.
	other, _ := keyring.Parse("zz:" + b64(9))
	var uk *keyring.UnknownKeyError
	if _, err := src.Open(other.Seal([]byte("z"), nil), nil); !errors.As(err, &uk) || uk.KeyID != "zz" {
		t.Fatalf("unknown key err = %v", err)
	}
	// Static never reloads.
	st := keyring.Static(k)
	if _, err := st.Open(sealedNew, nil); !errors.As(err, &uk) {
		t.Fatalf("static keyring reloaded: %v", err)
	}
}
