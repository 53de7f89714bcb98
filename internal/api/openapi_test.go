package api_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
)

// documentedOnly are operations the document carries before this branch
// serves them: GET /v1/connect-sessions/{id} arrives with issue 8.
var documentedOnly = []string{"GET /v1/connect-sessions/{id}"}

// TestOpenAPIMatchesRoutes: every pattern routes.go registers is in the
// served document and every documented operation is registered; the
// problem types enumerate exactly the authgate.Class constants of
// errors.go. Both sides are read from source, so neither can drift.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	resp, err := http.Get(env.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("document: %v, openapi %q", err, doc.OpenAPI)
	}

	registered := routePatterns(t, "routes.go")
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %q is registered but not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) && !slices.Contains(documentedOnly, d) {
			t.Errorf("openapi.json documents %q, which routes.go does not register", d)
		}
	}

	classes := classConstants(t, "../../errors.go")
	problemTypes := doc.Components.Schemas["Problem"].Properties["type"].Enum
	slices.Sort(classes)
	slices.Sort(problemTypes)
	if !slices.Equal(classes, problemTypes) {
		t.Errorf("problem types %v; authgate.Class constants %v", problemTypes, classes)
	}
}

// routePatterns reads the "METHOD /path" strings given to a.mux.Handle.
func routePatterns(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			out = append(out, s)
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d routes in %s", len(out), file)
	}
	return out
}

// classConstants reads the values of the constants of type Class.
func classConstants(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Class" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) < 8 {
		t.Fatalf("found only %d classes in %s", len(out), file)
	}
	return out
}
