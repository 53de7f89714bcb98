package gdrive_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/sandbox"
)

func connect(t *testing.T, account string, actions ...string) (*authgatetest.Env, *gdrive.Client) {
	t.Helper()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: actions, Choice: sandbox.Choice{Account: account}})
	ctx := context.Background()
	d, err := gdrive.New(ctx, env.Client.TokenSource(ctx, cred.ID, authgate.TokenRequest{}), gdrive.Options{Endpoint: env.SandboxAPI("drive")})
	if err != nil {
		t.Fatal(err)
	}
	env.Server.Sandbox.ResetCounters()
	return env, d
}

// TestDriveOperations: folders, a Google Doc (mimeType read back), an
// ordinary file, list in a folder with fields, get, delete — on the official
// client with an authgate-backed token source.
func TestDriveOperations(t *testing.T) {
	t.Parallel()
	env, d := connect(t, "dave@acme.example", "drive.files.create", "drive.files.list")
	ctx := context.Background()
	folder, err := d.CreateFolder(ctx, "Reports")
	if err != nil || folder.MimeType != gdrive.MimeFolder {
		t.Fatalf("folder %+v %v", folder, err)
	}
	doc, err := d.CreateGoogleDoc(ctx, "Weekly report", "Hello\n", folder.Id)
	if err != nil || doc.MimeType != gdrive.MimeGoogleDoc || doc.Parents[0] != folder.Id {
		t.Fatalf("google doc %+v %v", doc, err)
	}
	txt, err := d.Create(ctx, gdrive.CreateParams{Kind: gdrive.KindFile, Name: "raw.txt", MimeType: "text/plain", Parents: []string{folder.Id}, Content: strings.NewReader("x")})
	if err != nil || txt.MimeType != "text/plain" {
		t.Fatalf("text file %+v %v", txt, err)
	}
	l, err := d.List(ctx, gdrive.ListParams{Folder: folder.Id, Query: "mimeType = '" + gdrive.MimeGoogleDoc + "'", Fields: "files(id, name, mimeType)"})
	if err != nil || len(l.Files) != 1 || l.Files[0].Id != doc.Id || l.Files[0].Name != "Weekly report" {
		t.Fatalf("list %+v %v", l, err)
	}
	got, err := d.Get(ctx, doc.Id, "id, mimeType, webViewLink")
	if err != nil || got.MimeType != gdrive.MimeGoogleDoc || !strings.Contains(got.WebViewLink, "docs.google.com/document") {
		t.Fatalf("get %+v %v", got, err)
	}
	if err := d.Delete(ctx, txt.Id); err != nil {
		t.Fatal(err)
	}
	// A provider error is the one parser's typed error.
	_, err = d.Get(ctx, txt.Id, "")
	var pe *authgate.ProviderError
	if !errors.As(err, &pe) || pe.Status != 404 || pe.Code() != "notFound" || pe.Provider != "google" {
		t.Fatalf("get of a deleted file: %#v", err)
	}
	if c := env.Server.Sandbox.Counters()["google"]; c.APIRequests != 7 {
		t.Fatalf("sandbox counted %d API calls; want 7", c.APIRequests)
	}
}

// TestGoogleDocRequestThatWouldMakeTextIsRefused: asking for a Google Doc
// with a text/plain MIME type is refused before anything is sent — no
// provider call, no token request.
func TestGoogleDocRequestThatWouldMakeTextIsRefused(t *testing.T) {
	t.Parallel()
	env, d := connect(t, "tess@acme.example", "drive.files.create")
	ctx := context.Background()
	for _, p := range []gdrive.CreateParams{
		{Kind: gdrive.KindGoogleDoc, Name: "notes.txt", MimeType: "text/plain", Content: strings.NewReader("hi")},
		{Kind: gdrive.KindGoogleDoc, Name: "notes", MimeType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{Kind: gdrive.KindFile, Name: "sneaky", MimeType: gdrive.MimeGoogleDoc},
	} {
		_, err := d.Create(ctx, p)
		var ae *authgate.Error
		if !errors.Is(err, gdrive.ErrWrongMimeType) || !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest {
			t.Fatalf("%+v: %v", p, err)
		}
	}
	if c := env.Server.Sandbox.Counters()["google"]; c.APIRequests != 0 || c.TokenRequests != 0 {
		t.Fatalf("refused creates reached the provider: %+v", c)
	}
	if len(env.Server.Sandbox.Google().FilesOf("tess@acme.example")) != 3 {
		t.Fatal("a file was created")
	}
}

// TestDriveTokenErrors: a credential that needs the user is the token API's
// *authgate.Error, with its reconnect link, through the official client.
func TestDriveTokenErrors(t *testing.T) {
	t.Parallel()
	env, d := connect(t, "ivy@acme.example", "drive.files.list")
	page, _ := env.Client.Credentials(context.Background(), authgate.CredentialFilter{})
	if _, err := env.Client.DeleteCredential(context.Background(), page.Credentials[0].ID); err != nil {
		t.Fatal(err)
	}
	_, err := d.List(context.Background(), gdrive.ListParams{PageSize: 1})
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != authgate.ClassReauthRequired {
		t.Fatalf("list with a disconnected credential: %#v", err)
	}
}
