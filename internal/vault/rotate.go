package vault

import (
	"context"
	"errors"
	"fmt"

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
}

// RotateKeys re-encrypts every secret not sealed with the keyring's primary
// key. Each batch commits in its own transaction and each row is a
// compare-and-swap on its version, so a concurrent refresh is never
// overwritten and a rotation killed half-way simply resumes: what remains is
// exactly what is still sealed with an old key. Versions do not change
// (re-encryption changes no token). A secret that cannot be decrypted is
// reported and left as it is; the error says which key it needs.
func (v *Vault) RotateKeys(ctx context.Context, opts RotateOptions) (RotateResult, error) {
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
