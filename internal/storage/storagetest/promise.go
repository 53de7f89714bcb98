package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/storage"
)

// testCredentialPromise: the promise horizon grows (never shrinks) for one
// token, stops growing once sealed, starts over for a newer token, and a
// caller holding an older version's token cannot wipe the newer horizon.
func testCredentialPromise(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	step := func(name string, seal bool, fp string, version int64, until time.Time, want storage.CredentialPromise) {
		t.Helper()
		p := storage.CredentialPromiseParams{ID: c.ID, AccessFP: fp, Version: version, Until: until}
		var got storage.CredentialPromise
		var err error
		if seal {
			got, err = s.CredentialPromiseSeal(ctx, p)
		} else {
			got, err = s.CredentialPromiseExtend(ctx, p)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.AccessFP != want.AccessFP || got.Version != want.Version || !got.Horizon.Equal(want.Horizon) || got.Sealed != want.Sealed {
			t.Fatalf("%s = %+v; want %+v", name, got, want)
		}
	}
	step("first extend", false, "aaaaaaaaaa", 1, at(10), storage.CredentialPromise{AccessFP: "aaaaaaaaaa", Version: 1, Horizon: at(10)})
	step("extend further", false, "aaaaaaaaaa", 1, at(20), storage.CredentialPromise{AccessFP: "aaaaaaaaaa", Version: 1, Horizon: at(20)})
	step("a shorter promise never shrinks it", false, "aaaaaaaaaa", 1, at(5), storage.CredentialPromise{AccessFP: "aaaaaaaaaa", Version: 1, Horizon: at(20)})
	step("seal keeps the horizon", true, "aaaaaaaaaa", 1, at(12), storage.CredentialPromise{AccessFP: "aaaaaaaaaa", Version: 1, Horizon: at(20), Sealed: true})
	step("a sealed horizon does not grow", false, "aaaaaaaaaa", 1, at(30), storage.CredentialPromise{AccessFP: "aaaaaaaaaa", Version: 1, Horizon: at(20), Sealed: true})
	step("a newer token starts over", false, "bbbbbbbbbb", 2, at(25), storage.CredentialPromise{AccessFP: "bbbbbbbbbb", Version: 2, Horizon: at(25)})
	step("a stale copy cannot replace it", false, "aaaaaaaaaa", 1, at(40), storage.CredentialPromise{AccessFP: "bbbbbbbbbb", Version: 2, Horizon: at(25)})
	step("nor seal it", true, "aaaaaaaaaa", 1, at(40), storage.CredentialPromise{AccessFP: "bbbbbbbbbb", Version: 2, Horizon: at(25)})
	step("same token at a newer version keeps its horizon", false, "bbbbbbbbbb", 3, at(21), storage.CredentialPromise{AccessFP: "bbbbbbbbbb", Version: 3, Horizon: at(25)})
	step("seal with nothing promised past now", true, "bbbbbbbbbb", 3, at(30), storage.CredentialPromise{AccessFP: "bbbbbbbbbb", Version: 3, Horizon: at(30), Sealed: true})
	step("the next token is unsealed", false, "cccccccccc", 4, at(31), storage.CredentialPromise{AccessFP: "cccccccccc", Version: 4, Horizon: at(31)})

	// A brand-new credential sealed before any promise: nothing to wait for.
	c2 := newCredential(tn.ID, "u2")
	mustInsert(t, s, c2)
	got, err := s.CredentialPromiseSeal(ctx, storage.CredentialPromiseParams{ID: c2.ID, AccessFP: "dddddddddd", Version: 1, Until: at(3)})
	if err != nil || !got.Sealed || !got.Horizon.Equal(at(3)) {
		t.Fatalf("seal of a fresh credential = %+v, %v; want sealed at +3s", got, err)
	}
}
