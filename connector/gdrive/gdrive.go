// Package gdrive is authgate's Google Drive connector: files.list, files.get,
// files.create (folders, files, Google Docs) and files.delete on the official
// google.golang.org/api/drive/v3 client, authenticated by an
// oauth2.TokenSource backed by authgate (authgate.Client.TokenSource), so the
// caller never holds a refresh token.
//
// Errors: a provider failure is a *authgate.ProviderError made by
// authgate.ParseProviderError — the one parser the classifier
// (internal/classify) also reads, moved to the root package so that this
// public package can return it without importing internal/. Callers branch
// on its fields (Status, Code(), RequestID) or classify it with
// authgate.Client.Classify. A failure to get a token is the *authgate.Error
// the token API returned. A request refused before any call (a Google Doc
// asked for with another MIME type) is a ClassInvalidRequest *authgate.Error
// wrapping ErrWrongMimeType.
//
// It must never log, store or return a token.
package gdrive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/api/drive/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/authgate/authgate"
)

// MIME types Drive gives Google's own formats.
const (
	MimeGoogleDoc = "application/vnd.google-apps.document"
	MimeFolder    = "application/vnd.google-apps.folder"
)

// DefaultEndpoint is Drive v3's base URL.
const DefaultEndpoint = "https://www.googleapis.com/drive/v3/"

// ErrWrongMimeType marks a create refused (or a result rejected) because the
// file would not be, or is not, of the kind asked for.
var ErrWrongMimeType = errors.New("wrong MIME type")

// Options configures a Client. The zero value talks to Google.
type Options struct {
	// Endpoint replaces DefaultEndpoint (the sandbox:
	// <base>/sandbox/google/drive/v3/).
	Endpoint string
	// Transport carries the calls (default http.DefaultTransport).
	Transport http.RoundTripper
}

// Client calls Drive as the credential behind its token source.
type Client struct {
	svc *drive.Service
}

// New returns a Drive client whose every call takes a token from ts.
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
	svc, err := drive.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gdrive: %w", err)
	}
	return &Client{svc: svc}, nil
}

// Service is the underlying official client, for calls this package does
// not wrap (their errors are not converted).
func (c *Client) Service() *drive.Service { return c.svc }

// ListParams narrows files.list.
type ListParams struct {
	// Query is Drive's q; Folder, when set, adds "'<Folder>' in parents".
	Query    string
	Folder   string
	PageSize int64
	// PageToken continues a previous page.
	PageToken string
	// Fields is Drive's partial response selector, e.g.
	// "nextPageToken, files(id, name, mimeType)" (default: Drive's).
	Fields string
}

// List is files.list.
func (c *Client) List(ctx context.Context, p ListParams) (*drive.FileList, error) {
	call := c.svc.Files.List().Context(ctx)
	q := p.Query
	if p.Folder != "" {
		in := "'" + strings.ReplaceAll(p.Folder, "'", `\'`) + "' in parents"
		switch {
		case strings.Contains(strings.ToLower(q), " or ") || strings.Contains(strings.ToLower(q), "not "):
			// Only a query with or/not needs parentheses to keep the
			// folder clause binding the whole of it.
			q = "(" + q + ") and " + in
		case q != "":
			q += " and " + in
		default:
			q = in
		}
	}
	if q != "" {
		call = call.Q(q)
	}
	if p.PageSize > 0 {
		call = call.PageSize(p.PageSize)
	}
	if p.PageToken != "" {
		call = call.PageToken(p.PageToken)
	}
	if p.Fields != "" {
		call = call.Fields(googleapi.Field(p.Fields))
	}
	out, err := call.Do()
	return out, APIError(err)
}

// Get is files.get (metadata; fields as in ListParams, default
// "id, name, mimeType, parents").
func (c *Client) Get(ctx context.Context, id, fields string) (*drive.File, error) {
	if fields == "" {
		fields = "id, name, mimeType, parents"
	}
	out, err := c.svc.Files.Get(id).Fields(googleapi.Field(fields)).Context(ctx).Do()
	return out, APIError(err)
}

// Kind is what a create is meant to produce.
type Kind string

const (
	// KindFile is an ordinary file of MimeType (or of its content's type).
	KindFile Kind = "file"
	// KindGoogleDoc is a Google Doc: MimeType must be empty or MimeGoogleDoc;
	// uploaded text is imported into it.
	KindGoogleDoc Kind = "google_doc"
	// KindFolder is a folder: no content, MimeType empty or MimeFolder.
	KindFolder Kind = "folder"
)

// CreateParams describes files.create.
type CreateParams struct {
	Kind     Kind
	Name     string
	MimeType string
	Parents  []string
	// Content is uploaded (multipart) when set; ContentType is its type.
	Content     io.Reader
	ContentType string
	// Fields of the answer (default "id, name, mimeType, parents"; mimeType
	// is always added, it is what the result is checked against).
	Fields string
}

// CheckCreate refuses, before any call, a create whose result would not be
// of the kind asked for: above all a .txt (text/plain) where a Google Doc
// was asked for. It is what Create runs first.
func CheckCreate(p CreateParams) error {
	switch p.Kind {
	case KindGoogleDoc:
		if p.MimeType != "" && p.MimeType != MimeGoogleDoc {
			return wrongMime("a Google Doc was asked for, but the request says mimeType %q, which Drive would store as an ordinary %s file; set mimeType %s (or leave it empty) to get a Doc", p.MimeType, p.MimeType, MimeGoogleDoc)
		}
	case KindFolder:
		if p.MimeType != "" && p.MimeType != MimeFolder {
			return wrongMime("a folder was asked for, but the request says mimeType %q", p.MimeType)
		}
		if p.Content != nil {
			return wrongMime("a folder has no content")
		}
	case KindFile, "":
		if strings.HasPrefix(p.MimeType, "application/vnd.google-apps.") {
			return wrongMime("an ordinary file was asked for, but mimeType %q makes a Google %s; use Kind %s or %s", p.MimeType, strings.TrimPrefix(p.MimeType, "application/vnd.google-apps."), KindGoogleDoc, KindFolder)
		}
	default:
		return authgate.Errorf(authgate.ClassInvalidRequest, "unknown kind %q (want file, google_doc or folder)", p.Kind)
	}
	if strings.TrimSpace(p.Name) == "" {
		return authgate.Errorf(authgate.ClassInvalidRequest, "a name is required")
	}
	return nil
}

func wrongMime(format string, args ...any) error {
	return authgate.Errorf(authgate.ClassInvalidRequest, format, args...).WithCause(ErrWrongMimeType)
}

// want is the MIME type a kind must come back with ("" for files: any
// non-Google type).
func (p CreateParams) want() string {
	switch p.Kind {
	case KindGoogleDoc:
		return MimeGoogleDoc
	case KindFolder:
		return MimeFolder
	}
	return p.MimeType
}

// Create is files.create, checked before (CheckCreate) and after: the
// answer's mimeType must be the one asked for, or the result is an error
// wrapping ErrWrongMimeType (with the file that was made, so it can be
// removed).
func (c *Client) Create(ctx context.Context, p CreateParams) (*drive.File, error) {
	if err := CheckCreate(p); err != nil {
		return nil, err
	}
	meta := &drive.File{Name: p.Name, Parents: p.Parents, MimeType: p.want()}
	fields := p.Fields
	if fields == "" {
		fields = "id, name, mimeType, parents"
	}
	if !strings.Contains(fields, "mimeType") {
		fields += ", mimeType"
	}
	call := c.svc.Files.Create(meta).Fields(googleapi.Field(fields)).Context(ctx)
	if p.Content != nil {
		var mo []googleapi.MediaOption
		if p.ContentType != "" {
			mo = append(mo, googleapi.ContentType(p.ContentType))
		}
		call = call.Media(p.Content, mo...)
	}
	f, err := call.Do()
	if err != nil {
		return nil, APIError(err)
	}
	if w := p.want(); w != "" && f.MimeType != w {
		return f, wrongMime("Drive made %q as %s, not %s", f.Id, f.MimeType, w)
	}
	return f, nil
}

// CreateFolder makes a folder.
func (c *Client) CreateFolder(ctx context.Context, name string, parents ...string) (*drive.File, error) {
	return c.Create(ctx, CreateParams{Kind: KindFolder, Name: name, Parents: parents})
}

// CreateGoogleDoc makes a Google Doc through Drive, importing text when
// given, and checks the mimeType that comes back.
func (c *Client) CreateGoogleDoc(ctx context.Context, name, text string, parents ...string) (*drive.File, error) {
	p := CreateParams{Kind: KindGoogleDoc, Name: name, Parents: parents}
	if text != "" {
		p.Content, p.ContentType = strings.NewReader(text), "text/plain"
	}
	return c.Create(ctx, p)
}

// Delete is files.delete: the file is removed for good, not trashed.
func (c *Client) Delete(ctx context.Context, id string) error {
	return APIError(c.svc.Files.Delete(id).Context(ctx).Do())
}

// APIError converts an error from a Google API client into what this
// connector returns: a *authgate.ProviderError for a provider answer or a
// transport failure, the *authgate.Error of a token the token source could
// not get, nil for nil.
func APIError(err error) error {
	if err == nil {
		return nil
	}
	var ae *authgate.Error
	if errors.As(err, &ae) {
		return ae
	}
	var pe *authgate.ProviderError
	if errors.As(err, &pe) {
		return pe
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return authgate.ParseProviderError(authgate.ProviderResponse{Provider: "google", Operation: authgate.ProviderOpAPI, Status: ge.Code, Header: ge.Header, Body: []byte(ge.Body)})
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &authgate.ProviderError{Provider: "google", Operation: authgate.ProviderOpAPI, Cause: err}
}
