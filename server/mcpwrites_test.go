package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate/internal/mcpserver"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
)

// TestMCPWritesThroughTheDatabase: a write answered by one instance is
// replayed, not run again, by another instance on the same database (two
// Writes over one store stand for two processes' memories).
func TestMCPWritesThroughTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "authgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	instance := func() *mcpserver.Writes {
		w := mcpserver.NewWrites(time.Hour)
		w.Store = mcpWrites{store: st, now: time.Now}
		return w
	}
	a, b := instance(), instance()
	runs := 0
	write := func() (*mcp.CallToolResult, error) {
		runs++
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "created doc 1"}}}, nil
	}
	if _, replayed, err := a.Do(ctx, "k1", write); err != nil || replayed {
		t.Fatalf("first call: replayed %v, %v", replayed, err)
	}
	res, replayed, err := b.Do(ctx, "k1", write)
	if err != nil || !replayed || runs != 1 {
		t.Fatalf("retry on another instance: replayed %v, runs %d, %v", replayed, runs, err)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "created doc 1" {
		t.Fatalf("replayed answer %+v", res.Content)
	}
	// A failed write is not remembered anywhere: it may be tried again.
	fail := func() (*mcp.CallToolResult, error) { runs++; return &mcp.CallToolResult{IsError: true}, nil }
	a.Do(ctx, "k2", fail)
	b.Do(ctx, "k2", fail)
	if runs != 3 {
		t.Fatalf("failed writes ran %d times in all; want each attempt to run", runs-1)
	}
}
