package sandbox

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Limits on what the admin API stores: it is a test fixture, and must not be
// a way to fill a machine's memory.
const (
	maxClients      = 100 // per provider, the default client included
	maxRedirectURIs = 10
	maxFaults       = 100
)

type errTooMany struct{ msg string }

func (e errTooMany) Error() string { return e.msg }

func statusOf(err error) int {
	var tm errTooMany
	if errors.As(err, &tm) {
		return http.StatusInsufficientStorage
	}
	return http.StatusBadRequest
}

// guardAdmin keeps web pages away from the admin API, which takes no
// credentials and hands out client secrets:
//   - the Host must be a loopback name (or one of Options.AdminHosts), so a
//     rebound DNS name pointing at 127.0.0.1 is refused;
//   - a browser's Origin, when sent, must be the API's own origin, and a
//     cross-site Sec-Fetch-Site is refused;
//   - bodies must be application/json, which no HTML form can send and
//     which a cross-origin fetch can send only after a CORS preflight this
//     API never answers.
func (s *Sandbox) guardAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if !isLoopbackHost(host) && !slices.ContainsFunc(s.admin, func(a string) bool { return strings.EqualFold(a, host) }) {
			problem(w, http.StatusForbidden, "the sandbox admin API answers only on loopback host names")
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				problem(w, http.StatusForbidden, "the sandbox admin API refuses requests from other origins")
				return
			}
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			problem(w, http.StatusForbidden, "the sandbox admin API refuses cross-site requests")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				problem(w, http.StatusUnsupportedMediaType, "send the body as JSON with 'Content-Type: application/json'")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
