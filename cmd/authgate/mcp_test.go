package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestMCPStdio runs `authgate mcp` with its stdin/stdout piped to the SDK's
// own client: the tools list, and a read as the connected user.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "slack", Actions: []string{"slack.channels.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	root := newRootCmd()
	root.SetArgs([]string{"mcp", "--server", env.URL, "--api-key", env.AdminKey, "--user", "alice"})
	root.SetIn(inR)
	root.SetOut(outW)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); outW.Close() }()
	t.Cleanup(func() { cancel(); inW.Close(); <-done })

	c := mcp.NewClient(&mcp.Implementation{Name: "desktop-agent", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != 11 {
		t.Fatalf("tools %v %v", tools, err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slack_list_channels"})
	if err != nil || res.IsError {
		t.Fatalf("slack_list_channels %v %v", res, err)
	}
	var out struct {
		Channels []any `json:"channels"`
	}
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &out); err != nil || len(out.Channels) < 2 {
		t.Fatalf("channels %v %v", out, err)
	}
	// Another user of the same tenant sees nothing of alice's.
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "authgate_connections"})
	if err != nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"user_id":"alice"`) {
		t.Fatalf("connections %v %v", res, err)
	}
}

func TestMCPNeedsServerKeyAndUser(t *testing.T) {
	t.Setenv("AUTHGATE_URL", "")
	t.Setenv("AUTHGATE_API_KEY", "")
	t.Setenv("AUTHGATE_KEY", "")
	t.Setenv("AUTHGATE_USER", "")
	if _, err := run(t, "mcp", "--server", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "AUTHGATE_API_KEY") {
		t.Fatalf("err %v", err)
	}
}
