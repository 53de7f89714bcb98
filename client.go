package authgate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the authgate HTTP API as one tenant. The zero value is not
// usable: set BaseURL and APIKey (NewClient does).
type Client struct {
	BaseURL    string
	APIKey     string
	HTTPClient *http.Client
}

// NewClient returns a client for the API at baseURL (e.g. "http://127.0.0.1:8080")
// authenticated with an `ag_…` API key.
func NewClient(baseURL, apiKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, HTTPClient: http.DefaultClient}
}

// ImportCredentialRequest is the body of POST /v1/credentials/import. Importing
// onto an existing (user, provider, workspace, subject) slot updates that
// credential and keeps its id; a missing RefreshToken keeps the stored one.
type ImportCredentialRequest struct {
	UserID       string      `json:"user_id"`
	Provider     string      `json:"provider"`
	WorkspaceID  string      `json:"workspace_id,omitempty"`
	Subject      string      `json:"subject"`
	Email        string      `json:"email,omitempty"`
	AccountType  AccountType `json:"account_type,omitempty"`
	Domain       string      `json:"domain,omitempty"`
	Scopes       []string    `json:"scopes,omitempty"`
	TokenType    string      `json:"token_type,omitempty"`
	AccessToken  string      `json:"access_token,omitempty"`
	RefreshToken string      `json:"refresh_token,omitempty"`
	ExpiresAt    *time.Time  `json:"expires_at,omitempty"`
}

// CredentialFilter narrows GET /v1/credentials. Empty fields do not filter.
type CredentialFilter struct {
	UserID   string
	Provider string
	Status   CredentialStatus
	// After is the id to continue after (the previous page's NextAfter).
	After CredentialID
	Limit int
}

// CredentialPage is one page of credentials, ordered by id.
type CredentialPage struct {
	Credentials []Credential `json:"credentials"`
	// NextAfter is set when there may be more: pass it as CredentialFilter.After.
	NextAfter CredentialID `json:"next_after,omitempty"`
}

// EventPage is one page of a credential's events, oldest first.
type EventPage struct {
	Events    []Event `json:"events"`
	NextAfter int64   `json:"next_after,omitempty"`
}

// ImportCredential stores a credential from another system.
func (c *Client) ImportCredential(ctx context.Context, req ImportCredentialRequest) (Credential, error) {
	var out Credential
	err := c.do(ctx, http.MethodPost, "/v1/credentials/import", req, &out)
	return out, err
}

// Credential returns one credential's metadata.
func (c *Client) Credential(ctx context.Context, id CredentialID) (Credential, error) {
	var out Credential
	err := c.do(ctx, http.MethodGet, "/v1/credentials/"+url.PathEscape(string(id)), nil, &out)
	return out, err
}

// Credentials lists the tenant's credentials.
func (c *Client) Credentials(ctx context.Context, f CredentialFilter) (CredentialPage, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("user_id", f.UserID)
	set("provider", f.Provider)
	set("status", string(f.Status))
	set("after", string(f.After))
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/v1/credentials"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out CredentialPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CredentialEvents returns a credential's lifecycle events after the given
// event id (0 for the first page).
func (c *Client) CredentialEvents(ctx context.Context, id CredentialID, after int64) (EventPage, error) {
	path := "/v1/credentials/" + url.PathEscape(string(id)) + "/events"
	if after > 0 {
		path += "?after=" + strconv.FormatInt(after, 10)
	}
	var out EventPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// DeleteCredential disconnects a credential: it becomes revoked and its
// tokens are erased.
func (c *Client) DeleteCredential(ctx context.Context, id CredentialID) (Credential, error) {
	var out Credential
	err := c.do(ctx, http.MethodDelete, "/v1/credentials/"+url.PathEscape(string(id)), nil, &out)
	return out, err
}

// maxResponse caps what the client reads of one response.
const maxResponse = 16 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return DecodeProblem(resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// DecodeProblem turns an error response into an *Error. A body that is not
// problem+json still yields an *Error carrying the status.
func DecodeProblem(status int, contentType string, body []byte) *Error {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/problem+json" || mt == "application/json" {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Class != "" {
			if e.Status == 0 {
				e.Status = status
			}
			return &e
		}
	}
	c := ClassInternal
	switch {
	case status == http.StatusUnauthorized:
		c = ClassUnauthorized
	case status == http.StatusNotFound:
		c = ClassNotFound
	case status == http.StatusTooManyRequests:
		c = ClassRateLimited
	case status >= 500:
		c = ClassTransient
	case status >= 400:
		c = ClassInvalidRequest
	}
	snippet := string(body)
	if len(snippet) > 200 {
		snippet = snippet[:200]
	}
	return &Error{Class: c, Title: c.title(), Status: status, Detail: fmt.Sprintf("HTTP %d: %s", status, strings.TrimSpace(snippet))}
}

// ConnectSessionRequest starts a connect flow for a user.
type ConnectSessionRequest struct {
	UserID   string   `json:"user_id"`
	Provider string   `json:"provider"`
	Actions  []string `json:"actions,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	// CredentialID makes this a reconnect of that credential.
	CredentialID CredentialID `json:"credential_id,omitempty"`
	LoginHint    string       `json:"login_hint,omitempty"`
	ReturnURL    string       `json:"return_url,omitempty"`
	ForceConsent bool         `json:"force_consent,omitempty"`
	// ExpectedAccount refuses any other account (identity_mismatch): an
	// email, a Workspace domain, a workspace id or the provider's subject.
	ExpectedAccount string `json:"expected_account,omitempty"`
}

// ConnectSession is where to send the user.
type ConnectSession struct {
	ID         string    `json:"id"`
	ConnectURL string    `json:"connect_url"`
	ExpiresAt  time.Time `json:"expires_at"`
	Provider   string    `json:"provider"`
	Scopes     []string  `json:"scopes"`
	// ExpectedAccount echoes the request ("" accepts any account).
	ExpectedAccount string `json:"expected_account,omitempty"`
}

// CreateConnectSession returns a connect link for the user to open.
func (c *Client) CreateConnectSession(ctx context.Context, req ConnectSessionRequest) (ConnectSession, error) {
	var out ConnectSession
	err := c.do(ctx, http.MethodPost, "/v1/connect-sessions", req, &out)
	return out, err
}

// Connect-session states, as GET /v1/connect-sessions/{id} reports them.
const (
	ConnectStatePending   = "pending"
	ConnectStateConnected = "connected"
	ConnectStatePartial   = "partial"
	ConnectStateCanceled  = "canceled"
	ConnectStateError     = "error"
	ConnectStateExpired   = "expired"
)

// ConnectSessionStatus is the authenticated outcome of a connect flow (the
// status and credential_id on the return URL are only hints).
type ConnectSessionStatus struct {
	ID            string       `json:"id"`
	State         string       `json:"state"`
	Provider      string       `json:"provider"`
	UserID        string       `json:"user_id"`
	CredentialID  CredentialID `json:"credential_id,omitempty"`
	MissingScopes []string     `json:"missing_scopes"`
	// Error is the class when State is error or canceled.
	Error     string    `json:"error,omitempty"`
	ErrorCode string    `json:"error_code,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Opened says a browser has opened the link (it is bound to that browser).
	Opened bool `json:"opened"`
}

// ConnectSessionStatus reads where a connect flow stands.
func (c *Client) ConnectSessionStatus(ctx context.Context, id string) (ConnectSessionStatus, error) {
	var out ConnectSessionStatus
	err := c.do(ctx, http.MethodGet, "/v1/connect-sessions/"+url.PathEscape(id), nil, &out)
	return out, err
}

// ConnectResult is what the callback answers a client that asks for JSON.
type ConnectResult struct {
	Credential       Credential `json:"credential"`
	Created          bool       `json:"created"`
	RequestedScopes  []string   `json:"requested_scopes"`
	GrantedScopes    []string   `json:"granted_scopes"`
	MissingScopes    []string   `json:"missing_scopes"`
	Provider         string     `json:"provider"`
	ConnectSessionID string     `json:"connect_session_id"`
}

// TokenRequest asks for an access token.
type TokenRequest struct {
	// MinValid is how long the token must stay valid (0: the server's
	// default of 5 minutes). It is sent in whole seconds.
	MinValid time.Duration
	// Actions the caller is about to perform; missing scopes are refused
	// with ClassInsufficientScope.
	Actions []string
	// RejectedFingerprint reports that the provider answered 401 to the
	// token with this Fingerprint: authgate refreshes once if it is still
	// the stored token (however many workers report it), and otherwise
	// returns the newer one.
	RejectedFingerprint string
}

// TokenRequestBody is POST /v1/credentials/{id}/token's body on the wire
// (TokenRequest is the SDK's friendlier form of it).
type TokenRequestBody struct {
	// MinValidSeconds: 0 to 86400; absent means 300.
	MinValidSeconds     *int     `json:"min_valid_seconds,omitempty"`
	Actions             []string `json:"actions,omitempty"`
	RejectedFingerprint string   `json:"rejected_fingerprint,omitempty"`
	// MaxWaitSeconds is how long the caller can wait (its own deadline). On
	// a provider that revokes the old token on refresh, a caller who cannot
	// wait for a planned refresh gets the current token at once with
	// min_valid_met false and the time it really has left.
	MaxWaitSeconds *float64 `json:"max_wait_seconds,omitempty"`
}

// AccessToken is a token from the token API. Treat AccessToken as a secret.
type AccessToken struct {
	CredentialID CredentialID `json:"credential_id"`
	Provider     string       `json:"provider"`
	AccessToken  string       `json:"access_token"`
	TokenType    string       `json:"token_type"`
	ExpiresAt    *time.Time   `json:"expires_at"`
	Scopes       []string     `json:"scopes"`
	Fingerprint  string       `json:"fingerprint"`
	// MinValidMet is false when the provider's tokens do not last as long
	// as the window asked for: the freshest token is returned anyway.
	MinValidMet bool `json:"min_valid_met"`
}

// Token returns an access token valid for at least req.MinValid. On failure
// the *Error says what to do: ClassReauthRequired (with ReconnectURL and
// AgentHint), ClassInsufficientScope (MissingScopes), ClassRateLimited
// (RetryAfter), …
func (c *Client) Token(ctx context.Context, id CredentialID, req TokenRequest) (AccessToken, error) {
	body := TokenRequestBody{Actions: req.Actions, RejectedFingerprint: req.RejectedFingerprint}
	if req.MinValid > 0 {
		s := int((req.MinValid + time.Second - 1) / time.Second)
		body.MinValidSeconds = &s
	}
	if dl, ok := ctx.Deadline(); ok {
		// The caller's deadline travels with the request (max_wait_seconds).
		if w := time.Until(dl).Seconds(); w > 0 {
			body.MaxWaitSeconds = &w
		}
	}
	var out AccessToken
	err := c.do(ctx, http.MethodPost, "/v1/credentials/"+url.PathEscape(string(id))+"/token", body, &out)
	return out, err
}

// ClassifyRequest is a provider error to classify.
type ClassifyRequest struct {
	Provider string `json:"provider"`
	// Operation is authorize, code_exchange, refresh or api.
	Operation string            `json:"operation"`
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      string            `json:"body"`
}

// Classification is the class, policy and end-user message of an error.
type Classification struct {
	Class         Class    `json:"class"`
	Policy        string   `json:"policy"`
	Message       string   `json:"message"`
	RetryAfter    *int64   `json:"retry_after"`
	MissingScopes []string `json:"missing_scopes"`
	ErrorCode     string   `json:"error_code,omitempty"`
}

// Classify asks the server's classifier about a provider error.
func (c *Client) Classify(ctx context.Context, req ClassifyRequest) (Classification, error) {
	var out Classification
	err := c.do(ctx, http.MethodPost, "/v1/classify", req, &out)
	return out, err
}

// Provider is a configured provider as GET /v1/providers lists it.
type Provider struct {
	Name                 string   `json:"name"`
	DisplayName          string   `json:"display_name"`
	Kind                 string   `json:"kind"`
	Sandbox              bool     `json:"sandbox"`
	RotatesRefreshTokens bool     `json:"rotates_refresh_tokens"`
	Actions              []string `json:"actions"`
	// APIURLs are the base URLs of the provider's APIs the connectors call
	// (google: drive, docs; notion: notion; slack: slack): the sandbox's
	// when the provider is a sandbox one.
	APIURLs map[string]string `json:"api_urls,omitempty"`
	// ActionScopes are, per action, the scopes any one of which allows it
	// (the first is the one a connect link asks for).
	ActionScopes map[string][]string `json:"action_scopes,omitempty"`
}

// Allows reports whether granted scopes allow every one of actions (an
// unknown action is not allowed).
func (p Provider) Allows(granted []string, actions ...string) bool {
	for _, a := range actions {
		alts, ok := p.ActionScopes[a]
		if !ok {
			return false
		}
		if len(alts) == 0 {
			continue
		}
		found := false
		for _, s := range alts {
			for _, g := range granted {
				found = found || s == g
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Providers lists the configured providers and their actions.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	var out struct {
		Providers []Provider `json:"providers"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/providers", nil, &out)
	return out.Providers, err
}

func pathEscape(id CredentialID) string { return url.PathEscape(string(id)) }

// CreateAPIKey adds an API key of req.Role to the caller's tenant (an admin
// key's call); the key is in the answer this once. A user key needs
// req.UserID:
//
//	k, err := c.CreateAPIKey(ctx, authgate.NewAPIKeyRequest{Name: "alice-agent", Role: authgate.RoleUser, UserID: "alice"})
func (c *Client) CreateAPIKey(ctx context.Context, req NewAPIKeyRequest) (NewAPIKey, error) {
	var out NewAPIKey
	err := c.do(ctx, http.MethodPost, "/v1/api-keys", req, &out)
	return out, err
}

// Me says who the client's API key is: tenant, key id, role and, for a
// user key, its user. A wrong key is a ClassUnauthorized error.
func (c *Client) Me(ctx context.Context) (Caller, error) {
	var out Caller
	err := c.do(ctx, http.MethodGet, "/v1/me", nil, &out)
	return out, err
}

// APIKeys lists the tenant's API keys, revoked ones included.
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		APIKeys []APIKey `json:"api_keys"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/api-keys", nil, &out)
	return out.APIKeys, err
}

// RevokeAPIKey revokes one of the tenant's keys; every server stops
// accepting it within a second.
func (c *Client) RevokeAPIKey(ctx context.Context, id APIKeyID) error {
	return c.do(ctx, http.MethodDelete, "/v1/api-keys/"+url.PathEscape(string(id)), nil, nil)
}
