package gdocs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/connector/gdocs"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/sandbox"
)

// TestDocsOperations: create (a real Google Doc, mimeType read back through
// Drive), append text, get, delete — on the official client.
func TestDocsOperations(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: []string{"docs.documents.create", "docs.documents.get", "docs.documents.update"}, Choice: sandbox.Choice{Account: "doc@acme.example"}})
	ctx := context.Background()
	ts := env.Client.TokenSource(ctx, cred.ID, authgate.TokenRequest{})
	g, err := gdocs.New(ctx, ts, gdocs.Options{Endpoint: env.SandboxAPI("docs"), DriveEndpoint: env.SandboxAPI("drive")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := g.Create(ctx, "Agent notes")
	if err != nil || d.DocumentId == "" || d.Title != "Agent notes" {
		t.Fatalf("create %+v %v", d, err)
	}
	dr, _ := gdrive.New(ctx, ts, gdrive.Options{Endpoint: env.SandboxAPI("drive")})
	if f, err := dr.Get(ctx, d.DocumentId, "mimeType"); err != nil || f.MimeType != "application/vnd.google-apps.document" {
		t.Fatalf("the document's mimeType %+v %v", f, err)
	}
	if err := g.AppendText(ctx, d.DocumentId, "first line\n"); err != nil {
		t.Fatal(err)
	}
	if err := g.AppendText(ctx, d.DocumentId, "second line\n"); err != nil {
		t.Fatal(err)
	}
	got, err := g.Get(ctx, d.DocumentId)
	if err != nil || gdocs.Text(got) != "first line\nsecond line\n\n" {
		t.Fatalf("text %q %v", gdocs.Text(got), err)
	}
	if err := g.Delete(ctx, d.DocumentId); err != nil {
		t.Fatal(err)
	}
	_, err = g.Get(ctx, d.DocumentId)
	var pe *authgate.ProviderError
	if !errors.As(err, &pe) || pe.Status != 404 || pe.GoogleStatus != "NOT_FOUND" {
		t.Fatalf("get after delete: %#v", err)
	}
}
