package oauthcore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientCredentials reads a token request's client credentials: HTTP Basic
// (client_secret_basic, RFC 6749 §2.3.1, with form-urlencoded id and secret)
// or form fields (client_secret_post). basic reports which was used.
func ClientCredentials(r *http.Request) (id, secret string, basic bool) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if err == nil {
			u, p, ok := strings.Cut(string(raw), ":")
			if ok {
				if du, err := url.QueryUnescape(u); err == nil {
					u = du
				}
				if dp, err := url.QueryUnescape(p); err == nil {
					p = dp
				}
				return u, p, true
			}
		}
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), false
}

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// WriteJSON writes v as JSON with the given indent ("" for compact).
func WriteJSON(w http.ResponseWriter, status int, v any, indent string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	_ = enc.Encode(v)
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// SetDate sets the Date header from the provider's (possibly offset) clock.
func SetDate(w http.ResponseWriter, t time.Time) {
	w.Header().Set("Date", t.UTC().Format(http.TimeFormat))
}

// Sleep waits d or until ctx ends (injected latency).
func Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// BaseURL is the scheme and host the request came in on, so discovery
// documents name the address the client actually used.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// RedirectWith sends the user agent to base with extra query parameters.
func RedirectWith(w http.ResponseWriter, r *http.Request, base string, params url.Values) {
	u, err := url.Parse(base)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
