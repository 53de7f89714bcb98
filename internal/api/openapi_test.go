package api_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
)

// documentedOnly are operations the document carries before routes.go
// registers them (none today).
var documentedOnly = []string{}

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
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths      map[string]map[string]operation `json:"paths"`
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

	if len(doc.Servers) != 1 || doc.Servers[0].URL != env.URL {
		t.Errorf("servers %+v; want the configured public URL %s", doc.Servers, env.URL)
	}

	roles := routeRoles(t, "routes.go")
	registered := slices.Collect(maps.Keys(roles))
	var documented []string
	opIDs := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			route := strings.ToUpper(method) + " " + path
			documented = append(documented, route)
			// What a generator and a reader need from every operation: a
			// unique operationId, the role it needs (declared in routes.go,
			// stated here as an extension and in words), its 4xx problems.
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", route)
			} else if other, dup := opIDs[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %s", route, other, op.OperationID)
			}
			opIDs[op.OperationID] = route
			if want, ok := roles[route]; ok && op.Role != want {
				t.Errorf("%s: x-authgate-role %q; routes.go says %q", route, op.Role, want)
			}
			if !strings.Contains(op.Description, "Role: "+op.Role+" ") {
				t.Errorf("%s: description does not say its role %q", route, op.Role)
			}
			var fourXX []string
			for code := range op.Responses {
				if strings.HasPrefix(code, "4") {
					fourXX = append(fourXX, code)
				}
			}
			if len(fourXX) == 0 {
				t.Errorf("%s declares no 4xx response", route)
			}
			if op.Role != "public" && (op.Responses["401"] == nil || op.Responses["403"] == nil) {
				t.Errorf("%s needs a key but does not declare 401 and 403", route)
			}
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

// operation is what the test reads of an OpenAPI operation.
type operation struct {
	OperationID string                     `json:"operationId"`
	Description string                     `json:"description"`
	Role        string                     `json:"x-authgate-role"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

// routeRoles reads the route table: "METHOD /path" → the role given to
// a.route (authgate.RoleAdmin → "admin"), or "public" for a.public and
// a plain a.mux.Handle.
func routeRoles(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		pattern, _ := strconv.Unquote(lit.Value)
		switch sel.Sel.Name {
		case "Handle", "HandleFunc", "public":
			out[pattern] = "public"
		case "route":
			role, ok := call.Args[1].(*ast.SelectorExpr)
			if !ok || !strings.HasPrefix(role.Sel.Name, "Role") {
				t.Fatalf("%s: the role must be an authgate.Role constant", pattern)
			}
			out[pattern] = strings.ToLower(strings.TrimPrefix(role.Sel.Name, "Role"))
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
