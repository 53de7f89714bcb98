package slack_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/connector/slack"
	"github.com/authgate/authgate/sandbox"
)

// TestSlackOperations: auth.test, conversations.list, chat.postMessage, and
// Slack's HTTP-200 failures as typed errors.
func TestSlackOperations(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{Provider: "slack", Actions: []string{"slack.chat.post", "slack.channels.list"}, Choice: sandbox.Choice{Account: "sal@acme.example"}})
	ctx := context.Background()
	s := slack.New(env.Client.TokenSource(ctx, cred.ID, authgate.TokenRequest{}), slack.Options{BaseURL: env.SandboxAPI("slack")})
	id, err := s.AuthTest(ctx)
	if err != nil || id.TeamID != cred.WorkspaceID || !slices.Contains(id.Scopes, "chat:write") {
		t.Fatalf("auth.test %+v %v", id, err)
	}
	chans, err := s.ConversationsList(ctx, slack.ListParams{})
	if err != nil || len(chans.Channels) < 2 {
		t.Fatalf("conversations.list %+v %v", chans, err)
	}
	general := env.Server.Sandbox.Slack().ChannelID("", "general")
	m, err := s.PostMessage(ctx, general, "run finished", nil)
	if err != nil || m.Channel != general || m.TS == "" {
		t.Fatalf("post %+v %v", m, err)
	}
	_, err = s.PostMessage(ctx, env.Server.Sandbox.Slack().ChannelID("", "random"), "hi", nil)
	var pe *authgate.ProviderError
	if !errors.As(err, &pe) || pe.SlackError != "not_in_channel" || pe.Status != 200 {
		t.Fatalf("post to a channel the bot is not in: %#v", err)
	}
	_, err = s.ConversationsList(ctx, slack.ListParams{Types: []string{"private_channel"}})
	if !errors.As(err, &pe) || pe.SlackError != "missing_scope" || pe.SlackNeeded != "groups:read" {
		t.Fatalf("private channels without groups:read: %#v", err)
	}
}
