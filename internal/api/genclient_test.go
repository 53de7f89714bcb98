package api_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The client generated below imports the runtime package; importing it
	// here keeps it, at the version the test builds with, in go.mod and
	// go.sum (which the test copies into its temporary module).
	_ "github.com/oapi-codegen/runtime"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// genClientMain calls the token route with the generated client: once for
// a credential of the key's user, once for another user's.
const genClientMain = `package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"genclienttest/genclient"
)

func main() {
	base, key := os.Args[1], os.Args[2]
	c, err := genclient.NewClientWithResponses(base, genclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}))
	if err != nil {
		panic(err)
	}
	minValid := 60
	for _, id := range os.Args[3:] {
		resp, err := c.RequestCredentialTokenWithResponse(context.Background(), id, genclient.RequestCredentialTokenJSONRequestBody{MinValidSeconds: &minValid})
		switch {
		case err != nil:
			fmt.Println("error", err)
		case resp.JSON200 != nil:
			fmt.Println(resp.StatusCode(), *resp.JSON200.Provider, *resp.JSON200.Fingerprint, len(*resp.JSON200.AccessToken) > 0)
		case resp.ApplicationproblemJSON404 != nil:
			fmt.Println(resp.StatusCode(), resp.ApplicationproblemJSON404.Type)
		default:
			fmt.Println(resp.StatusCode(), "undecoded")
		}
	}
}
`

// TestGeneratedClient: a standard generator (oapi-codegen, a tool
// dependency in go.mod) turns the served OpenAPI document into a Go client
// that compiles, and whose token call gets a token for the key's user and
// a typed 404 problem for another user's credential.
func TestGeneratedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a generated client (about 10 s cold)")
	}
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := t.Context()
	alice := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	bob := env.Connect(t, authgatetest.ConnectParams{UserID: "bob", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "bob@acme.example"}})
	k, err := env.Client.CreateAPIKey(ctx, authgate.NewAPIKeyRequest{Name: "alice-agent", Role: authgate.RoleUser, UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := authgate.NewClient(env.URL, k.Key).Token(ctx, alice.ID, authgate.TokenRequest{MinValid: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	r := do(t, "GET", env.URL+"/v1/openapi.json", "", "", nil)
	if r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
	doc := filepath.Join(dir, "openapi.json")
	must(t, os.WriteFile(doc, r.body, 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "genclient"), 0o755))
	root, err := filepath.Abs("../..")
	must(t, err)
	gen := exec.CommandContext(ctx, "go", "tool", "oapi-codegen", "-generate", "types,client", "-package", "genclient", "-o", filepath.Join(dir, "genclient", "client.gen.go"), doc)
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}

	// A module of its own, offline: the runtime package at go.mod's
	// version, checksums from go.sum, nothing fetched.
	version := requiredVersion(t, filepath.Join(root, "go.mod"), "github.com/oapi-codegen/runtime")
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module genclienttest\n\ngo 1.24\n\nrequire github.com/oapi-codegen/runtime "+version+"\n"), 0o600))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(genClientMain), 0o600))
	bin := filepath.Join(dir, "genclienttest")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the generated client: %v\n%s", err, out)
	}

	out, err := exec.CommandContext(ctx, bin, env.URL, k.Key, string(alice.ID), string(bob.ID)).CombinedOutput()
	if err != nil {
		t.Fatalf("generated client: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	wantLines := []string{"200 google " + want.Fingerprint + " true", "404 not_found"}
	if len(lines) != 2 || lines[0] != wantLines[0] || lines[1] != wantLines[1] {
		t.Fatalf("generated client printed %q; want %q", lines, wantLines)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// requiredVersion reads a module's version from a go.mod require line.
func requiredVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	f, err := os.Open(gomod)
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	t.Fatalf("%s does not require %s", gomod, module)
	return ""
}
