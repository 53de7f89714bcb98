package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/internal/diagnose"
	"github.com/authgate/authgate/sandbox"
)

// democheckEnv starts a server with its sandbox and a demo user already
// connected to Google, with a folder the app created.
func democheckEnv(t *testing.T) (*authgatetest.Env, string) {
	t.Helper()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	c := env.Connect(t, authgatetest.ConnectParams{UserID: "demo-user", Provider: "google", Actions: diagnose.DemoCheckActions["google"], Choice: sandbox.Choice{Account: "demo@acme.example"}})
	dr, err := gdrive.New(ctx, env.Client.TokenSource(ctx, c.ID, authgate.TokenRequest{}), gdrive.Options{Endpoint: env.SandboxAPI("drive")})
	if err != nil {
		t.Fatal(err)
	}
	folder, err := dr.CreateFolder(ctx, "Demo")
	if err != nil {
		t.Fatal(err)
	}
	return env, folder.Id
}

func items(r authgate.DemoCheck) map[string]authgate.DemoCheckItem {
	out := map[string]authgate.DemoCheckItem{}
	for _, it := range r.Items {
		out[it.Provider+"/"+it.Name] = it
	}
	return out
}

// TestDemoCheck: against the sandbox with no human input every item
// passes (the old Google credential is disconnected, both providers
// reconnected on the sandbox's consent page, the Notion database found);
// the human output is a pasteable checklist without tokens, and no consent
// preset is left behind on the server.
func TestDemoCheck(t *testing.T) {
	t.Parallel()
	env, folder := democheckEnv(t)
	out, err := runWith(t, env, "democheck", "--target-folder", folder, "--json")
	var r authgate.DemoCheck
	if jerr := json.Unmarshal([]byte(out), &r); err != nil || jerr != nil || !r.OK || !r.Sandbox {
		t.Fatalf("democheck: %v %v\n%s", err, jerr, out)
	}
	got := items(r)
	for _, name := range []string{"google/disconnect", "google/connect", "google/account", "google/scopes", "google/doc", "google/refresh", "google/concurrency",
		"notion/disconnect", "notion/connect", "notion/account", "notion/scopes", "notion/notion_read", "notion/notion_write"} {
		if got[name].Status != authgate.CheckPass {
			t.Errorf("%s: %+v", name, got[name])
		}
	}
	if ev := got["google/disconnect"].Evidence; !strings.Contains(ev, "removed 1 credential") {
		t.Errorf("disconnect: %s", ev)
	}
	if ev := got["google/account"].Evidence; !strings.Contains(ev, "demo@acme.example") || !strings.Contains(ev, "confirmed live") {
		t.Errorf("account: %s", ev)
	}
	out, err = runWith(t, env, "democheck", "--providers", "google")
	if err != nil || !strings.Contains(out, "✓ concurrency") || !strings.Contains(out, "PASS 7/7") || strings.Contains(out, "ya29.") {
		t.Fatalf("human output: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	if left := env.Server.Sandbox.Consents(); len(left) != 0 {
		t.Fatalf("democheck left consent presets behind: %+v", left)
	}
}

// TestDemoCheckFault: a fault injected before democheck runs fails the
// item it breaks, with its fix, and exit status 1; the other items still
// run. An unreachable server cannot run it (exit 2).
func TestDemoCheckFault(t *testing.T) {
	t.Parallel()
	env, folder := democheckEnv(t)
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "unshare", Resource: folder}); err != nil {
		t.Fatal(err)
	}
	out, err := runWith(t, env, "democheck", "--providers", "google", "--target-folder", folder, "--json")
	var r authgate.DemoCheck
	var ee *exitError
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || !errors.As(err, &ee) || ee.code != 1 || r.OK || r.Failed != 1 {
		t.Fatalf("democheck after unshare: %v %v\n%s", err, jerr, out)
	}
	got := items(r)
	if doc := got["google/doc"]; doc.Status != authgate.CheckFail || !strings.Contains(doc.Evidence, folder) || !strings.Contains(doc.Fix, "share the folder") {
		t.Fatalf("doc item: %+v", doc)
	}
	if got["google/refresh"].Status != authgate.CheckPass || got["google/concurrency"].Status != authgate.CheckPass {
		t.Fatalf("other items: %+v", r.Items)
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"democheck", "--server", "http://127.0.0.1:1", "--api-key", "ag_x"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("no server: %v", err)
	}
}

// TestDemoCheckFaults: a provider fault armed before democheck fails the
// item that meets it first, with exit status 1: an admin policy refuses the
// sign-in (connect), a refresh answered invalid_grant fails the forced
// refresh (refresh). A fault the fresh sign-in heals (a revoke, an unshared
// Notion page) is not a failure of the demo to come.
func TestDemoCheckFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault          sandbox.Fault
		failed, passed string
	}{
		{sandbox.Fault{Provider: "google", Fault: "admin_policy", Account: "demo@acme.example"}, "fix: the Workspace admin must allow", "✓ disconnect"},
		{sandbox.Fault{Provider: "google", Fault: "invalid_grant_next", Account: "demo@acme.example"}, "✗ refresh", "✓ doc"},
	} {
		t.Run(string(tc.fault.Fault), func(t *testing.T) {
			t.Parallel()
			env, _ := democheckEnv(t)
			if err := env.Server.Sandbox.InjectFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			out, err := runWith(t, env, "democheck", "--providers", "google")
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, tc.failed) || !strings.Contains(out, tc.passed) || !strings.Contains(out, "FAIL ") {
				t.Fatalf("democheck after %s: %v\n%s", tc.fault.Fault, err, out)
			}
			t.Logf("\n%s", out)
		})
	}
}
