package notion_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/connector/notion"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
)

// TestNotionOperations: users/me, search, page, database and its data
// source, query, create a page and a row, append blocks — with
// Notion-Version 2025-09-03 — and writes refused when the target is not what
// it is declared to be.
func TestNotionOperations(t *testing.T) {
	t.Parallel()
	// The sandbox holds Notion's rate limit (3 requests/s, bursts of 10) on
	// this clock; the test moves it on between bursts instead of sleeping.
	clk := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: clk})
	cred := env.Connect(t, authgatetest.ConnectParams{Provider: "notion", Actions: []string{"notion.read", "notion.insert"}, Choice: sandbox.Choice{Account: "nora@acme.example"}})
	ctx := context.Background()
	n := notion.New(env.Client.TokenSource(ctx, cred.ID, authgate.TokenRequest{}), notion.Options{BaseURL: env.SandboxAPI("notion")})
	sb := env.Server.Sandbox
	pageID, dbID := sb.Notion().ObjectID("", "Roadmap"), sb.Notion().ObjectID("", "Tasks")

	me, err := n.Me(ctx)
	if err != nil || me.Type != "bot" || me.Bot.WorkspaceID != cred.WorkspaceID {
		t.Fatalf("users/me %+v %v", me, err)
	}
	found, err := n.Search(ctx, notion.SearchParams{Query: "Tasks", Filter: "data_source"})
	if err != nil || len(found.Results) != 1 || found.Results[0].Kind() != "data_source" {
		t.Fatalf("search %+v %v", found, err)
	}
	page, err := n.Page(ctx, pageID)
	if err != nil || page.Kind() != "page" {
		t.Fatalf("page %v %v", page, err)
	}
	db, err := n.Database(ctx, dbID)
	ds := notion.DataSourceIDs(db)
	if err != nil || db.Kind() != "database" || len(ds) != 1 {
		t.Fatalf("database %v %v", db, err)
	}
	if src, err := n.DataSource(ctx, ds[0]); err != nil || src.Kind() != "data_source" {
		t.Fatalf("data source %v %v", src, err)
	}
	rows, err := n.Query(ctx, ds[0], nil)
	if err != nil || len(rows.Results) != 2 {
		t.Fatalf("query %+v %v", rows, err)
	}
	clk.Advance(10 * time.Second)
	sub, err := n.CreatePage(ctx, notion.Parent{Kind: notion.ParentPage, ID: pageID}, notion.Title("Run log"), []notion.Object{notion.Paragraph("started")})
	if err != nil || sub.Kind() != "page" {
		t.Fatalf("create page %v %v", sub, err)
	}
	row, err := n.CreatePage(ctx, notion.Parent{Kind: notion.ParentDatabase, ID: dbID}, map[string]any{"Name": notion.Title("Ship it")["title"]}, nil)
	if err != nil || row.Kind() != "page" {
		t.Fatalf("create row %v %v", row, err)
	}
	if rows, _ := n.Query(ctx, ds[0], nil); len(rows.Results) != 3 {
		t.Fatalf("rows after insert: %d", len(rows.Results))
	}
	added, err := n.AppendBlocks(ctx, sub.ID(), []notion.Object{notion.Paragraph("finished")})
	if err != nil || len(added.Results) != 1 {
		t.Fatalf("append %+v %v", added, err)
	}
	clk.Advance(10 * time.Second)
	// A page declared a data source is refused before any write.
	before := sb.Counters()["notion"].APIRequests
	_, err = n.CreatePage(ctx, notion.Parent{Kind: notion.ParentDataSource, ID: pageID}, notion.Title("x"), nil)
	var pe *authgate.ProviderError
	if !errors.As(err, &pe) || pe.Status != 404 || pe.NotionCode != "object_not_found" || pe.RequestID == "" {
		t.Fatalf("page as data source: %#v", err)
	}
	if got := sb.Counters()["notion"].APIRequests - before; got != 1 {
		t.Fatalf("%d calls; want only the check's read", got)
	}
	_, err = n.CreatePage(ctx, notion.Parent{Kind: "workspace", ID: pageID}, notion.Title("x"), nil)
	if !errors.Is(err, notion.ErrWrongTarget) {
		t.Fatalf("unknown parent kind: %v", err)
	}
}
