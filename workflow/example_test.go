package workflow_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/workflow"
)

// A workflow of one step; the runner stops cleanly when a credential needs
// its user, and Resume continues after the reconnect.
func Example() {
	wf := workflow.Workflow{Name: "count-files", Steps: []workflow.Step{{
		Key:     "list",
		Actions: []string{"drive.files.list"},
		Do: func(ctx context.Context, s *workflow.StepContext) (any, error) {
			d, err := gdrive.New(ctx, s.TokenSource("google"), gdrive.Options{})
			if err != nil {
				return nil, err
			}
			l, err := d.List(ctx, gdrive.ListParams{PageSize: 10})
			if err != nil {
				return nil, err // a *authgate.ProviderError: the runner reports it and retries, blocks or fails
			}
			return map[string]int{"files": len(l.Files)}, nil
		},
	}}}
	r := &workflow.Runner{API: authgate.NewClient("http://127.0.0.1:8080", "ag_…"), Workflow: wf}
	run, err := r.Start(context.Background(), authgate.RunCreateRequest{UserID: "alice", Bindings: map[string]authgate.CredentialID{"google": "cred_…"}})
	var blocked *workflow.BlockedError
	if errors.As(err, &blocked) {
		fmt.Println("ask the user to open", blocked.ReconnectURL(), "then call r.Resume(ctx,", run.ID, ")")
	}
}
