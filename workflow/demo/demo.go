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
var Actions = []string{"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update", "notion.insert", "slack.chat.post"}

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
		{Key: "doc_create", Actions: []string{"docs.documents.create"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			g, err := docs(ctx, s)
			if err != nil {
				return nil, err
			}
			d, err := g.Create(ctx, "authgate demo "+string(s.RunID))
			if err != nil {
				return nil, err
			}
			return Created{DocID: d.DocumentId, URL: "https://docs.google.com/document/d/" + d.DocumentId + "/edit"}, nil
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
		{Key: "doc_append", Actions: []string{"docs.documents.update"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			g, err := docs(ctx, s)
			if err != nil {
				return nil, err
			}
			return map[string]bool{"appended": true}, g.AppendText(ctx, c.DocID, "Written by authgate run "+string(s.RunID)+"\n")
		}},
		{Key: "notion_row", Actions: []string{"notion.insert"}, Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			var c Created
			if err := s.Checkpoint("doc_create", &c); err != nil {
				return nil, err
			}
			db := targets(s).NotionDatabase
			if db == "" {
				return nil, fmt.Errorf("demo: the run declares no notion_database target")
			}
			n := notion.New(s.TokenSource("notion"), notion.Options{BaseURL: o.Notion, Transport: o.Transport})
			row, err := n.CreatePage(ctx, notion.Parent{Kind: notion.ParentDatabase, ID: db},
				map[string]any{"Name": notion.Title("authgate demo " + string(s.RunID))["title"]}, []notion.Object{notion.Paragraph(c.URL)})
			if err != nil {
				return nil, err
			}
			return Row{PageID: row.ID()}, nil
		}},
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
