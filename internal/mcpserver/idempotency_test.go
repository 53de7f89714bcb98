package mcpserver_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestWriteToolsTakeIdempotencyKey: the README's idempotency_key argument
// is in every write tool's schema and accepted in a call; the same key and
// arguments make one Slack post, a new key a second one.
func TestWriteToolsTakeIdempotencyKey(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	env.Connect(t, authgatetest.ConnectParams{UserID: "ida", Provider: "slack", Actions: []string{"slack.chat.post"}, Choice: sandbox.Choice{Account: "ida@acme.example"}})
	c, _ := newClient(false)
	cs := transports[0].connect(t, env, env.AdminKey, "ida", c)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	writes := []string{"docs_create", "docs_append", "notion_create_page", "slack_post_message"}
	for _, tool := range res.Tools {
		schema, _ := json.Marshal(tool.InputSchema)
		if slices.Contains(writes, tool.Name) != strings.Contains(string(schema), `"idempotency_key"`) {
			t.Errorf("%s: idempotency_key in schema %t; a write: %t", tool.Name, strings.Contains(string(schema), `"idempotency_key"`), slices.Contains(writes, tool.Name))
		}
	}
	post := func(key string) string {
		t.Helper()
		out := ok(t, cs, "slack_post_message", map[string]any{"channel": "general", "text": "standup at 10", "idempotency_key": key})
		ts, _ := out["ts"].(string)
		return ts
	}
	first, again, other := post("standup-1"), post("standup-1"), post("standup-2")
	if first == "" || again != first || other == first {
		t.Fatalf("posts %q %q %q: the same key must answer the first post, another key post again", first, again, other)
	}
}
