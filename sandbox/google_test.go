package sandbox_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/docs/v1"
	"google.golang.org/api/drive/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/sandbox/googlesim"
)

const (
	scopeDriveFile = googlesim.ScopeDriveFile
	scopeDocs      = googlesim.ScopeDocuments
)

// googleTokens runs the whole code flow with x/oauth2 (PKCE, offline) and
// returns the token.
func googleTokens(t *testing.T, e *env, account string, scopes []string, opts ...oauth2.AuthCodeOption) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	cfg := e.oauthConfig(t, "google", scopes...)
	verifier := oauth2.GenerateVerifier()
	opts = append(opts, oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier))
	q := e.authorize(t, cfg.AuthCodeURL("state-123", opts...), sandbox.Choice{Account: account})
	if q.Get("state") != "state-123" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return cfg, tok
}

func TestGoogleCodeFlowAndRefreshWithOAuth2(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := googleTokens(t, e, "alice@acme.example", []string{"openid", "email", scopeDriveFile})
	if !strings.HasPrefix(tok.AccessToken, "ya29.") || !strings.HasPrefix(tok.RefreshToken, "1//") || tok.TokenType != "Bearer" {
		t.Fatalf("token %+v", tok)
	}
	if got := tok.Extra("expires_in"); got != float64(3599) {
		t.Fatalf("expires_in %v; want 3599", got)
	}
	if got := tok.Extra("scope"); got != "https://www.googleapis.com/auth/drive.file https://www.googleapis.com/auth/userinfo.email openid" {
		t.Fatalf("scope %q", got)
	}
	idt, _ := tok.Extra("id_token").(string)
	claims := jwtClaims(t, idt)
	if claims["email"] != "alice@acme.example" || claims["hd"] != "acme.example" || claims["email_verified"] != true || claims["aud"] != cfg.ClientID {
		t.Fatalf("id_token claims %v", claims)
	}
	verifyJWT(t, e.url+"/sandbox/google/oauth2/v3/certs", idt)

	// Refresh through x/oauth2: a new access token, the same refresh token
	// (Google does not rotate), no refresh_token in the response.
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(context.Background(), &old).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken != tok.RefreshToken || fresh.Extra("refresh_token") != nil {
		t.Fatalf("refreshed %+v", fresh)
	}
	c := e.counters(t, "google")
	if c.CodeExchanges != 1 || c.Refreshes != 1 || c.TokenRequests != 2 || len(c.RefreshesByToken) != 1 {
		t.Fatalf("counters %+v", c)
	}
	// Consumer accounts have no hd.
	_, tok2 := googleTokens(t, e, "bob@gmail.com", []string{"openid", "email"})
	if _, ok := jwtClaims(t, tok2.Extra("id_token").(string))["hd"]; ok {
		t.Fatal("gmail.com account carries hd")
	}
}

func verifyJWT(t *testing.T, jwksURL, jwt string) {
	t.Helper()
	r := send(t, "GET", jwksURL, nil, "")
	var set struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks %s", r.body)
	}
	n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	eb, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(eb).Int64())}
	parts := strings.Split(jwt, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("id_token signature does not verify against the JWKS: %v", err)
	}
}

// TestGoogleRefreshTokenIssuance: a refresh token only with
// access_type=offline, and only on first consent or with prompt=consent.
func TestGoogleRefreshTokenIssuance(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg := e.oauthConfig(t, "google", "openid", scopeDriveFile)
	exchange := func(opts ...oauth2.AuthCodeOption) *oauth2.Token {
		q := e.authorize(t, cfg.AuthCodeURL("state-xyz", opts...), sandbox.Choice{Account: "carol@acme.example"})
		tok, err := cfg.Exchange(context.Background(), q.Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if tok := exchange(); tok.RefreshToken != "" {
		t.Fatal("online access returned a refresh token")
	}
	// The grant exists now: offline without prompt=consent gets none.
	if tok := exchange(oauth2.AccessTypeOffline); tok.RefreshToken != "" {
		t.Fatal("offline access on a later consent returned a refresh token")
	}
	if tok := exchange(oauth2.AccessTypeOffline, oauth2.ApprovalForce); tok.RefreshToken == "" {
		t.Fatal("prompt=consent did not return a refresh token")
	}
	// A first consent with offline access does.
	cfg2 := e.oauthConfig(t, "google", "openid")
	q := e.authorize(t, cfg2.AuthCodeURL("state-abc", oauth2.AccessTypeOffline), sandbox.Choice{Account: "dave@acme.example"})
	if tok, err := cfg2.Exchange(context.Background(), q.Get("code")); err != nil || tok.RefreshToken == "" {
		t.Fatalf("first offline consent: %v %+v", err, tok)
	}
}

func TestGooglePartialGrantAndIncrementalScopes(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg := e.oauthConfig(t, "google", "openid", "email", scopeDriveFile, scopeDocs)
	// Granular consent: the user unticks documents.
	q := e.authorize(t, cfg.AuthCodeURL("state-partial", oauth2.AccessTypeOffline), sandbox.Choice{Account: "erin@acme.example", Scopes: []string{scopeDriveFile}})
	tok, err := cfg.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Extra("scope").(string); strings.Contains(got, "documents") || !strings.Contains(got, "drive.file") || !strings.Contains(got, "openid") {
		t.Fatalf("partial grant scope %q", got)
	}
	// Incremental authorization for documents alone, with include_granted_scopes.
	cfg.Scopes = []string{scopeDocs}
	q = e.authorize(t, cfg.AuthCodeURL("state-incr", oauth2.SetAuthURLParam("include_granted_scopes", "true")), sandbox.Choice{Account: "erin@acme.example"})
	tok, err = cfg.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"documents", "drive.file", "openid", "userinfo.email"} {
		if !strings.Contains(tok.Extra("scope").(string), want) {
			t.Fatalf("merged scope %q lacks %s", tok.Extra("scope"), want)
		}
	}
	// Without include_granted_scopes the token carries only what was asked.
	q = e.authorize(t, cfg.AuthCodeURL("state-only"), sandbox.Choice{Account: "erin@acme.example"})
	tok, _ = cfg.Exchange(context.Background(), q.Get("code"))
	if tok.Extra("scope") != scopeDocs {
		t.Fatalf("scope without include_granted_scopes %q", tok.Extra("scope"))
	}
}

// tokenError checks a token-endpoint error against Google's exact bytes.
func tokenError(t *testing.T, r response, status int, code, desc string) {
	t.Helper()
	want := "{\n  \"error\": \"" + code + "\",\n  \"error_description\": \"" + desc + "\"\n}"
	if r.status != status || r.body != want {
		t.Fatalf("got %d %q; want %d %q", r.status, r.body, status, want)
	}
	if r.header.Get("Content-Type") != "application/json; charset=utf-8" || r.header.Get("Cache-Control") != "no-cache, no-store, max-age=0, must-revalidate" ||
		r.header.Get("Pragma") != "no-cache" || r.header.Get("Date") == "" {
		t.Fatalf("headers %v", r.header)
	}
}

func TestGoogleTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	tokenURL := e.url + "/sandbox/google/token"
	cfg := e.oauthConfig(t, "google", "openid")
	code := func(opts ...oauth2.AuthCodeOption) string {
		return e.authorize(t, cfg.AuthCodeURL("state-err1", opts...), sandbox.Choice{Account: "frank@acme.example"}).Get("code")
	}
	base := func(c string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURL}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}
	}
	v := base(code())
	v.Set("client_secret", "wrong")
	tokenError(t, form(t, tokenURL, nil, v), 401, "invalid_client", "Unauthorized")
	v.Set("client_id", "nobody.apps.googleusercontent.com")
	tokenError(t, form(t, tokenURL, nil, v), 401, "invalid_client", "The OAuth client was not found.")

	c := code()
	if r := form(t, tokenURL, nil, base(c)); r.status != 200 {
		t.Fatalf("exchange %d %s", r.status, r.body)
	}
	tokenError(t, form(t, tokenURL, nil, base(c)), 400, "invalid_grant", "Code was already redeemed.")
	tokenError(t, form(t, tokenURL, nil, base("4/0Agarbage")), 400, "invalid_grant", "Malformed auth code.")
	v = base(code())
	v.Set("redirect_uri", "http://127.0.0.1:9/other")
	tokenError(t, form(t, tokenURL, nil, v), 400, "redirect_uri_mismatch", "Bad Request")

	verifier := oauth2.GenerateVerifier()
	tokenError(t, form(t, tokenURL, nil, base(code(oauth2.S256ChallengeOption(verifier)))), 400, "invalid_grant", "Missing code verifier.")
	v = base(code(oauth2.S256ChallengeOption(verifier)))
	v.Set("code_verifier", oauth2.GenerateVerifier())
	tokenError(t, form(t, tokenURL, nil, v), 400, "invalid_grant", "Invalid code verifier.")
	v = base(code())
	v.Set("code_verifier", verifier)
	tokenError(t, form(t, tokenURL, nil, v), 400, "invalid_grant", "code_verifier or verifier is not needed")

	rv := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1//0gunknown"}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}
	tokenError(t, form(t, tokenURL, nil, rv), 400, "invalid_grant", "Token has been expired or revoked.")
	tokenError(t, form(t, tokenURL, nil, url.Values{"grant_type": {"password"}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}), 400, "unsupported_grant_type", "Invalid grant_type: password")
	// Client authentication by HTTP Basic works too.
	rv.Del("client_id")
	rv.Del("client_secret")
	tokenError(t, form(t, tokenURL, basic(cfg.ClientID, cfg.ClientSecret), rv), 400, "invalid_grant", "Token has been expired or revoked.")
}

func TestGoogleRefreshTokenIssuanceLimit(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{GoogleIssuanceLimit: 3})
	var toks []*oauth2.Token
	var cfg *oauth2.Config
	for range 4 {
		var tok *oauth2.Token
		cfg, tok = googleTokens(t, e, "gina@acme.example", []string{"openid"}, oauth2.ApprovalForce)
		toks = append(toks, tok)
	}
	refresh := func(tok *oauth2.Token) error {
		old := *tok
		old.Expiry = time.Now().Add(-time.Minute)
		_, err := cfg.TokenSource(context.Background(), &old).Token()
		return err
	}
	var re *oauth2.RetrieveError
	if err := refresh(toks[0]); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("oldest refresh token after the limit: %v; want invalid_grant", err)
	}
	for i, tok := range toks[1:] {
		if err := refresh(tok); err != nil {
			t.Fatalf("refresh token %d: %v", i+1, err)
		}
	}
}

// googleClients returns Drive and Docs clients from the official library,
// pointed at the sandbox.
func googleClients(t *testing.T, e *env, cfg *oauth2.Config, tok *oauth2.Token) (*drive.Service, *docs.Service) {
	t.Helper()
	ctx := context.Background()
	hc := cfg.Client(ctx, tok)
	d, err := drive.NewService(ctx, option.WithHTTPClient(hc), option.WithEndpoint(e.url+"/sandbox/google/drive/v3/"))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := docs.NewService(ctx, option.WithHTTPClient(hc), option.WithEndpoint(e.url+"/sandbox/google/"))
	if err != nil {
		t.Fatal(err)
	}
	return d, dc
}

func gStatus(err error) (int, string) {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		reason := ""
		if len(ge.Errors) > 0 {
			reason = ge.Errors[0].Reason
		}
		return ge.Code, reason
	}
	return 0, ""
}

// TestGoogleDriveAndDocsWithOfficialClients: list, create a real Google Doc
// (not text/plain), append text, read it back.
func TestGoogleDriveAndDocsWithOfficialClients(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := googleTokens(t, e, "hana@acme.example", []string{"openid", "email", scopeDriveFile, scopeDocs})
	d, dc := googleClients(t, e, cfg, tok)

	// drive.file sees only what this app created: nothing yet, although the
	// account has files.
	list, err := d.Files.List().PageSize(10).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Files) != 0 || len(e.sb.Google().FilesOf("hana@acme.example")) != 3 {
		t.Fatalf("drive.file listed %d files", len(list.Files))
	}
	f, err := d.Files.Create(&drive.File{Name: "Agent report", MimeType: googlesim.MimeDoc}).Fields("id", "name", "mimeType").Do()
	if err != nil {
		t.Fatal(err)
	}
	if f.MimeType != "application/vnd.google-apps.document" || f.Id == "" {
		t.Fatalf("created %+v", f)
	}
	txt, err := d.Files.Create(&drive.File{Name: "report.txt", MimeType: "text/plain"}).Do()
	if err != nil || txt.MimeType != "text/plain" {
		t.Fatalf("text file %+v %v", txt, err)
	}
	list, err = d.Files.List().Q("mimeType = 'application/vnd.google-apps.document'").Fields("files(id, name, mimeType)").Do()
	if err != nil || len(list.Files) != 1 || list.Files[0].Id != f.Id || list.Files[0].Name != "Agent report" {
		t.Fatalf("query list %+v %v", list, err)
	}

	_, err = dc.Documents.BatchUpdate(f.Id, &docs.BatchUpdateDocumentRequest{Requests: []*docs.Request{
		{InsertText: &docs.InsertTextRequest{Text: "Hello from the agent\n", EndOfSegmentLocation: &docs.EndOfSegmentLocation{}}},
		{InsertText: &docs.InsertTextRequest{Text: "Title: ", Location: &docs.Location{Index: 1}}},
	}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dc.Documents.Get(f.Id).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := docText(doc); got != "Title: Hello from the agent\n\n" {
		t.Fatalf("document text %q", got)
	}
	created, err := dc.Documents.Create(&docs.Document{Title: "Made by Docs"}).Do()
	if err != nil || created.DocumentId == "" || created.Title != "Made by Docs" {
		t.Fatalf("documents.create %+v %v", created, err)
	}
	if got, err := d.Files.Get(created.DocumentId).Do(); err != nil || got.MimeType != googlesim.MimeDoc {
		t.Fatalf("documents.create made %+v %v", got, err)
	}

	// The Docs API refuses a text file: the ".txt instead of a Doc" bug shows.
	if _, err := dc.Documents.Get(txt.Id).Do(); err == nil || !strings.Contains(err.Error(), "not supported for this document") {
		t.Fatalf("docs get of text/plain: %v", err)
	}
	// Out-of-range index: atomic, nothing applied.
	_, err = dc.Documents.BatchUpdate(f.Id, &docs.BatchUpdateDocumentRequest{Requests: []*docs.Request{
		{InsertText: &docs.InsertTextRequest{Text: "ok", Location: &docs.Location{Index: 1}}},
		{InsertText: &docs.InsertTextRequest{Text: "bad", Location: &docs.Location{Index: 999}}},
	}}).Do()
	if code, _ := gStatus(err); code != 400 {
		t.Fatalf("bad index: %v", err)
	}
	doc, _ = dc.Documents.Get(f.Id).Do()
	if docText(doc) != "Title: Hello from the agent\n\n" {
		t.Fatal("a failed batchUpdate applied part of its requests")
	}
	if _, err := dc.Documents.Get("1nope").Do(); err == nil {
		t.Fatal("unknown document found")
	} else if code, _ := gStatus(err); code != 404 {
		t.Fatalf("unknown document: %v", err)
	}
	// Multipart upload into a Google Doc converts the text.
	up, err := d.Files.Create(&drive.File{Name: "Imported", MimeType: googlesim.MimeDoc}).Media(strings.NewReader("line one\nline two\n")).Do()
	if err != nil {
		t.Fatal(err)
	}
	doc, err = dc.Documents.Get(up.Id).Do()
	if err != nil || docText(doc) != "line one\nline two\n" {
		t.Fatalf("imported doc %q %v", docText(doc), err)
	}
}

func docText(d *docs.Document) string {
	var b strings.Builder
	if d == nil || d.Body == nil {
		return ""
	}
	for _, el := range d.Body.Content {
		if el.Paragraph == nil {
			continue
		}
		for _, pe := range el.Paragraph.Elements {
			if pe.TextRun != nil {
				b.WriteString(pe.TextRun.Content)
			}
		}
	}
	return b.String()
}

// TestGoogleScopeEnforcement: each method accepts exactly the scopes of the
// discovery documents, and refusals carry Google's bodies.
func TestGoogleScopeEnforcement(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	_, tok := googleTokens(t, e, "ivan@acme.example", []string{"openid", googlesim.ScopeDriveMetadataRO})
	files := e.url + "/sandbox/google/drive/v3/files"
	r := send(t, "GET", files+"?prettyPrint=false", bearer(tok.AccessToken), "")
	if r.status != 200 || len(r.json(t)["files"].([]any)) != 3 {
		t.Fatalf("metadata.readonly list: %d %s", r.status, r.body)
	}
	r = send(t, "POST", files, bearer(tok.AccessToken), `{"name":"x","mimeType":"application/vnd.google-apps.document"}`)
	want := `{
  "error": {
    "code": 403,
    "message": "Request had insufficient authentication scopes.",
    "errors": [
      {
        "message": "Insufficient Permission",
        "domain": "global",
        "reason": "insufficientPermissions"
      }
    ],
    "status": "PERMISSION_DENIED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": {
          "method": "google.apps.drive.v3.DriveFiles.Create",
          "service": "drive.googleapis.com"
        }
      }
    ]
  }
}`
	if r.status != 403 || r.body != want {
		t.Fatalf("create with metadata.readonly: %d\n%s", r.status, r.body)
	}
	r = send(t, "POST", e.url+"/sandbox/google/v1/documents", bearer(tok.AccessToken), `{"title":"x"}`)
	if r.status != 403 || !strings.Contains(r.body, "ACCESS_TOKEN_SCOPE_INSUFFICIENT") || !strings.Contains(r.body, "docs.googleapis.com") {
		t.Fatalf("docs create without documents: %d %s", r.status, r.body)
	}
	// No token at all.
	r = send(t, "GET", files, nil, "")
	if r.status != 401 || !strings.Contains(r.body, `"reason": "CREDENTIALS_MISSING"`) || !strings.Contains(r.body, `"reason": "required"`) ||
		r.header.Get("WWW-Authenticate") != `Bearer realm="https://accounts.google.com/"` {
		t.Fatalf("no token: %d %v %s", r.status, r.header, r.body)
	}
	// drive.file cannot see a file the user made; Google says 404, not 403.
	ids := e.sb.Google().FilesOf("ivan@acme.example")
	_, tok2 := googleTokens(t, e, "ivan@acme.example", []string{scopeDriveFile})
	for id := range ids {
		r = send(t, "GET", files+"/"+id+"?prettyPrint=false", bearer(tok2.AccessToken), "")
		want := `{"error":{"errors":[{"domain":"global","reason":"notFound","message":"File not found: ` + id + `.","locationType":"parameter","location":"fileId"}],"code":404,"message":"File not found: ` + id + `."}}`
		if r.status != 404 || r.body != want {
			t.Fatalf("drive.file get of the user's file: %d %s", r.status, r.body)
		}
		break
	}
	// A bad query is refused the way Drive refuses it.
	r = send(t, "GET", files+"?prettyPrint=false&q="+url.QueryEscape("name ~ 'x'"), bearer(tok.AccessToken), "")
	if r.status != 400 || !strings.Contains(r.body, `"reason":"invalid"`) || !strings.Contains(r.body, `"location":"q"`) {
		t.Fatalf("bad q: %d %s", r.status, r.body)
	}
}

func TestGoogleUserinfoTokeninfoRevoke(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := googleTokens(t, e, "judy@acme.example", []string{"openid", "email", "profile", scopeDriveFile})
	r := send(t, "GET", e.url+"/sandbox/google/v1/userinfo", bearer(tok.AccessToken), "")
	ui := r.json(t)
	if r.status != 200 || ui["email"] != "judy@acme.example" || ui["hd"] != "acme.example" || ui["email_verified"] != true || ui["sub"] == "" || ui["name"] == nil {
		t.Fatalf("userinfo %d %s", r.status, r.body)
	}
	r = send(t, "GET", e.url+"/sandbox/google/tokeninfo?access_token="+tok.AccessToken, nil, "")
	ti := r.json(t)
	if r.status != 200 || ti["email_verified"] != "true" || ti["expires_in"] != "3599" || ti["access_type"] != "offline" || ti["aud"] != cfg.ClientID {
		t.Fatalf("tokeninfo %s", r.body)
	}
	if _, ok := ti["exp"].(string); !ok {
		t.Fatal("tokeninfo exp is not a string")
	}
	if r := send(t, "GET", e.url+"/sandbox/google/tokeninfo?access_token=bogus", nil, ""); r.status != 400 || r.json(t)["error_description"] != "Invalid Value" {
		t.Fatalf("tokeninfo bogus %d %s", r.status, r.body)
	}
	// Revoking the access token kills the refresh token too.
	if r := form(t, e.url+"/sandbox/google/revoke", nil, url.Values{"token": {tok.AccessToken}}); r.status != 200 {
		t.Fatalf("revoke %d %s", r.status, r.body)
	}
	rv := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}
	tokenError(t, form(t, e.url+"/sandbox/google/token", nil, rv), 400, "invalid_grant", "Token has been expired or revoked.")
	if r := send(t, "GET", e.url+"/sandbox/google/v1/userinfo", bearer(tok.AccessToken), ""); r.status != 401 {
		t.Fatalf("userinfo after revoke %d", r.status)
	}
	if r := form(t, e.url+"/sandbox/google/revoke", nil, url.Values{"token": {"ya29.unknown"}}); r.status != 400 || !strings.Contains(r.body, "invalid_token") {
		t.Fatalf("revoke unknown %d %s", r.status, r.body)
	}
	// After the revocation the next consent is a first consent again: a
	// refresh token comes back without prompt=consent.
	_, again := googleTokens(t, e, "judy@acme.example", []string{"openid"})
	if again.RefreshToken == "" {
		t.Fatal("no refresh token after re-consent following revocation")
	}
}

func TestGoogleDiscovery(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	d := send(t, "GET", e.url+"/sandbox/google/.well-known/openid-configuration", nil, "").json(t)
	if d["issuer"] != e.url+"/sandbox/google" || d["token_endpoint"] != e.url+"/sandbox/google/token" {
		t.Fatalf("discovery %v", d)
	}
	for k, want := range map[string][]string{"token_endpoint_auth_methods_supported": {"client_secret_post", "client_secret_basic"}, "code_challenge_methods_supported": {"plain", "S256"}} {
		var got []string
		for _, x := range d[k].([]any) {
			got = append(got, x.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v; want %v", k, got, want)
		}
	}
	if r := send(t, "GET", e.url+"/sandbox/google/o/oauth2/v2/auth?client_id=nope&redirect_uri=x", nil, ""); r.status != 401 || !strings.Contains(r.body, "Error 401: invalid_client") {
		t.Fatalf("unknown client page %d", r.status)
	}
	c, _ := e.sb.DefaultClient("google")
	r := send(t, "GET", e.url+"/sandbox/google/o/oauth2/v2/auth?response_type=code&scope=openid&client_id="+c.ClientID+"&redirect_uri="+url.QueryEscape("https://evil.example/cb"), nil, "")
	if r.status != 400 || !strings.Contains(r.body, "Error 400: redirect_uri_mismatch") {
		t.Fatalf("foreign redirect page %d %s", r.status, r.body)
	}
	r = send(t, "GET", e.url+"/sandbox/google/o/oauth2/v2/auth?response_type=code&scope=openid+user.birthday.read&client_id="+c.ClientID+"&redirect_uri="+url.QueryEscape(redirectURL), nil, "")
	if r.status != 400 || !strings.Contains(r.body, "Some requested scopes were invalid. {valid=[openid], invalid=[user.birthday.read]}") {
		t.Fatalf("invalid scope page %d %s", r.status, r.body)
	}
	_ = http.StatusOK
}

func TestGoogleTokeninfoIDToken(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := googleTokens(t, e, "xena@acme.example", []string{"openid", "email"})
	r := send(t, "GET", e.url+"/sandbox/google/tokeninfo?id_token="+tok.Extra("id_token").(string), nil, "")
	m := r.json(t)
	if r.status != 200 || m["email_verified"] != "true" || m["aud"] != cfg.ClientID || m["hd"] != "acme.example" || m["alg"] != "RS256" {
		t.Fatalf("tokeninfo id_token %d %s", r.status, r.body)
	}
	if _, ok := m["exp"].(string); !ok {
		t.Fatal("exp is not a string")
	}
	forged := tok.Extra("id_token").(string)
	forged = forged[:len(forged)-4] + "AAAA"
	if r := send(t, "GET", e.url+"/sandbox/google/tokeninfo?id_token="+forged, nil, ""); r.status != 400 || r.json(t)["error"] != "invalid_token" {
		t.Fatalf("forged id_token %d %s", r.status, r.body)
	}
}

// TestDeterministicWhenSeeded: the same seed and the same requests give the
// same tokens.
func TestDeterministicWhenSeeded(t *testing.T) {
	t.Parallel()
	run := func() (string, string) {
		e := start(t, sandbox.Options{}) // start seeds every sandbox with 42
		if err := e.sb.SetConsent("google", sandbox.Consent{Account: "yuri@acme.example"}); err != nil {
			t.Fatal(err)
		}
		cfg := e.oauthConfig(t, "google", "openid")
		q := e.authorize(t, cfg.AuthCodeURL("state-seed", oauth2.AccessTypeOffline), sandbox.Choice{})
		tok, err := cfg.Exchange(context.Background(), q.Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken, tok.RefreshToken
	}
	a1, r1 := run()
	a2, r2 := run()
	if a1 != a2 || r1 != r2 {
		t.Fatal("two seeded sandboxes issued different tokens for the same requests")
	}
	other := sandbox.New(sandbox.Options{Seed: 43})
	if c, _ := other.DefaultClient("google"); c.ClientID == "" {
		t.Fatal("no default client")
	}
}
