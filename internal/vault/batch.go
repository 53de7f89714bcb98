package vault

import (
	"context"
	"fmt"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// ImportBatch imports many credentials in one transaction: all or none. It
// is for bulk loads (a migration, a benchmark with 100k credentials) where
// one transaction per credential would cost more than the work itself. Each
// entry behaves as Import does, but identity checks against ReconnectID are
// not supported and a slot raced by another importer fails the batch.
func (v *Vault) ImportBatch(ctx context.Context, ps []ImportParams) ([]authgate.Credential, error) {
	for i := range ps {
		p := &ps[i]
		if p.ReconnectID != "" {
			return nil, fmt.Errorf("import batch entry %d: ReconnectID is not supported in a batch", i)
		}
		if p.TokenType == "" {
			p.TokenType = "Bearer"
		}
		if p.Source == "" {
			p.Source = "import"
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("import batch entry %d: %w", i, err)
		}
		if p.Scopes != nil {
			p.Scopes = normalizeScopes(p.Scopes)
		}
	}
	out := make([]authgate.Credential, len(ps))
	err := v.store.Tx(ctx, func(q storage.Queries) error {
		for i, p := range ps {
			c, _, err := v.importTx(ctx, q, p)
			if err != nil {
				return fmt.Errorf("import batch entry %d: %w", i, err)
			}
			out[i] = c
			if !p.FirstCheckAt.IsZero() {
				if err := q.CredentialCheckSchedule(ctx, storage.CredentialCheckScheduleParams{ID: c.ID, TenantID: p.TenantID, Next: p.FirstCheckAt}); err != nil {
					return fmt.Errorf("import batch entry %d: first check: %w", i, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
