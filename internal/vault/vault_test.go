package vault_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/vault"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func key(id string, fill byte) keyring.Key {
	return keyring.Key{ID: id, Material: bytes.Repeat([]byte{fill}, keyring.KeySize)}
}

func ring(t testing.TB, keys ...keyring.Key) *keyring.Keyring {
	t.Helper()
	k, err := keyring.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fixture struct {
	path   string
	store  *sqlitestore.Store
	vault  *vault.Vault
	clock  *clock.Fake
	tenant authgate.TenantID
}

func newFixture(t testing.TB, path string, keys *keyring.Keyring) *fixture {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "authgate.db")
	}
	s, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{path: path, store: s, clock: clock.NewFake(t0)}
	f.vault = vault.New(s, keys, f.clock)
	tenants, err := s.TenantList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) > 0 {
		f.tenant = tenants[0].ID
		return f
	}
	f.tenant = authgate.NewTenantID()
	if err := s.TenantInsert(context.Background(), storage.Tenant{ID: f.tenant, Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) importCred(t testing.TB, user, access, refresh string) authgate.Credential {
	t.Helper()
	c, _, err := f.vault.Import(context.Background(), vault.ImportParams{
		TenantID: f.tenant, UserID: user, Provider: "google", Subject: "sub-" + user, Email: user + "@example.com",
		Scopes: []string{"openid", "email"}, AccessToken: secret.New(access), RefreshToken: secret.New(refresh),
		ExpiresAt: t0.Add(time.Hour), Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventTypes(t *testing.T, f *fixture, id authgate.CredentialID) []authgate.EventType {
	t.Helper()
	evs, _, err := f.vault.Events(context.Background(), f.tenant, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []authgate.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestImportCreatesThenUpdatesSameSlot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	ctx := context.Background()
	c := f.importCred(t, "alice", "ya29.first-access", "1//first-refresh")
	if !c.ID.Valid() || c.Status != authgate.CredentialStatusActive || c.Version != 1 || !c.HasRefreshToken {
		t.Fatalf("created credential = %+v", c)
	}
	if c.AccessTokenFingerprint != secret.Fingerprint("ya29.first-access") {
		t.Fatalf("fingerprint %s", c.AccessTokenFingerprint)
	}

	// Re-import without a refresh token: same id, access token replaced,
	// refresh token kept, scopes changed, reconnected from reauth_required.
	rec, err := f.store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: f.tenant, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.StatusReason = authgate.CredentialStatusReauthRequired, authgate.StatusReasonInvalidGrant
	if err := f.store.CredentialUpdateCAS(ctx, rec); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	c2, created, err := f.vault.Import(ctx, vault.ImportParams{
		TenantID: f.tenant, UserID: "alice", Provider: "google", Subject: "sub-alice",
		Scopes: []string{"openid", "email", "https://www.googleapis.com/auth/drive.file"}, AccessToken: secret.New("ya29.second-access"), Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if created || c2.ID != c.ID {
		t.Fatalf("re-import created=%v id=%s; want update of %s", created, c2.ID, c.ID)
	}
	l, err := f.vault.Load(ctx, f.tenant, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.AccessToken.Reveal() != "ya29.second-access" || l.RefreshToken.Reveal() != "1//first-refresh" {
		t.Fatalf("after re-import: access %s refresh %s", l.AccessToken, l.RefreshToken)
	}
	if l.Status != authgate.CredentialStatusActive || l.StatusReason != "" || l.Account.Email != "alice@example.com" || l.AccessTokenExpiresAt != nil {
		t.Fatalf("after re-import: %+v", l.Credential)
	}
	got := eventTypes(t, f, c.ID)
	want := []authgate.EventType{authgate.EventTokenIssued, authgate.EventTokenIssued, authgate.EventScopesChanged, authgate.EventReconnected}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v; want %v", got, want)
	}
}

func TestImportValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	valid := func() vault.ImportParams {
		return vault.ImportParams{TenantID: f.tenant, UserID: "u", Provider: "google", Subject: "s", AccessToken: secret.New("tok")}
	}
	for _, tc := range []struct {
		name  string
		mod   func(p *vault.ImportParams)
		field string
	}{
		{"no user", func(p *vault.ImportParams) { p.UserID = "" }, "user_id"},
		{"bad provider", func(p *vault.ImportParams) { p.Provider = "Google Drive" }, "provider"},
		{"no subject", func(p *vault.ImportParams) { p.Subject = "" }, "subject"},
		{"no tokens", func(p *vault.ImportParams) { p.AccessToken = secret.Secret{} }, "access_token"},
		{"token with space", func(p *vault.ImportParams) { p.AccessToken = secret.New("a b") }, "access_token"},
		{"huge token", func(p *vault.ImportParams) { p.RefreshToken = secret.New(strings.Repeat("x", 20000)) }, "refresh_token"},
		{"empty scope", func(p *vault.ImportParams) { p.Scopes = []string{"openid", ""} }, "scopes[1]"},
		{"bad email", func(p *vault.ImportParams) { p.Email = "nope" }, "email"},
		{"bad account type", func(p *vault.ImportParams) { p.AccountType = "enterprise" }, "account_type"},
		{"control char", func(p *vault.ImportParams) { p.UserID = "a\x00b" }, "user_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.mod(&p)
			_, _, err := f.vault.Import(context.Background(), p)
			var ae *authgate.Error
			if !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest {
				t.Fatalf("err = %v; want invalid_request", err)
			}
			if len(ae.Errors) == 0 || ae.Errors[0].Field != tc.field {
				t.Fatalf("field errors %+v; want first on %s", ae.Errors, tc.field)
			}
			if strings.Contains(ae.Error(), strings.Repeat("x", 100)) {
				t.Fatal("error echoes the token")
			}
		})
	}
	list, _, err := f.vault.List(context.Background(), vault.ListParams{TenantID: f.tenant})
	if err != nil || len(list) != 0 {
		t.Fatalf("invalid imports stored something: %v %v", list, err)
	}
}

// TestRowSwapFailsToDecrypt copies one row's ciphertext into another row (and
// into another field of the same row), as a storage bug or an attacker with
// database access would: decryption must fail loudly, never yield a token.
func TestRowSwapFailsToDecrypt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	a := f.importCred(t, "alice", "ya29.alice-access", "1//alice-refresh")
	b := f.importCred(t, "bob", "ya29.bob-access", "1//bob-refresh")
	db, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE credentials SET access_token_ct = (SELECT access_token_ct FROM credentials WHERE id = ?) WHERE id = ?`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.vault.Load(context.Background(), f.tenant, b.ID)
	if !errors.Is(err, keyring.ErrMismatch) {
		t.Fatalf("load of swapped row err = %v; want ErrMismatch", err)
	}
	for _, want := range []string{string(b.ID), "access_token", "does not belong here"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "alice-access") {
		t.Fatal("error leaks the plaintext")
	}
	// Field swap within one row.
	if _, err := db.Exec(`UPDATE credentials SET refresh_token_ct = access_token_ct WHERE id = ?`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.vault.Load(context.Background(), f.tenant, a.ID); !errors.Is(err, keyring.ErrMismatch) || !strings.Contains(err.Error(), "refresh_token") {
		t.Fatalf("load of field-swapped row err = %v; want ErrMismatch on refresh_token", err)
	}
}

func TestUnknownKeyNamesTheKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	c := f.importCred(t, "alice", "ya29.alice-access", "1//alice-refresh")
	other := vault.New(f.store, ring(t, key("k2", 2)), f.clock)
	_, err := other.Load(context.Background(), f.tenant, c.ID)
	var uk *keyring.UnknownKeyError
	if !errors.As(err, &uk) || uk.KeyID != "k1" {
		t.Fatalf("err = %v; want UnknownKeyError for k1", err)
	}
	if !strings.Contains(err.Error(), "encrypted with key k1, which this process does not have: environment mismatch?") {
		t.Fatalf("message %q", err)
	}
}

func TestRevokeErasesTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	ctx := context.Background()
	c := f.importCred(t, "alice", "ya29.alice-access", "1//alice-refresh")
	r, err := f.vault.Revoke(ctx, f.tenant, c.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != authgate.CredentialStatusRevoked || r.StatusReason != authgate.StatusReasonDisconnected || r.HasRefreshToken || r.AccessTokenFingerprint != "" {
		t.Fatalf("revoked = %+v", r)
	}
	l, err := f.vault.Load(ctx, f.tenant, c.ID)
	if err != nil || !l.AccessToken.IsZero() || !l.RefreshToken.IsZero() {
		t.Fatalf("tokens after revoke: %v %v %v", l.AccessToken, l.RefreshToken, err)
	}
	if _, err := f.vault.Revoke(ctx, f.tenant, c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(t, f, c.ID); fmt.Sprint(got) != "[token_issued disconnected]" {
		t.Fatalf("events %v; want one disconnected", got)
	}
}

// rotateCount is how many credentials the rotation test rotates: 1,000 by
// default, which still crashes half-way through ten batches and resumes, and
// the full 10,000 with AUTHGATE_TEST_SCALE=1 (.ci/run sets it). Under -race
// on two cores the 10,000 take minutes; the property does not need them.
var rotateCount = func() int {
	if os.Getenv("AUTHGATE_TEST_SCALE") != "" {
		return 10000
	}
	return 1000
}()

// rotateBatch makes the crash land after ten committed batches.
var rotateBatch = rotateCount / 20

func tokenPair(i int) (string, string) {
	return fmt.Sprintf("ya29.access-%05d", i), fmt.Sprintf("1//refresh-%05d", i)
}

// TestKeyRotationResumesAfterCrash rotates rotateCount credentials (10,000
// at scale) from k1 to k2. A first
// rotation runs in a child process that dies (os.Exit, no cleanup) after
// half the batches have committed; a second run resumes and finishes. Then a
// vault holding only k2 decrypts every credential to its original tokens.
func TestKeyRotationResumesAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	ctx := context.Background()
	ids := make([]authgate.CredentialID, rotateCount)
	for i := range rotateCount {
		a, r := tokenPair(i)
		ids[i] = f.importCred(t, fmt.Sprintf("user-%05d", i), a, r).ID
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AUTHGATE_ROTATE_CRASH_DB="+f.path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("crashing rotation: err %v (want exit 7), output:\n%s", err, out)
	}

	left, err := f.store.CredentialListSealedNotWith(ctx, storage.CredentialListSealedNotWithParams{KeyID: "k2", Limit: rotateCount})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != rotateCount/2 {
		t.Fatalf("after the crash %d credentials still on k1; want %d (half)", len(left), rotateCount/2)
	}

	both := vault.New(f.store, ring(t, key("k2", 2), key("k1", 1)), f.clock)
	res, err := both.RotateKeys(ctx, vault.RotateOptions{BatchSize: rotateBatch})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotated != rotateCount/2 || res.Remaining != 0 || res.Failed != 0 {
		t.Fatalf("resumed rotation = %+v; want %d rotated, 0 remaining", res, rotateCount/2)
	}

	onlyNew := vault.New(f.store, ring(t, key("k2", 2)), f.clock)
	for i, id := range ids {
		l, err := onlyNew.Load(ctx, f.tenant, id)
		if err != nil {
			t.Fatalf("credential %d: %v", i, err)
		}
		a, r := tokenPair(i)
		if l.AccessToken.Reveal() != a || l.RefreshToken.Reveal() != r {
			t.Fatalf("credential %d decrypts to other tokens", i)
		}
		if l.Version != 2 {
			t.Fatalf("credential %d version %d; a re-seal bumps the version once (so a racing writer's CAS fails)", i, l.Version)
		}
	}
	// Nothing left to do: a further run is a no-op.
	res, err = both.RotateKeys(ctx, vault.RotateOptions{})
	if err != nil || res.Rotated != 0 || res.Remaining != 0 {
		t.Fatalf("idle rotation = %+v, %v", res, err)
	}
}

// TestMain doubles as the child process of TestKeyRotation10k: with
// AUTHGATE_ROTATE_CRASH_DB set it rotates that database and dies half-way.
func TestMain(m *testing.M) {
	if path := os.Getenv("AUTHGATE_ROTATE_CRASH_DB"); path != "" {
		rotateThenCrash(path)
	}
	os.Exit(m.Run())
}

func rotateThenCrash(path string) {
	s, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	keys, err := keyring.New(key("k2", 2), key("k1", 1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	v := vault.New(s, keys, clock.Real{})
	_, err = v.RotateKeys(context.Background(), vault.RotateOptions{BatchSize: rotateBatch, OnBatch: func(r vault.RotateResult) {
		if r.Rotated >= rotateCount/2 {
			os.Exit(7) // die like a killed process: no deferred cleanup, no close
		}
	}})
	fmt.Fprintln(os.Stderr, "rotation finished without crashing:", err)
	os.Exit(3)
}

func TestRotateReportsUndecryptable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k0", 9)))
	f.importCred(t, "alice", "ya29.a", "1//a")
	v := vault.New(f.store, ring(t, key("k2", 2), key("k1", 1)), f.clock)
	res, err := v.RotateKeys(context.Background(), vault.RotateOptions{})
	if err == nil || !strings.Contains(err.Error(), "encrypted with key k0") {
		t.Fatalf("err = %v; want it to name key k0", err)
	}
	if res.Failed != 1 || res.Remaining != 1 {
		t.Fatalf("result %+v", res)
	}
}

// BenchmarkLoad reads one credential by id from a SQLite file and decrypts
// both of its tokens: the vault's read hot path.
func BenchmarkLoad(b *testing.B) {
	f := newFixture(b, "", ring(b, key("k1", 1)))
	var ids []authgate.CredentialID
	for i := range 1000 {
		a, r := tokenPair(i)
		ids = append(ids, f.importCred(b, fmt.Sprintf("user-%d", i), a, r).ID)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		l, err := f.vault.Load(ctx, f.tenant, ids[i%len(ids)])
		if err != nil || l.AccessToken.IsZero() {
			b.Fatal(err)
		}
		i++
	}
}

// TestRotateWebhookSecrets: endpoint signing secrets move to the primary
// key with the credentials, and open with it alone afterwards.
func TestRotateWebhookSecrets(t *testing.T) {
	t.Parallel()
	old := ring(t, key("k1", 1))
	f := newFixture(t, "", old)
	ctx := context.Background()
	id := authgate.NewWebhookEndpointID()
	if err := f.store.WebhookEndpointInsert(ctx, &storage.WebhookEndpoint{ID: id, TenantID: f.tenant, URL: "https://hooks.example/x",
		Secret: old.Seal([]byte("whsec_x"), vault.WebhookSecretAssociatedData(id)), CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	res, err := vault.New(f.store, ring(t, key("k2", 2), key("k1", 1)), f.clock).RotateKeys(ctx, vault.RotateOptions{})
	if err != nil || res.Webhooks != 1 {
		t.Fatalf("rotate = %+v, %v", res, err)
	}
	es, err := f.store.WebhookEndpointList(ctx, f.tenant)
	if err != nil || len(es) != 1 {
		t.Fatal(es, err)
	}
	if pt, err := ring(t, key("k2", 2)).Open(es[0].Secret, vault.WebhookSecretAssociatedData(id)); err != nil || string(pt) != "whsec_x" {
		t.Fatalf("open with the new key alone: %q %v", pt, err)
	}
}
