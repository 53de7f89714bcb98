package authgate_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/authgate/authgate"

type goPackage struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []goPackage
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// TestEveryPackageHasDoc: a package says what it owns and what it must never
// do, in a doc comment (STYLE.md §2).
func TestEveryPackageHasDoc(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}

// layer ranks our packages; a package may import only packages of its own
// rank or lower (STYLE.md, "The map"). A new package must be placed here.
var layers = []struct {
	rank     int
	prefixes []string
}{
	{0, []string{""}}, // the root vocabulary
	{1, []string{"/internal/returnurl", "/internal/secret", "/internal/keyring", "/internal/clock", "/internal/catalog", "/internal/classify", "/internal/httprec", "/internal/loadgen", "/webhook", "/workflow", "/connector"}},
	{1, []string{"/internal/netpolicy"}}, // outbound address policy (webhooks)
	{2, []string{"/internal/storage"}},
	{3, []string{"/internal/vault", "/internal/tenancy"}},
	{4, []string{"/internal/broker", "/internal/refresh", "/internal/gate", "/internal/doctor", "/internal/connector", "/internal/verify", "/internal/diagnose"}},
	{5, []string{"/internal/worker", "/internal/runs", "/internal/jobs", "/internal/api", "/internal/ui", "/internal/mcpserver"}},
	{6, []string{"/server"}}, // server/tokenbench too
	{7, []string{"/cmd", "/authgatetest", "/e2e"}},
}

func rankOf(path string) (int, bool) {
	rel := strings.TrimPrefix(path, module)
	best, found := -1, false
	for _, l := range layers {
		for _, pre := range l.prefixes {
			if rel == pre || (pre != "" && strings.HasPrefix(rel, pre+"/")) {
				best, found = l.rank, true
			}
		}
	}
	return best, found
}

// TestImportDirection keeps lower layers from importing higher ones, the
// sandbox from importing internal/ (it must encode the providers on its own),
// and the root package and workflow free of storage, queue, metrics and CLI
// libraries.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		if strings.HasPrefix(p.ImportPath, module+"/sandbox") {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, module+"/internal/") {
					t.Errorf("%s imports %s: the sandbox must not share code with the product it tests", p.ImportPath, imp)
				}
			}
			continue
		}
		rank, ok := rankOf(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no layer: add it to layers in structure_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) || strings.HasPrefix(imp, module+"/sandbox") {
				continue
			}
			if r, ok := rankOf(imp); ok && r > rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): lower layers never import higher ones", p.ImportPath, rank, imp, r)
			}
		}
	}
}

// TestRootStaysLight: what users import first (the root package and the
// workflow SDK) pulls in no storage, queue, metrics or CLI library.
func TestRootStaysLight(t *testing.T) {
	t.Parallel()
	forbidden := []string{"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/riverqueue/river", "github.com/prometheus", "github.com/spf13/cobra", module + "/internal/"}
	checked := 0
	for _, p := range listPackages(t) {
		if p.ImportPath != module && !strings.HasPrefix(p.ImportPath, module+"/workflow") {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", p.ImportPath, dep)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("the root package was not listed")
	}
}

// TestOneWireVocabulary: every type the API decodes or encodes is declared
// once, in the root package. The HTTP layer and the domain packages below it
// declare no JSON shapes of their own (the one exception is a field that
// shadows a root type's to give a malformed time its own message, and the
// refresher's reading of a provider's RFC 7662 answer, which is the
// provider's wire, not ours). The broker and classify are left out: they
// parse providers' own JSON (userinfo, token and error bodies).
func TestOneWireVocabulary(t *testing.T) {
	allowed := map[string]bool{
		"internal/api/credentials.go:ExpiresAt string `json:\"expires_at\"`": true,
		"internal/refresh/call.go:Active *bool `json:\"active\"`":            true,
	}
	for _, dir := range []string{"internal/api", "internal/vault", "internal/refresh", "internal/tenancy", "internal/gate", "internal/verify", "internal/doctor"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if strings.Contains(line, "`json:\"") && !allowed[filepath.ToSlash(f)+":"+line] {
					t.Errorf("%s declares a JSON shape (%s); declare wire types once in the root package", f, line)
				}
			}
		}
	}
}
