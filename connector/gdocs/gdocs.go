// Package gdocs is authgate's Google Docs connector: documents.create,
// documents.get and appending text (documents.batchUpdate with insertText at
// the end of the body) on the official google.golang.org/api/docs/v1
// client, authenticated by an oauth2.TokenSource backed by authgate.
//
// A document made here is a Google Doc by construction (documents.create
// makes nothing else), and Create still proves it: it reads the file's
// mimeType back through Drive and fails unless it is
// application/vnd.google-apps.document — so "create a Google Doc" can never
// silently hand back something else. Errors are those of package gdrive: a
// *authgate.ProviderError from the one parser, or the token API's
// *authgate.Error. It must never log, store or return a token.
package gdocs

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/api/docs/v1"
	"google.golang.org/api/option"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdrive"
)

// DefaultEndpoint is the Docs API's base URL.
const DefaultEndpoint = "https://docs.googleapis.com/"

// Options configures a Client. The zero value talks to Google.
type Options struct {
	// Endpoint replaces DefaultEndpoint (the sandbox: <base>/sandbox/google/).
	Endpoint string
	// DriveEndpoint is where Create reads the mimeType back and Delete
	// removes a document (default gdrive.DefaultEndpoint).
	DriveEndpoint string
	Transport     http.RoundTripper
}

// Client calls the Docs API (and Drive for mimeType and delete).
type Client struct {
	svc   *docs.Service
	drive *gdrive.Client
}

// New returns a Docs client whose every call takes a token from ts.
func New(ctx context.Context, ts oauth2.TokenSource, o Options) (*Client, error) {
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base}}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if o.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(o.Endpoint))
	}
	svc, err := docs.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gdocs: %w", err)
	}
	d, err := gdrive.New(ctx, ts, gdrive.Options{Endpoint: o.DriveEndpoint, Transport: base})
	if err != nil {
		return nil, err
	}
	return &Client{svc: svc, drive: d}, nil
}

// Service is the underlying official client.
func (c *Client) Service() *docs.Service { return c.svc }

// Create makes a blank Google Doc titled title (documents.create) and reads
// its mimeType back through Drive (files.get): two calls. A file that is not
// a Google Doc is an error wrapping gdrive.ErrWrongMimeType.
func (c *Client) Create(ctx context.Context, title string) (*docs.Document, error) {
	d, err := c.CreateUnchecked(ctx, title)
	if err != nil {
		return nil, err
	}
	f, err := c.drive.Get(ctx, d.DocumentId, "id, mimeType")
	if err != nil {
		return d, err
	}
	if f.MimeType != gdrive.MimeGoogleDoc {
		return d, authgate.Errorf(authgate.ClassInvalidRequest, "documents.create made %q as %s, not a Google Doc", d.DocumentId, f.MimeType).WithCause(gdrive.ErrWrongMimeType)
	}
	return d, nil
}

// CreateUnchecked is documents.create alone (one call).
func (c *Client) CreateUnchecked(ctx context.Context, title string) (*docs.Document, error) {
	d, err := c.svc.Documents.Create(&docs.Document{Title: title}).Context(ctx).Do()
	return d, gdrive.APIError(err)
}

// Get is documents.get.
func (c *Client) Get(ctx context.Context, id string) (*docs.Document, error) {
	d, err := c.svc.Documents.Get(id).Context(ctx).Do()
	return d, gdrive.APIError(err)
}

// AppendText inserts text at the end of the document's body.
func (c *Client) AppendText(ctx context.Context, id, text string) error {
	_, err := c.svc.Documents.BatchUpdate(id, &docs.BatchUpdateDocumentRequest{Requests: []*docs.Request{
		{InsertText: &docs.InsertTextRequest{Text: text, EndOfSegmentLocation: &docs.EndOfSegmentLocation{}}},
	}}).Context(ctx).Do()
	return gdrive.APIError(err)
}

// Delete removes the document through Drive (files.delete).
func (c *Client) Delete(ctx context.Context, id string) error { return c.drive.Delete(ctx, id) }

// Text returns the plain text of a document's body.
func Text(d *docs.Document) string {
	var b strings.Builder
	if d == nil || d.Body == nil {
		return ""
	}
	for _, el := range d.Body.Content {
		if el.Paragraph == nil {
			continue
		}
		for _, pe := range el.Paragraph.Elements {
			if pe.TextRun != nil {
				b.WriteString(pe.TextRun.Content)
			}
		}
	}
	return b.String()
}
