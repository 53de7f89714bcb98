package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Choice is what a user does on a consent page.
type Choice struct {
	Account string
	// Scopes to leave ticked; nil keeps every scope the page offers.
	Scopes []string
	// Workspace (Notion, Slack); "" keeps the page's default.
	Workspace string
	// Resources to share (Notion's page picker); nil keeps all.
	Resources []string
	Deny      bool
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	pendingRe  = regexp.MustCompile(`name="pending" value="([^"]+)"`)
	checkbox   = regexp.MustCompile(`<input type="checkbox" name="(scope|resource)" value="([^"]+)"`)
	errorRe    = regexp.MustCompile(`<p id="error">([^<]+)</p>`)
)

// CompleteConsent plays the user: it opens authURL, fills in and submits
// the consent page, and returns the redirect back to the client (carrying
// code and state, or error) without following it. When a consent preset is
// set, the provider redirects at once and that redirect is returned.
func CompleteConsent(ctx context.Context, hc *http.Client, authURL string, c Choice) (*url.URL, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	noFollow := *hc
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		return nil, err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if loc, ok := redirected(resp); ok {
		return loc, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, pageError(resp.StatusCode, page)
	}
	action := formAction.FindSubmatch(page)
	pending := pendingRe.FindSubmatch(page)
	if action == nil || pending == nil {
		return nil, fmt.Errorf("consent page has no form")
	}
	form := url.Values{"pending": {string(pending[1])}, "account": {c.Account}, "decision": {"approve"}}
	if c.Deny {
		form.Set("decision", "deny")
	}
	if c.Workspace != "" {
		form.Set("workspace", c.Workspace)
	}
	for _, m := range checkbox.FindAllSubmatch(page, -1) {
		name, value := string(m[1]), string(m[2])
		keep := (name == "scope" && (c.Scopes == nil || contains(c.Scopes, value))) || (name == "resource" && (c.Resources == nil || contains(c.Resources, value)))
		if keep {
			form.Add(name, value)
		}
	}
	base, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	target, err := base.Parse(string(action[1]))
	if err != nil {
		return nil, err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noFollow.Do(req)
	if err != nil {
		return nil, err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if loc, ok := redirected(resp); ok {
		return loc, nil
	}
	return nil, pageError(resp.StatusCode, page)
}

func redirected(resp *http.Response) (*url.URL, bool) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, false
	}
	loc, err := resp.Location()
	return loc, err == nil
}

// ConsentError is a provider-hosted error page (the app never hears of it).
type ConsentError struct {
	Status int
	Page   string // e.g. "Error 400: admin_policy_enforced"
}

func (e *ConsentError) Error() string {
	return fmt.Sprintf("provider error page (HTTP %d): %s", e.Status, e.Page)
}

func pageError(status int, page []byte) error {
	if m := errorRe.FindSubmatch(page); m != nil {
		return &ConsentError{Status: status, Page: string(m[1])}
	}
	return &ConsentError{Status: status, Page: strings.TrimSpace(string(page))}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
