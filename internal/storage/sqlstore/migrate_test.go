package sqlstore_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/authgate/authgate/internal/storage/sqlstore"
)

// TestBackendsShareMigrationNumbers: each backend writes its migrations in
// its own DDL, but a number means the same change in both, so the two sets
// of numbers (and names) must match.
func TestBackendsShareMigrationNumbers(t *testing.T) {
	t.Parallel()
	names := func(dir string) []string {
		t.Helper()
		ms, err := sqlstore.LoadMigrations(os.DirFS(dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	sqlite, pg := names("../sqlitestore/migrations"), names("../pgstore/migrations")
	if len(sqlite) == 0 || !slices.Equal(sqlite, pg) {
		t.Fatalf("migrations differ:\nsqlitestore %v\npgstore     %v", sqlite, pg)
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		files   []string
		want    []int
		wantErr string
	}{
		{"ordered by number", []string{"0002_b.sql", "0010_c.sql", "0001_a.sql", "README.md"}, []int{1, 2, 10}, ""},
		{"duplicate number", []string{"0001_a.sql", "0001_b.sql"}, nil, "share number 1"},
		{"no number", []string{"init.sql"}, nil, "must start with"},
		{"zero", []string{"0000_a.sql"}, nil, "must start with"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			ms, err := sqlstore.LoadMigrations(fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("versions %v; want %v", got, tt.want)
			}
		})
	}
}
