package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
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

// TestMCPChecksBeforeServing: `authgate mcp` with a wrong key, a stopped
// server or a user key and another --user exits with a one-line reason
// before it reads a byte of the client's initialize; a user key needs no
// --user.
func TestMCPChecksBeforeServing(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	k, err := env.Client.CreateAPIKey(context.Background(), authgate.NewAPIKeyRequest{Name: "agent", Role: authgate.RoleUser, UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := httptest.NewServer(http.NotFoundHandler())
	stopped.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--server", env.URL, "--api-key", "ag_" + strings.Repeat("a", 52), "--user", "alice"}, "refuses this API key"},
		{[]string{"--server", stopped.URL, "--api-key", k.Key}, "cannot reach authgate at " + stopped.URL},
		{[]string{"--server", env.URL, "--api-key", k.Key, "--user", "bob"}, `acts only for user "alice"`},
		{[]string{"--server", env.URL, "--api-key", env.AdminKey}, "name one with --user"},
	} {
		root := newRootCmd()
		root.SetArgs(append([]string{"mcp"}, tc.args...))
		in := &readCounter{r: strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` + "\n")}
		root.SetIn(in)
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(io.Discard)
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(oneLine(err), "\n") {
			t.Errorf("mcp %v: %v; want %q", tc.args, err, tc.want)
		}
		if in.n != 0 || out.Len() != 0 {
			t.Errorf("mcp %v read %d bytes of stdin and wrote %q before refusing", tc.args, in.n, out.String())
		}
	}

	// A user key alone: its own user, no --user.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	root := newRootCmd()
	root.SetArgs([]string{"mcp", "--server", env.URL, "--api-key", k.Key})
	root.SetIn(inR)
	root.SetOut(outW)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); outW.Close() }()
	t.Cleanup(func() { cancel(); inW.Close(); <-done })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "authgate_connections"})
	if err != nil || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"user_id":"alice"`) {
		t.Fatalf("connections through a user key: %v %v", res, err)
	}
}

type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
