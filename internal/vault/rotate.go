package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// RotateOptions tunes RotateKeys.
type RotateOptions struct {
	// BatchSize is how many credentials are re-encrypted per transaction
	// (default 500).
	BatchSize int
	// OnBatch, if set, is called after each committed batch with the totals
	// so far (progress output).
	OnBatch func(RotateResult)
}

// RotateResult counts what RotateKeys did.
type RotateResult struct {
	Rotated int // credentials now sealed only with the primary key
	Skipped int // changed by someone else meanwhile (their write used the primary key already, or run again)
	Failed  int // could not be decrypted; see the error
	// Remaining is how many credentials still hold a secret sealed with another key.
	Remaining int
	// Sessions counts pending connect sessions whose PKCE verifier was
	// re-encrypted (a connect started before the rotation still completes
	// after the old key is retired).
	Sessions int
	// Webhooks counts webhook endpoint secrets re-encrypted.
	Webhooks int
}

// SessionAssociatedData is what a connect session's sealed verifier is bound to.
func SessionAssociatedData(id string) []byte { return []byte("authgate/connect\x00" + id) }

// WebhookSecretAssociatedData is what a webhook endpoint's sealed signing
// secret is bound to.
func WebhookSecretAssociatedData(id authgate.WebhookEndpointID) []byte {
	return []byte("authgate/webhook\x00" + string(id))
}

// RotateKeys re-encrypts every secret not sealed with the keyring's primary
// key. Each batch commits in its own transaction and each row is a
// compare-and-swap on its version, so a concurrent refresh is never
// overwritten and a rotation killed half-way simply resumes: what remains is
// exactly what is still sealed with an old key. Each re-seal bumps the
// version, so a refresh that read the old ciphertext loses its
// compare-and-swap instead of writing it back; rows changed meanwhile are
// picked up by another pass (up to a few, while passes make progress). A
// secret that cannot be decrypted is reported and left as it is; the error
// says which key it needs. Pending connect sessions are re-sealed too.
func (v *Vault) RotateKeys(ctx context.Context, opts RotateOptions) (RotateResult, error) {
	var res RotateResult
	for pass := 0; pass < 5; pass++ {
		r, err := v.rotatePass(ctx, opts)
		res.Rotated += r.Rotated
		res.Skipped = r.Skipped
		res.Failed = r.Failed
		res.Remaining = r.Remaining
		if err != nil {
			return res, err
		}
		if r.Remaining == 0 || r.Rotated == 0 {
			break
		}
	}
	n, err := v.rotateSessions(ctx)
	res.Sessions = n
	if err != nil {
		return res, err
	}
	res.Webhooks, err = v.rotateWebhooks(ctx)
	return res, err
}

// rotateWebhooks re-seals webhook endpoint secrets with the primary key.
func (v *Vault) rotateWebhooks(ctx context.Context) (int, error) {
	primary := v.keys.Primary()
	n := 0
	var after authgate.WebhookEndpointID
	for {
		es, err := v.store.WebhookEndpointListSealedNotWith(ctx, storage.WebhookEndpointListSealedNotWithParams{KeyID: primary, AfterID: after, Limit: 500})
		if err != nil {
			return n, fmt.Errorf("rotate: list webhook endpoints: %w", err)
		}
		if len(es) == 0 {
			return n, nil
		}
		after = es[len(es)-1].ID
		for _, e := range es {
			pt, err := v.keys.Open(e.Secret, WebhookSecretAssociatedData(e.ID))
			if err != nil {
				return n, fmt.Errorf("rotate: webhook endpoint %s: %w", e.ID, err)
			}
			err = v.store.WebhookEndpointReseal(ctx, storage.WebhookEndpointResealParams{ID: e.ID, OldKeyID: e.Secret.KeyID, Secret: v.keys.Seal(pt, WebhookSecretAssociatedData(e.ID))})
			switch {
			case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrVersionConflict):
			case err != nil:
				return n, fmt.Errorf("rotate: reseal webhook endpoint: %w", err)
			default:
				n++
			}
		}
	}
}

// rotateSessions re-seals the PKCE verifiers of connect sessions still usable.
func (v *Vault) rotateSessions(ctx context.Context) (int, error) {
	primary := v.keys.Primary()
	n, after := 0, ""
	for {
		// Expired (not yet pruned) sessions too: their ciphertext would
		// still tie the database to the old key.
		ss, err := v.store.ConnectSessionListSealedNotWith(ctx, storage.ConnectSessionListSealedNotWithParams{KeyID: primary, Now: time.Unix(0, 0), AfterID: after, Limit: 500})
		if err != nil {
			return n, fmt.Errorf("rotate: list connect sessions: %w", err)
		}
		if len(ss) == 0 {
			return n, nil
		}
		after = ss[len(ss)-1].ID
		for _, s := range ss {
			pt, err := v.keys.Open(s.Verifier, SessionAssociatedData(s.ID))
			if err != nil {
				continue // unreadable: the session fails at its callback, as it would have
			}
			err = v.store.ConnectSessionReseal(ctx, storage.ConnectSessionResealParams{ID: s.ID, OldKeyID: s.Verifier.KeyID, Verifier: v.keys.Seal(pt, SessionAssociatedData(s.ID))})
			switch {
			case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrVersionConflict):
			case err != nil:
				return n, fmt.Errorf("rotate: reseal connect session: %w", err)
			default:
				n++
			}
		}
	}
}

func (v *Vault) rotatePass(ctx context.Context, opts RotateOptions) (RotateResult, error) {
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 500
	}
	primary := v.keys.Primary()
	var res RotateResult
	var failures []error
	after := authgate.CredentialID("")
	for {
		recs, err := v.store.CredentialListSealedNotWith(ctx, storage.CredentialListSealedNotWithParams{KeyID: primary, AfterID: after, Limit: batch})
		if err != nil {
			return res, fmt.Errorf("rotate: list: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].ID
		var rotated, skipped int
		err = v.store.Tx(ctx, func(q storage.Queries) error {
			rotated, skipped = 0, 0
			for _, rec := range recs {
				l, err := v.decrypt(rec)
				if err != nil {
					if len(failures) < 10 {
						failures = append(failures, err)
					}
					res.Failed++
					continue
				}
				err = q.CredentialReseal(ctx, storage.CredentialResealParams{
					ID: rec.ID, Version: rec.Version,
					AccessToken:  v.seal(rec.ID, FieldAccessToken, l.AccessToken),
					RefreshToken: v.seal(rec.ID, FieldRefreshToken, l.RefreshToken),
				})
				switch {
				case errors.Is(err, storage.ErrVersionConflict), errors.Is(err, storage.ErrNotFound):
					skipped++
				case err != nil:
					return fmt.Errorf("reseal %s: %w", rec.ID, err)
				default:
					rotated++
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("rotate: %w", err)
		}
		res.Rotated += rotated
		res.Skipped += skipped
		if opts.OnBatch != nil {
			opts.OnBatch(res)
		}
	}
	remaining, err := v.countSealedNotWith(ctx, primary)
	if err != nil {
		return res, err
	}
	res.Remaining = remaining
	if len(failures) > 0 {
		return res, fmt.Errorf("rotate: %d credentials could not be decrypted, first: %w", res.Failed, errors.Join(failures...))
	}
	return res, nil
}

// countSealedNotWith counts credentials that still hold a secret sealed with
// a key other than keyID.
func (v *Vault) countSealedNotWith(ctx context.Context, keyID string) (int, error) {
	n := 0
	after := authgate.CredentialID("")
	for {
		recs, err := v.store.CredentialListSealedNotWith(ctx, storage.CredentialListSealedNotWithParams{KeyID: keyID, AfterID: after, Limit: 5000})
		if err != nil {
			return n, fmt.Errorf("rotate: count remaining: %w", err)
		}
		n += len(recs)
		if len(recs) < 5000 {
			return n, nil
		}
		after = recs[len(recs)-1].ID
	}
}
