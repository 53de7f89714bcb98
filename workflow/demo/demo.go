// Package demo is the workflow authgate ships to show its run gates: list
// the target Drive folder → create a Google Doc → read it back → append a
// line → add a row to a Notion database linking the doc → post the link to
// a Slack channel. `authgate demo` runs it against the sandbox.
//
// It must never reach past the connectors: every provider call goes through
// them, on the tokens the run's gate hands each step.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdocs"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/connector/notion"
	"github.com/authgate/authgate/connector/slack"
	"github.com/authgate/authgate/workflow"
)

// Name is the demo's workflow name.
const Name = "demo"

// Options points the connectors somewhere (zero: the real providers).
type Options struct {
	Drive, Docs, Notion, Slack string
	Transport                  http.RoundTripper
}

// Sandbox is Options for the sandbox mounted at base (an authgate URL).
func Sandbox(base string) Options {
	base = strings.TrimRight(base, "/")
	return Options{Drive: base + "/sandbox/google/drive/v3/", Docs: base + "/sandbox/google/", Notion: base + "/sandbox/notion/v1/", Slack: base + "/sandbox/slack/api/"}
}

// Actions are what the demo does, for its run's declaration.
var Actions = []string{"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update", "notion.read", "notion.insert", "slack.chat.post"}

// Checkpoints of the steps.
type (
	Listed  struct{ Files int }
	Created struct{ DocID, URL string }
	Read    struct{ Title string }
	Row     struct{ PageID string }
	Posted  struct{ Channel, TS string }
)

func targets(s *workflow.StepContext) authgate.VerifyTargets {
	var t authgate.VerifyTargets
	_ = json.Unmarshal(s.Targets, &t)
	return t
}

// Workflow is the demo, its connectors configured by o.
func Workflow(o Options) workflow.Workflow {
	drive := func(ctx context.Context, s *workflow.StepContext) (*gdrive.Client, error) {
		return gdrive.New(ctx, s.TokenSource("google"), gdrive.Options{Endpoint: o.Drive, Transport: o.Transport})
	}
	docs := func(ctx context.Context, s *workflow.StepContext) (*gdocs.Client, error) {
		return gdocs.New(ctx, s.TokenSource("google"), gdocs.Options{Endpoint: o.Docs, DriveEndpoint: o.Drive, Transport: o.Transport})
	}
	return workflow.Workflow{Name: Name, Steps: []workflow.Step{
		{Key: "drive_list", Actions: []string{"drive.files.list"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			d, err := drive(ctx, s)
			if err != nil {
				return nil, err
			}
			l, err := d.List(ctx, gdrive.ListParams{Folder: targets(s).DriveFolder, PageSize: 10, Fields: "files(id, name, mimeType)"})
			if err != nil {
				return nil, err
			}
			return Listed{Files: len(l.Files)}, nil
		}},
		{Key: "doc_create", Actions: []string{"drive.files.list", "docs.documents.create"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			// Docs takes no idempotency key: look before writing, so a
			// retry after a crash past the create finds the first Doc.
			title := "authgate demo " + string(s.RunID)
			if s.Recovering {
				dr, err := drive(ctx, s)
				if err != nil {
					return nil, err
				}
				l, err := dr.List(ctx, gdrive.ListParams{Query: "name = '" + title + "' and mimeType = '" + gdrive.MimeGoogleDoc + "' and trashed = false", PageSize: 1, Fields: "files(id)"})
				if err != nil {
					return nil, err
				}
				if len(l.Files) > 0 {
					return created(l.Files[0].Id), nil
				}
			}
			g, err := docs(ctx, s)
			if err != nil {
				return nil, err
			}
			d, err := g.Create(ctx, title)
			if err != nil {
				return nil, err
			}
			return created(d.DocumentId), nil
		}},
		{Key: "doc_read", Actions: []string{"docs.documents.get"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			g, err := docs(ctx, s)
			if err != nil {
				return nil, err
			}
			d, err := g.Get(ctx, c.DocID)
			if err != nil {
				return nil, err
			}
			return Read{Title: d.Title}, nil
		}},
		{Key: "doc_append", Actions: []string{"docs.documents.get", "docs.documents.update"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			g, err := docs(ctx, s)
			if err != nil {
				return nil, err
			}
			line := "Written by authgate run " + string(s.RunID) + "\n"
			if s.Recovering {
				d, err := g.Get(ctx, c.DocID)
				if err != nil {
					return nil, err
				}
				if strings.Contains(gdocs.Text(d), line) {
					return map[string]bool{"appended": true}, nil // appended before a crash
				}
			}
			return map[string]bool{"appended": true}, g.AppendText(ctx, c.DocID, line)
		}},
		{Key: "notion_row", Actions: []string{"notion.read", "notion.insert"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			db := targets(s).NotionDatabase
			if db == "" {
				return nil, fmt.Errorf("demo: the run declares no notion_database target")
			}
			n := notion.New(s.TokenSource("notion"), notion.Options{BaseURL: o.Notion, Transport: o.Transport})
			title := "authgate demo " + string(s.RunID)
			if s.Recovering {
				if id, err := findRow(ctx, n, db, title); err != nil || id != "" {
					return Row{PageID: id}, err
				}
			}
			row, err := n.CreatePage(ctx, notion.Parent{Kind: notion.ParentDatabase, ID: db},
				map[string]any{"Name": notion.Title(title)["title"]}, []notion.Object{notion.Paragraph(c.URL)})
			if err != nil {
				return nil, err
			}
			return Row{PageID: row.ID()}, nil
		}},
		// Slack's chat.postMessage takes no idempotency key and the demo
		// holds no history scope: a crash between the post and its
		// checkpoint can post twice. It is the last step for that reason.
		{Key: "slack_post", Actions: []string{"slack.chat.post"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			ch := targets(s).SlackChannel
			if ch == "" {
				return nil, fmt.Errorf("demo: the run declares no slack_channel target")
			}
			m, err := slack.New(s.TokenSource("slack"), slack.Options{BaseURL: o.Slack, Transport: o.Transport}).PostMessage(ctx, ch, "New doc from authgate: "+c.URL, nil)
			if err != nil {
				return nil, err
			}
			return Posted{Channel: m.Channel, TS: m.TS}, nil
		}},
	}}
}

func created(id string) Created {
	return Created{DocID: id, URL: "https://docs.google.com/document/d/" + id + "/edit"}
}

// findRow looks for a row titled title in the database (a retry after a
// crash past the insert), "" if there is none.
func findRow(ctx context.Context, n *notion.Client, db, title string) (string, error) {
	o, err := n.Database(ctx, db)
	if err != nil {
		return "", err
	}
	for _, ds := range notion.DataSourceIDs(o) {
		l, err := n.Query(ctx, ds, map[string]any{"filter": map[string]any{"property": "Name", "title": map[string]any{"equals": title}}})
		if err != nil {
			return "", err
		}
		for _, r := range l.Results {
			if rowTitle(r) == title {
				return r.ID(), nil
			}
		}
	}
	return "", nil
}

// rowTitle is the plain text of a row's Name property.
func rowTitle(o notion.Object) string {
	props, _ := o["properties"].(map[string]any)
	name, _ := props["Name"].(map[string]any)
	parts, _ := name["title"].([]any)
	var b strings.Builder
	for _, p := range parts {
		m, _ := p.(map[string]any)
		t, _ := m["plain_text"].(string)
		if t == "" {
			if tx, ok := m["text"].(map[string]any); ok {
				t, _ = tx["content"].(string)
			}
		}
		b.WriteString(t)
	}
	return b.String()
}
