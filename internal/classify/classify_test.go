package classify_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/classify"
)

// testCase is one file under testdata/: "key: value" lines (provider,
// operation, status, header (repeatable), class, policy, missing,
// retry_after, message_contains, source), a blank line, then the body
// exactly as the provider sent it. For operation authorize the body is the
// callback's query string, a JSON body or the text of the provider's error
// page (classify.ParseAuthorize).
type testCase struct {
	provider, source, messageContains string
	op                                classify.Operation
	status                            int
	header                            http.Header
	class                             authgate.Class
	policy                            classify.Policy
	missing                           []string
	retry                             time.Duration
	body                              []byte
}

func readCase(t *testing.T, path string) testCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		head, body = bytes.TrimSuffix(raw, []byte("\n")), nil
	}
	tc := testCase{header: http.Header{}, body: body}
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		switch k {
		case "provider":
			tc.provider = v
		case "operation":
			tc.op = classify.Operation(v)
		case "status":
			tc.status, err = strconv.Atoi(v)
		case "header":
			hk, hv, _ := strings.Cut(v, ": ")
			tc.header.Add(hk, hv)
		case "class":
			tc.class = authgate.Class(v)
		case "policy":
			tc.policy = classify.Policy(v)
		case "missing":
			tc.missing = strings.Fields(v)
		case "retry_after":
			tc.retry, err = time.ParseDuration(v)
		case "message_contains":
			tc.messageContains = v
		case "source":
			tc.source = v
		default:
			t.Fatalf("%s: unknown key %q", path, k)
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", path, k, err)
		}
	}
	if tc.provider == "" || !tc.op.Valid() || tc.class == "" || tc.policy == "" || tc.source == "" {
		t.Fatalf("%s: provider, a valid operation, class, policy and source are required", path)
	}
	return tc
}

// TestClassifyTestdata runs every reference body under testdata/.
func TestClassifyTestdata(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) < 50 {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			t.Parallel()
			tc := readCase(t, path)
			var pe *classify.ProviderError
			if tc.op == classify.OpAuthorize {
				// A callback query, a JSON body or the text of the
				// provider's error page: ParseAuthorize reads each.
				pe = classify.ParseAuthorize(tc.provider, tc.status, tc.header, string(tc.body))
			} else {
				pe = classify.Parse(classify.Input{Provider: tc.provider, Operation: tc.op, Status: tc.status, Header: tc.header, Body: tc.body,
					Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
			}
			if !pe.Failed() {
				t.Fatalf("Failed() = false for %+v", pe)
			}
			r := classify.Classify(pe)
			if r.Class != tc.class || r.Policy != tc.policy || !slices.Equal(r.MissingScopes, tc.missing) || r.RetryAfter != tc.retry {
				t.Fatalf("got %+v; want class %s policy %s missing %v retry %v", r, tc.class, tc.policy, tc.missing, tc.retry)
			}
			if r.Message == "" || !strings.Contains(r.Message, tc.messageContains) {
				t.Fatalf("message %q; want it to contain %q", r.Message, tc.messageContains)
			}
		})
	}
}

// TestParse shows the one parser filling the typed error from each shape.
func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   classify.Input
		want classify.ProviderError
	}{
		{"oauth", classify.Input{Provider: "google", Operation: classify.OpRefresh, Status: 400,
			Body: []byte(`{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_subtype":"invalid_rapt"}`)},
			classify.ProviderError{OAuthError: "invalid_grant", OAuthDescription: "reauth related error (invalid_rapt)", OAuthSubtype: "invalid_rapt"}},
		{"google api", classify.Input{Provider: "google", Operation: classify.OpAPI, Status: 403, Header: http.Header{"X-Goog-Request-Id": {"g-1"}},
			Body: []byte(`{"error":{"code":403,"message":"m","errors":[{"reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com","metadata":{"service":"drive.googleapis.com"}}]}}`)},
			classify.ProviderError{GoogleReasons: []string{"insufficientPermissions"}, GoogleStatus: "PERMISSION_DENIED", Message: "m", RequestID: "g-1",
				GoogleErrorInfo: []classify.ErrorInfo{{Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", Domain: "googleapis.com", Metadata: map[string]string{"service": "drive.googleapis.com"}}}}},
		{"notion", classify.Input{Provider: "notion", Operation: classify.OpAPI, Status: 404,
			Body: []byte(`{"object":"error","status":404,"code":"object_not_found","message":"Could not find page","request_id":"n-1"}`)},
			classify.ProviderError{NotionCode: "object_not_found", Message: "Could not find page", RequestID: "n-1"}},
		{"slack", classify.Input{Provider: "slack", Operation: classify.OpAPI, Status: 200,
			Body: []byte(`{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"channels:read"}`)},
			classify.ProviderError{SlackError: "missing_scope", SlackNeeded: "chat:write", SlackProvided: "channels:read"}},
		{"bearer", classify.Input{Provider: "acme", Operation: classify.OpAPI, Status: 403, Header: http.Header{"Www-Authenticate": {`Bearer realm="x", error="insufficient_scope", scope="a b"`}, "Retry-After": {"5"}}},
			classify.ProviderError{BearerError: "insufficient_scope", BearerScope: "a b", RetryAfter: 5 * time.Second, HasRetryAfter: true}},
		{"html", classify.Input{Provider: "google", Operation: classify.OpRefresh, Status: 401, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte(`{"error":"invalid_grant"}`)},
			classify.ProviderError{HTML: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classify.Parse(tc.in)
			want := tc.want
			want.Provider, want.Operation, want.Status = tc.in.Provider, tc.in.Operation, tc.in.Status
			want.Body = append([]byte{}, tc.in.Body...)
			if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProviderErrorNeverPrintsBody: the body can echo a token; Error and
// Description carry codes and the provider's description only, capped.
func TestProviderErrorNeverPrintsBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"ok":false,"error":"invalid_auth","echo":"xoxe.xoxp-1-SECRET"}`)
	e := classify.Parse(classify.Input{Provider: "slack", Operation: classify.OpRefresh, Status: 200, Body: body})
	if strings.Contains(e.Error(), "SECRET") || strings.Contains(e.Description(), "SECRET") {
		t.Fatalf("leak: %q %q", e.Error(), e.Description())
	}
	long := classify.Parse(classify.Input{Provider: "acme", Operation: classify.OpRefresh, Status: 400,
		Body: []byte(`{"error":"invalid_grant","error_description":"` + strings.Repeat("x", 5000) + `"}`)})
	if len(long.Description()) > 310 {
		t.Fatalf("description not capped: %d bytes", len(long.Description()))
	}
	big := classify.Parse(classify.Input{Provider: "acme", Operation: classify.OpAPI, Status: 500, Body: bytes.Repeat([]byte("a"), 1<<20)})
	if len(big.Body) != classify.MaxBody {
		t.Fatalf("body not capped: %d", len(big.Body))
	}
	if classify.FromCallback("google", url.Values{"code": {"c"}}) != nil {
		t.Fatal("a callback without error= is not an error")
	}
}
