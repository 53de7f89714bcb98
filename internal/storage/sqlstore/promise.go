package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgate/authgate/internal/storage"
)

// promiseUpsert keeps one row per credential: the horizon of the newest
// token anyone has promised. A row for another token is replaced only by a
// caller that read a version at least as new, so a process still holding a
// retired token's copy cannot wipe the current token's horizon. A sealed
// horizon never grows. Every right-hand side reads the old row.
const promiseUpsert = `INSERT INTO credential_promises (credential_id, access_fp, cred_version, horizon, sealed)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (credential_id) DO UPDATE SET
		horizon = CASE
			WHEN credential_promises.access_fp <> excluded.access_fp THEN excluded.horizon
			WHEN credential_promises.sealed THEN credential_promises.horizon
			WHEN credential_promises.horizon >= excluded.horizon THEN credential_promises.horizon
			ELSE excluded.horizon END,
		sealed = CASE
			WHEN credential_promises.access_fp <> excluded.access_fp THEN excluded.sealed
			ELSE (credential_promises.sealed OR excluded.sealed) END,
		cred_version = CASE
			WHEN credential_promises.cred_version > excluded.cred_version THEN credential_promises.cred_version
			ELSE excluded.cred_version END,
		access_fp = excluded.access_fp
	WHERE credential_promises.cred_version <= excluded.cred_version
	   OR credential_promises.access_fp = excluded.access_fp
	RETURNING access_fp, cred_version, horizon, sealed`

func (q Queries) CredentialPromiseExtend(ctx context.Context, p storage.CredentialPromiseParams) (storage.CredentialPromise, error) {
	return q.promise(ctx, p, false)
}

func (q Queries) CredentialPromiseSeal(ctx context.Context, p storage.CredentialPromiseParams) (storage.CredentialPromise, error) {
	return q.promise(ctx, p, true)
}

func (q Queries) promise(ctx context.Context, p storage.CredentialPromiseParams, seal bool) (storage.CredentialPromise, error) {
	if p.AccessFP == "" || p.Until.IsZero() {
		return storage.CredentialPromise{}, errors.New("promise: a token fingerprint and a time are required")
	}
	var out storage.CredentialPromise
	err := q.mapErr(q.W.QueryRow(ctx, promiseUpsert, p.ID, p.AccessFP, p.Version, q.ts(p.Until), seal).
		Scan(&out.AccessFP, &out.Version, at(&out.Horizon), &out.Sealed))
	if errors.Is(err, storage.ErrNotFound) {
		// A newer version's token holds the row: report it unchanged.
		err = q.mapErr(q.R.QueryRow(ctx, `SELECT access_fp, cred_version, horizon, sealed FROM credential_promises WHERE credential_id = $1`, p.ID).
			Scan(&out.AccessFP, &out.Version, at(&out.Horizon), &out.Sealed))
	}
	if err != nil {
		return storage.CredentialPromise{}, fmt.Errorf("promise %s: %w", p.ID, err)
	}
	return out, nil
}
