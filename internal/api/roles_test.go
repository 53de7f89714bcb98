package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// roleFixture is one server with a key of each role in one tenant: the
// user key is bound to alice; alice and bob each have a Google credential
// and bob a run.
type roleFixture struct {
	env                *authgatetest.Env
	keys               map[authgate.Role]string
	aliceCred, bobCred authgate.Credential
	bobRun             authgate.Run
}

func newRoleFixture(t *testing.T) *roleFixture {
	t.Helper()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := t.Context()
	f := &roleFixture{env: env, keys: map[authgate.Role]string{authgate.RoleAdmin: env.AdminKey}}
	// The SDK makes a key of each role.
	for _, req := range []authgate.NewAPIKeyRequest{
		{Name: "worker", Role: authgate.RoleService},
		{Name: "alice-agent", Role: authgate.RoleUser, UserID: "alice"},
	} {
		k, err := env.Client.CreateAPIKey(ctx, req)
		if err != nil || k.Role != req.Role || k.UserID != req.UserID || !strings.HasPrefix(k.Key, "ag_") {
			t.Fatalf("CreateAPIKey(%+v) = %+v, %v", req, k.APIKey, err)
		}
		f.keys[req.Role] = k.Key
	}
	ks, err := env.Client.APIKeys(ctx)
	if err != nil || len(ks) != 3 || ks[0].Role != authgate.RoleAdmin || ks[2].Role != authgate.RoleUser || ks[2].UserID != "alice" {
		t.Fatalf("APIKeys = %+v, %v; want the bootstrap admin key, the service key, alice's user key", ks, err)
	}
	f.aliceCred = env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	f.bobCred = env.Connect(t, authgatetest.ConnectParams{UserID: "bob", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "bob@acme.example"}})
	service := authgate.NewClient(env.URL, f.keys[authgate.RoleService])
	f.bobRun, err = service.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "bob", Bindings: map[string]authgate.CredentialID{"google": f.bobCred.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// roleRefusal reports whether r is the role middleware's refusal (and not
// a 403 a handler gave for another reason).
func roleRefusal(t *testing.T, r rawResponse) bool {
	t.Helper()
	if r.status != http.StatusForbidden {
		return false
	}
	var p authgate.Error
	mustJSON(t, r.body, &p)
	return p.Class == authgate.ClassForbidden && strings.HasPrefix(p.Detail, "this route needs")
}

// TestRolesEveryRoute: every operation of the served OpenAPI document,
// called with a key of every role, is refused with 403 exactly when the
// key's role does not reach the operation's x-authgate-role. (The drift
// test holds x-authgate-role equal to routes.go's table.) The calls carry
// unknown ids and empty bodies, so an allowed call ends in 400 or 404 and
// changes nothing.
func TestRolesEveryRoute(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	resp, err := http.Get(f.env.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]operation `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	ids := strings.NewReplacer("{id}", "x_unknown", "{key}", "step-1", "{session}", "x_unknown")
	checked := map[string]int{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Role == "public" {
				continue
			}
			required := authgate.Role(op.Role)
			if !required.Valid() {
				t.Fatalf("%s %s: x-authgate-role %q", method, path, op.Role)
			}
			for _, role := range []authgate.Role{authgate.RoleAdmin, authgate.RoleService, authgate.RoleUser} {
				var r rawResponse
				if method == "post" {
					r = do(t, "POST", f.env.URL+ids.Replace(path), f.keys[role], "application/json", strings.NewReader(`{}`))
				} else {
					r = do(t, strings.ToUpper(method), f.env.URL+ids.Replace(path), f.keys[role], "", nil)
				}
				if got, want := roleRefusal(t, r), !role.Allows(required); got != want {
					t.Errorf("%s %s (needs %s) with a %s key: %d %s; refused = %v, want %v", strings.ToUpper(method), path, required, role, r.status, r.body, got, want)
				}
				if r.status >= 500 {
					t.Errorf("%s %s with a %s key: %d %s", strings.ToUpper(method), path, role, r.status, r.body)
				}
				checked[string(role)]++
			}
		}
	}
	if checked["user"] < 25 {
		t.Fatalf("checked only %v operations per role", checked)
	}
	// No key at all: 401 with a Bearer challenge, whatever the role.
	if r := do(t, "GET", f.env.URL+"/v1/credentials", "", "", nil); r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no key: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

// TestUserKeySeesOnlyItsUser: alice's user key reads and uses alice's
// credential and nothing of bob's; naming bob is refused; it cannot make
// keys. The service key acts for both users but manages no keys or
// webhooks.
func TestUserKeySeesOnlyItsUser(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	u, s, base := f.keys[authgate.RoleUser], f.keys[authgate.RoleService], f.env.URL
	alice, bob := string(f.aliceCred.ID), string(f.bobCred.ID)
	notFound := func(name string, r rawResponse) {
		t.Helper()
		if r.status != http.StatusNotFound || strings.Contains(string(r.body), "bob") {
			t.Errorf("%s: %d %s; want 404 that says nothing of bob", name, r.status, r.body)
		}
	}
	forbidden := func(name string, r rawResponse) {
		t.Helper()
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), `"type":"forbidden"`) {
			t.Errorf("%s: %d %s; want 403 forbidden", name, r.status, r.body)
		}
	}
	ok := func(name string, r rawResponse, want int) {
		t.Helper()
		if r.status != want {
			t.Errorf("%s: %d %s; want %d", name, r.status, r.body, want)
		}
	}
	js := "application/json"

	// Alice's own things work.
	ok("get own credential", do(t, "GET", base+"/v1/credentials/"+alice, u, "", nil), 200)
	ok("own token", do(t, "POST", base+"/v1/credentials/"+alice+"/token", u, js, strings.NewReader(`{}`)), 200)
	ok("own events", do(t, "GET", base+"/v1/credentials/"+alice+"/events", u, "", nil), 200)
	ok("own connect session", do(t, "POST", base+"/v1/connect-sessions", u, js, strings.NewReader(`{"provider":"google"}`)), 201)
	ok("own connect session, named", do(t, "POST", base+"/v1/connect-sessions", u, js, strings.NewReader(`{"user_id":"alice","provider":"google"}`)), 201)

	// Bob's are missing, whichever route reads them.
	notFound("get bob's credential", do(t, "GET", base+"/v1/credentials/"+bob, u, "", nil))
	notFound("bob's token", do(t, "POST", base+"/v1/credentials/"+bob+"/token", u, js, strings.NewReader(`{}`)))
	notFound("bob's events", do(t, "GET", base+"/v1/credentials/"+bob+"/events", u, "", nil))
	notFound("verify bob's", do(t, "POST", base+"/v1/credentials/"+bob+"/verify", u, js, strings.NewReader(`{}`)))
	notFound("diagnose bob's", do(t, "POST", base+"/v1/credentials/"+bob+"/diagnose", u, js, strings.NewReader(`{}`)))
	notFound("delete bob's", do(t, "DELETE", base+"/v1/credentials/"+bob, u, "", nil))
	notFound("reconnect bob's", do(t, "POST", base+"/v1/connect-sessions", u, js, strings.NewReader(`{"provider":"google","credential_id":"`+bob+`"}`)))
	notFound("a run binding bob's credential", do(t, "POST", base+"/v1/runs", u, js, strings.NewReader(`{"workflow":"w","bindings":{"google":"`+bob+`"}}`)))
	notFound("bob's run", do(t, "GET", base+"/v1/runs/"+string(f.bobRun.ID), u, "", nil))
	notFound("cancel bob's run", do(t, "POST", base+"/v1/runs/"+string(f.bobRun.ID)+"/cancel", u, js, strings.NewReader(`{}`)))

	// Naming bob is refused.
	forbidden("list bob's credentials", do(t, "GET", base+"/v1/credentials?user_id=bob", u, "", nil))
	forbidden("list bob's runs", do(t, "GET", base+"/v1/runs?user_id=bob", u, "", nil))
	forbidden("run for bob", do(t, "POST", base+"/v1/runs", u, js, strings.NewReader(`{"workflow":"w","user_id":"bob"}`)))
	forbidden("connect bob", do(t, "POST", base+"/v1/connect-sessions", u, js, strings.NewReader(`{"user_id":"bob","provider":"google"}`)))

	// Lists without a user_id are alice's alone.
	r := do(t, "GET", base+"/v1/credentials", u, "", nil)
	var page authgate.CredentialPage
	mustJSON(t, r.body, &page)
	if len(page.Credentials) != 1 || page.Credentials[0].ID != f.aliceCred.ID {
		t.Errorf("user key's credential list: %s", r.body)
	}
	r = do(t, "GET", base+"/v1/runs", u, "", nil)
	if r.status != 200 || strings.Contains(string(r.body), string(f.bobRun.ID)) {
		t.Errorf("user key's run list: %d %s", r.status, r.body)
	}

	// No keys for a user key; no keys or webhooks for a service key.
	forbidden("user key creates a key", do(t, "POST", base+"/v1/api-keys", u, js, strings.NewReader(`{"name":"x","role":"admin"}`)))
	forbidden("service key creates a key", do(t, "POST", base+"/v1/api-keys", s, js, strings.NewReader(`{"name":"x","role":"admin"}`)))
	forbidden("service key lists keys", do(t, "GET", base+"/v1/api-keys", s, "", nil))
	forbidden("service key adds a webhook", do(t, "POST", base+"/v1/webhooks", s, js, strings.NewReader(`{"url":"http://127.0.0.1:9/hook"}`)))
	forbidden("service key lists webhooks", do(t, "GET", base+"/v1/webhooks", s, "", nil))
	// The service key acts for any user.
	ok("service reads bob's credential", do(t, "GET", base+"/v1/credentials/"+bob, s, "", nil), 200)
	ok("service reads bob's token", do(t, "POST", base+"/v1/credentials/"+bob+"/token", s, js, strings.NewReader(`{}`)), 200)

	// Bob's credential is untouched by alice's attempts.
	c, err := f.env.Client.Credential(context.Background(), f.bobCred.ID)
	if err != nil || c.Status != authgate.CredentialStatusActive {
		t.Fatalf("bob's credential after the user key's attempts: %+v, %v", c, err)
	}
}

// TestAPIKeyRequests: the key route refuses a null body, a missing role, a
// user key without a user and a user_id on another role, each naming the
// field.
func TestAPIKeyRequests(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, tc := range []struct{ body, field string }{
		{`null`, "body"},
		{`{}`, "role"},
		{`{"name":"x","role":"root"}`, "role"},
		{`{"name":"x","role":"user"}`, "user_id"},
		{`{"name":"x","role":"service","user_id":"alice"}`, "user_id"},
	} {
		r := do(t, "POST", env.URL+"/v1/api-keys", env.AdminKey, "application/json", strings.NewReader(tc.body))
		var p authgate.Error
		mustJSON(t, r.body, &p)
		if r.status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("POST /v1/api-keys %s: %d %s; want 400 naming %s", tc.body, r.status, r.body, tc.field)
		}
	}
	ks, err := env.Client.APIKeys(t.Context())
	if err != nil || len(ks) != 1 {
		t.Fatalf("keys after refused requests: %+v, %v; want only the bootstrap key", ks, err)
	}
	// The last live admin key stays; another role does not replace it.
	if _, err := env.Client.CreateAPIKey(t.Context(), authgate.NewAPIKeyRequest{Name: "w", Role: authgate.RoleService}); err != nil {
		t.Fatal(err)
	}
	var ae *authgate.Error
	if err := env.Client.RevokeAPIKey(t.Context(), ks[0].ID); !errors.As(err, &ae) || ae.Class != authgate.ClassConflict {
		t.Fatalf("revoking the last admin key: %v; want conflict", err)
	}
}

// TestDiagnoseOperatorDetails: key ids and the key file's location are in
// the diagnosis an admin key reads, not in a user key's.
func TestDiagnoseOperatorDetails(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	path := f.env.URL + "/v1/credentials/" + string(f.aliceCred.ID) + "/diagnose"
	admin := do(t, "POST", path, f.keys[authgate.RoleAdmin], "application/json", strings.NewReader(`{}`))
	user := do(t, "POST", path, f.keys[authgate.RoleUser], "application/json", strings.NewReader(`{}`))
	if admin.status != 200 || user.status != 200 {
		t.Fatalf("diagnose: admin %d, user %d %s", admin.status, user.status, user.body)
	}
	if !strings.Contains(string(admin.body), "key id") {
		t.Fatalf("the admin's diagnosis names no key id: %s", admin.body)
	}
	for _, leak := range []string{"key id", f.env.KeyFile, "authgate.key"} {
		if strings.Contains(string(user.body), leak) {
			t.Errorf("a user key's diagnosis contains %q: %s", leak, user.body)
		}
	}
	if !strings.Contains(string(user.body), "admin API keys only") {
		t.Errorf("a user key's diagnosis does not say details were withheld: %s", user.body)
	}
}
