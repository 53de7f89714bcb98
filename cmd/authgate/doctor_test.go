package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
)

// TestDoctorCommand: through a running server, healthy exits 0 with a
// pasteable report; a dropped scope exits 1 naming missing_scope; no
// credential named exits 2.
func TestDoctorCommand(t *testing.T) {
	env := authgatetest.Start(t, authgatetest.Options{})
	t.Setenv("AUTHGATE_URL", env.URL)
	t.Setenv("AUTHGATE_API_KEY", env.AdminKey)
	c := env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: "doc@acme.example"}})
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"doctor"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("--credential", string(c.ID))
	if err != nil || !strings.Contains(out, "VERDICT healthy") || !strings.Contains(out, "✓") {
		t.Fatalf("healthy: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: "doc@acme.example", Scope: "https://www.googleapis.com/auth/drive.file"}); err != nil {
		t.Fatal(err)
	}
	out, err = run("--user", "user-1", "--provider", "google", "--json")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, `"cause": "missing_scope"`) {
		t.Fatalf("missing scope: %v\n%s", err, out)
	}
	if _, err = run(); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("no credential: %v", err)
	}
}

// TestDoctorRun: `doctor --run ID` through a running server reads the run,
// takes the credential its blocked binding used (not the other binding) and
// diagnoses it; a run id that does not exist exits 2.
func TestDoctorRun(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	g := env.Connect(t, authgatetest.ConnectParams{UserID: "rita", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "rita@acme.example"}})
	n := env.Connect(t, authgatetest.ConnectParams{UserID: "rita", Provider: "notion", Actions: []string{"notion.read"}, Choice: sandbox.Choice{Account: "rita@acme.example"}})
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rita@acme.example"}); err != nil {
		t.Fatal(err)
	}
	r, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "rita", Actions: []string{"drive.files.list", "notion.read"},
		Bindings: map[string]authgate.CredentialID{"google": g.ID, "notion": n.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != authgate.RunStateBlockedOnAuth || r.Blocked == nil || r.Blocked.Binding != "google" {
		t.Fatalf("run not blocked on google: %+v", r)
	}
	out, err := runWith(t, env, "doctor", "--run", string(r.ID), "--json")
	var ee *exitError
	var d authgate.Diagnosis
	if jerr := json.Unmarshal([]byte(out), &d); jerr != nil || !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("doctor --run: %v %v\n%s", err, jerr, out)
	}
	if d.Credential.ID != g.ID || d.Verdict.Cause != "revoked" {
		t.Fatalf("doctor --run diagnosed %s (%s), want %s (revoked)", d.Credential.ID, d.Verdict.Cause, g.ID)
	}
	if _, err := runWith(t, env, "doctor", "--run", "run_doesnotexist0000000"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("unknown run: %v", err)
	}
}

// runWith runs the CLI against env's server (flags, not the environment, so
// tests stay parallel).
func runWith(t *testing.T, env *authgatetest.Env, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append(args, "--server", env.URL, "--api-key", env.AdminKey))
	err := cmd.Execute()
	return out.String(), err
}

// TestDoctorAfterReconnect is the runbook's own fix, end to end: a healthy
// Google credential is healthy offline too (Google grants "email" as
// ".../userinfo.email"); revoked at the provider it diagnoses `revoked`
// (exit 1); a minute later (fake clock) the user reconnects and the verdict
// is `healthy` (exit 0), the revocation shown only as lifecycle history.
func TestDoctorAfterReconnect(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: clk})
	t.Setenv("AUTHGATE_URL", "")
	t.Setenv("AUTHGATE_API_KEY", "")
	t.Setenv("AUTHGATE_KEY", "")
	connect := func() authgate.Credential {
		return env.Connect(t, authgatetest.ConnectParams{UserID: "ulla", Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"},
			Choice: sandbox.Choice{Account: "ulla@acme.example"}})
	}
	c := connect()
	diagnosis := func(args ...string) (authgate.Diagnosis, int) {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(append([]string{"doctor", "--json"}, args...))
		err := cmd.Execute()
		code := 0
		var ee *exitError
		switch {
		case errors.As(err, &ee):
			code = ee.code
		case err != nil:
			t.Fatalf("doctor %v: %v", args, err)
		}
		var d authgate.Diagnosis
		if jerr := json.Unmarshal(out.Bytes(), &d); jerr != nil {
			t.Fatalf("doctor %v: %v (exit %d)\n%s", args, jerr, code, out.String())
		}
		return d, code
	}
	live := []string{"--credential", string(c.ID), "--server", env.URL, "--api-key", env.AdminKey}
	offline := []string{"--user", "ulla", "--provider", "google", "--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}

	d, code := diagnosis(offline...)
	if d.Live || d.Verdict.Cause != authgate.CauseHealthy || code != 0 || len(d.Scopes.Missing) != 0 {
		t.Fatalf("offline, healthy Google credential: exit %d, live %t, %+v, scopes %+v\n%+v", code, d.Live, d.Verdict, d.Scopes, d.Checks)
	}

	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "ulla@acme.example"}); err != nil {
		t.Fatal(err)
	}
	_, _ = env.Client.Token(context.Background(), c.ID, authgate.TokenRequest{RejectedFingerprint: c.AccessTokenFingerprint})
	if d, code = diagnosis(live...); d.Verdict.Cause != authgate.CauseRevoked || code != 1 {
		t.Fatalf("after revoke: exit %d, %+v", code, d.Verdict)
	}

	clk.Advance(time.Minute)
	if again := connect(); again.ID != c.ID {
		t.Fatalf("the reconnect made %s, not %s", again.ID, c.ID)
	}
	d, code = diagnosis(live...)
	if d.Verdict.Cause != authgate.CauseHealthy || code != 0 {
		t.Fatalf("after reconnect: exit %d, %+v\n%+v", code, d.Verdict, d.Checks)
	}
	if ig, ok := findCheck(d, "invalid_grant"); !ok || ig.Section != authgate.SectionLifecycle || ig.Status != authgate.CheckPass || !strings.Contains(ig.Evidence, "history") {
		t.Fatalf("the revocation is not shown as history: %+v", ig)
	}
	if d, code = diagnosis(offline...); d.Verdict.Cause != authgate.CauseHealthy || code != 0 {
		t.Fatalf("offline after reconnect: exit %d, %+v", code, d.Verdict)
	}
}

func findCheck(d authgate.Diagnosis, name string) (authgate.DiagnosisCheck, bool) {
	for _, c := range d.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return authgate.DiagnosisCheck{}, false
}
