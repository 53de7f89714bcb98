// Package notion is authgate's Notion connector on net/http (Notion has no
// official Go client): users/me, search, pages, databases and data sources,
// query, create page or row, append blocks. It pins Notion-Version
// 2025-09-03, the data-source model: a database holds data sources, rows are
// queried at POST /v1/data_sources/{id}/query and created under a
// data_source_id parent.
//
// Writes check their target first: CreatePage reads the parent as the kind
// it is declared to be (page, database or data source) and refuses when
// Notion says it is something else, so a row never lands as a sub-page or
// the reverse. A target that is not shared with the integration answers 404
// object_not_found, even though users/me works: that is a sharing problem
// ("Add connections" on the page), not a broken token.
//
// Errors: a provider failure is a *authgate.ProviderError made by
// authgate.ParseProviderError, the one parser the classifier also reads; a
// failure to get a token is the token API's *authgate.Error. It must never
// log, store or return a token.
package notion

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
)

// Version is the Notion-Version every request carries.
const Version = "2025-09-03"

// DefaultBaseURL is Notion's API root.
const DefaultBaseURL = "https://api.notion.com/v1/"

// Options configures a Client. The zero value talks to Notion.
type Options struct {
	// BaseURL replaces DefaultBaseURL (the sandbox: <base>/sandbox/notion/v1/).
	BaseURL   string
	Transport http.RoundTripper
}

// Client calls Notion as the integration install behind its token source.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a Notion client whose every call takes a token from ts.
func New(ts oauth2.TokenSource, o Options) *Client {
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	u := o.BaseURL
	if u == "" {
		u = DefaultBaseURL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return &Client{base: u, hc: &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base}}}
}

// Object is a Notion object as JSON (page, database, data source, block,
// user): its fields vary by kind and version, so callers read what they need.
type Object map[string]any

// Kind is the object's "object" field ("page", "database", "data_source", …).
func (o Object) Kind() string { s, _ := o["object"].(string); return s }

// ID is the object's id.
func (o Object) ID() string { s, _ := o["id"].(string); return s }

// List is a paginated answer.
type List struct {
	Results    []Object `json:"results"`
	NextCursor *string  `json:"next_cursor"`
	HasMore    bool     `json:"has_more"`
}

// User is users/me's answer: the integration's bot user.
type User struct {
	Object string `json:"object"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Bot    struct {
		Owner struct {
			Type string `json:"type"`
			User *struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"owner"`
		WorkspaceName string `json:"workspace_name"`
		WorkspaceID   string `json:"workspace_id"`
	} `json:"bot"`
}

// Me is GET /v1/users/me.
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	return &u, c.do(ctx, http.MethodGet, "users/me", nil, &u)
}

// SearchParams narrows POST /v1/search. Filter is "page" or "data_source".
type SearchParams struct {
	Query       string
	Filter      string
	PageSize    int
	StartCursor string
}

// Search is POST /v1/search: only what is shared with the integration.
func (c *Client) Search(ctx context.Context, p SearchParams) (*List, error) {
	body := map[string]any{}
	if p.Query != "" {
		body["query"] = p.Query
	}
	if p.Filter != "" {
		body["filter"] = map[string]string{"property": "object", "value": p.Filter}
	}
	if p.PageSize > 0 {
		body["page_size"] = p.PageSize
	}
	if p.StartCursor != "" {
		body["start_cursor"] = p.StartCursor
	}
	var l List
	return &l, c.do(ctx, http.MethodPost, "search", body, &l)
}

// Page is GET /v1/pages/{id}.
func (c *Client) Page(ctx context.Context, id string) (Object, error) {
	return c.object(ctx, "pages/"+url.PathEscape(id))
}

// Database is GET /v1/databases/{id}; from 2025-09-03 it lists the
// database's data_sources instead of its properties.
func (c *Client) Database(ctx context.Context, id string) (Object, error) {
	return c.object(ctx, "databases/"+url.PathEscape(id))
}

// DataSource is GET /v1/data_sources/{id}.
func (c *Client) DataSource(ctx context.Context, id string) (Object, error) {
	return c.object(ctx, "data_sources/"+url.PathEscape(id))
}

// DataSourceIDs lists a database object's data source ids.
func DataSourceIDs(db Object) []string {
	var out []string
	list, _ := db["data_sources"].([]any)
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// Query is POST /v1/data_sources/{id}/query with an optional filter/sorts
// body.
func (c *Client) Query(ctx context.Context, dataSourceID string, body map[string]any) (*List, error) {
	if body == nil {
		body = map[string]any{}
	}
	var l List
	return &l, c.do(ctx, http.MethodPost, "data_sources/"+url.PathEscape(dataSourceID)+"/query", body, &l)
}

// ParentKind is what a new page is declared to go under.
type ParentKind string

const (
	// ParentPage: a sub-page of a page.
	ParentPage ParentKind = "page"
	// ParentDataSource: a row of a data source.
	ParentDataSource ParentKind = "data_source"
	// ParentDatabase: a row of the database's (first) data source.
	ParentDatabase ParentKind = "database"
)

// Parent is where CreatePage puts the page.
type Parent struct {
	Kind ParentKind
	ID   string
}

// ErrWrongTarget marks a write refused because the target is not of the
// declared kind.
var ErrWrongTarget = errors.New("target is not of the declared kind")

// CheckParent reads the parent as its declared kind (one call) and returns
// the parent to write under: a database resolves to its first data source.
func (c *Client) CheckParent(ctx context.Context, p Parent) (map[string]string, error) {
	switch p.Kind {
	case ParentPage:
		o, err := c.Page(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		if o.Kind() != "page" {
			return nil, wrongTarget(p, o.Kind())
		}
		return map[string]string{"page_id": o.ID()}, nil
	case ParentDataSource:
		o, err := c.DataSource(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		if o.Kind() != "data_source" {
			return nil, wrongTarget(p, o.Kind())
		}
		return map[string]string{"data_source_id": o.ID()}, nil
	case ParentDatabase:
		o, err := c.Database(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		ds := DataSourceIDs(o)
		if o.Kind() != "database" || len(ds) == 0 {
			return nil, wrongTarget(p, o.Kind())
		}
		return map[string]string{"data_source_id": ds[0]}, nil
	}
	return nil, authgate.Errorf(authgate.ClassInvalidRequest, "parent kind %q: want page, database or data_source", p.Kind).WithCause(ErrWrongTarget)
}

func wrongTarget(p Parent, got string) error {
	return authgate.Errorf(authgate.ClassInvalidRequest, "%s was declared a %s but Notion says it is a %q; nothing was written", p.ID, p.Kind, got).WithCause(ErrWrongTarget)
}

// CreatePage is POST /v1/pages under parent, after CheckParent: a page
// (properties {"title": …}) or a row (the data source's properties).
// children are blocks to put in it.
func (c *Client) CreatePage(ctx context.Context, parent Parent, properties map[string]any, children []Object) (Object, error) {
	pp, err := c.CheckParent(ctx, parent)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"parent": pp, "properties": properties}
	if len(children) > 0 {
		body["children"] = children
	}
	var o Object
	err = c.do(ctx, http.MethodPost, "pages", body, &o)
	return o, err
}

// AppendBlocks is PATCH /v1/blocks/{id}/children.
func (c *Client) AppendBlocks(ctx context.Context, blockID string, children []Object) (*List, error) {
	var l List
	return &l, c.do(ctx, http.MethodPatch, "blocks/"+url.PathEscape(blockID)+"/children", map[string]any{"children": children}, &l)
}

// Title is a page's title property.
func Title(text string) map[string]any {
	return map[string]any{"title": map[string]any{"title": []any{map[string]any{"text": map[string]any{"content": text}}}}}
}

// Paragraph is a paragraph block.
func Paragraph(text string) Object {
	return Object{"object": "block", "type": "paragraph", "paragraph": map[string]any{"rich_text": []any{map[string]any{"type": "text", "text": map[string]any{"content": text}}}}}
}

func (c *Client) object(ctx context.Context, path string) (Object, error) {
	var o Object
	err := c.do(ctx, http.MethodGet, path, nil, &o)
	return o, err
}

// maxResponse caps what one answer may take.
const maxResponse = 8 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("notion: encode %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Notion-Version", Version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ae *authgate.Error
		if errors.As(err, &ae) {
			return ae
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &authgate.ProviderError{Provider: "notion", Operation: authgate.ProviderOpAPI, Cause: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &authgate.ProviderError{Provider: "notion", Operation: authgate.ProviderOpAPI, Status: resp.StatusCode, Cause: err}
	}
	if resp.StatusCode >= 300 {
		return authgate.ParseProviderError(authgate.ProviderResponse{Provider: "notion", Operation: authgate.ProviderOpAPI, Status: resp.StatusCode, Header: resp.Header, Body: data})
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("notion: decode %s: %w", path, err)
	}
	return nil
}
