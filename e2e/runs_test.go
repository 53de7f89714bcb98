package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/workflow"
	"github.com/authgate/authgate/workflow/demo"
)

// TestKillBetweenSideEffectAndComplete: the server is killed (-9) after a
// step created its Doc and before the step's checkpoint was recorded. After
// the restart the runner resumes the run: the step is gated again with the
// same idempotency key, finds the Doc it made instead of making a second,
// and the checkpoints before it are kept.
func TestKillBetweenSideEffectAndComplete(t *testing.T) {
	t.Parallel()
	// The providers live in their own process: killing authgate loses
	// nothing of theirs, as with real ones.
	sb := startSandbox(t)
	env := []string{"AUTHGATE_SANDBOX_URL=" + sb}
	dir := t.TempDir()
	p := serve(t, dir, env...)
	hc := &http.Client{}
	const account = "kill@acme.example"
	if r := call(t, hc, "POST", sb+"/sandbox/admin/consent", "", `{"provider":"google","account":"`+account+`"}`); r.status != 200 {
		t.Fatalf("consent preset %d %s", r.status, r.body)
	}
	r := call(t, hc, "POST", p.URL+"/v1/connect-sessions", p.AdminKey, `{"user_id":"u","provider":"google","actions":["drive.files.list","docs.documents.create"]}`)
	var s struct {
		ConnectURL string `json:"connect_url"`
	}
	_ = json.Unmarshal([]byte(r.body), &s)
	jar, _ := cookiejar.New(nil)
	req, _ := http.NewRequest("GET", s.ConnectURL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Jar: jar}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect flow: %v %v", err, resp)
	}
	var res struct {
		Credential authgate.Credential `json:"credential"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	cred := res.Credential.ID

	ctx := context.Background()
	steps := demo.Workflow(demo.Sandbox(sb)).Steps[:2] // drive_list, doc_create
	create := steps[1].Do
	steps[1].Do = func(ctx context.Context, sc *workflow.StepContext) (any, error) {
		out, err := create(ctx, sc)
		if err != nil {
			return out, err
		}
		// The Doc exists: kill the server before the step can record its
		// checkpoint.
		_ = p.cmd.Process.Kill()
		<-p.done
		return out, nil
	}
	r1 := &workflow.Runner{API: authgate.NewClient(p.URL, p.AdminKey), Workflow: workflow.Workflow{Name: "kill", Steps: steps}}
	run, err := r1.Start(ctx, authgate.RunCreateRequest{UserID: "u", Bindings: map[string]authgate.CredentialID{"google": cred}})
	if err == nil || run.ID == "" {
		t.Fatalf("the run went on without its server: %+v", run)
	}

	key := p.AdminKey // printed once, when the database was created
	p = serve(t, dir, env...)
	c := authgate.NewClient(p.URL, key)
	r2 := &workflow.Runner{API: c, Workflow: workflow.Workflow{Name: "kill", Steps: demo.Workflow(demo.Sandbox(sb)).Steps[:2]}}
	done, err := r2.Resume(ctx, run.ID)
	if err != nil || done.State != authgate.RunStateSucceeded {
		t.Fatalf("resume after restart: %s %v", done.State, err)
	}
	got, err := c.Run(ctx, run.ID)
	if err != nil || len(got.Steps) != 2 || got.Steps[0].Attempts != 1 || got.Steps[1].Attempts != 2 || got.Steps[1].IdempotencyKey != string(run.ID)+":doc_create" {
		t.Fatalf("steps %+v %v", got.Steps, err)
	}
	// The sandbox holds one Doc for the run.
	tok, err := c.Token(ctx, cred, authgate.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"q": {"name = 'authgate demo " + string(run.ID) + "' and trashed = false"}}
	list := call(t, hc, "GET", sb+"/sandbox/google/drive/v3/files?"+q.Encode(), tok.AccessToken, "")
	var files struct {
		Files []struct{ ID string } `json:"files"`
	}
	if err := json.Unmarshal([]byte(list.body), &files); err != nil || len(files.Files) != 1 {
		t.Fatalf("docs for the run: %d %s", list.status, list.body)
	}
}
