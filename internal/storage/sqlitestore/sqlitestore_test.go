package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (storage.Store, func(t *testing.T) storage.Store) {
		path := filepath.Join(t.TempDir(), "authgate.db")
		open := func(t *testing.T) storage.Store {
			s, err := sqlitestore.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(t), open
	})
}
