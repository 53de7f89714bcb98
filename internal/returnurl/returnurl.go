// Package returnurl decides where a connect flow may send the browser back
// to. Rules and candidates are parsed, never compared as strings: a rule
// allows one scheme, host and port, and a path prefix that ends on a path
// segment boundary, so https://app.example.com never admits
// https://app.example.com.evil.example, https://app.example.com@evil.example
// or https://app.example.comevil.example.
//
// It must never allow a URL with user information, a fragment, or a scheme
// other than http and https.
package returnurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Rule is one allowed return location.
type Rule struct {
	scheme, host, port, path string
}

// ParseRule parses an allow-list entry: an absolute http(s) URL with a host,
// optionally a path, and no user information, query or fragment.
func ParseRule(raw string) (Rule, error) {
	u, err := parse(raw)
	if err != nil {
		return Rule{}, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return Rule{}, fmt.Errorf("return URL rule %q: a rule has no query", raw)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return Rule{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: port(u), path: p}, nil
}

// ParseRules parses every entry, naming the first bad one.
func ParseRules(raws []string) ([]Rule, error) {
	out := make([]Rule, 0, len(raws))
	for _, r := range raws {
		rule, err := ParseRule(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rule)
	}
	return out, nil
}

func parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("return URL is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("return URL %q: scheme must be http or https", clip(raw))
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("return URL %q: must be absolute with a host", clip(raw))
	case u.User != nil:
		return nil, fmt.Errorf("return URL %q: must not contain user information", clip(raw))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("return URL %q: must not contain a fragment", clip(raw))
	case strings.ContainsAny(raw, "\\\x00\r\n\t "):
		return nil, fmt.Errorf("return URL %q: contains characters a URL may not", clip(raw))
	}
	return u, nil
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Allows reports whether u is inside the rule: same scheme, host and port,
// and a path equal to the rule's or below it at a segment boundary.
func (r Rule) Allows(u *url.URL) bool {
	if u.Scheme != r.scheme || strings.ToLower(u.Hostname()) != r.host || port(u) != r.port {
		return false
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if dotSegments(p) {
		// Browsers resolve "..", "%2e%2e", ".%2E" (and "." likewise) before
		// they request: the URL would land outside the rule's path.
		return false
	}
	if r.path == "/" || p == r.path {
		return true
	}
	prefix := strings.TrimSuffix(r.path, "/") + "/"
	return strings.HasPrefix(p, prefix)
}

// dotSegments reports whether an escaped path has a "." or ".." segment,
// spelled with dots or percent-encoded dots (WHATWG URL treats "%2e" as ".")
// or hidden behind an encoded slash or backslash.
func dotSegments(escaped string) bool {
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "\\") {
		return true
	}
	for _, seg := range strings.Split(lower, "/") {
		seg = strings.ReplaceAll(seg, "%2e", ".")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// Check parses a candidate return URL and reports whether loopback (always
// allowed: a developer's own machine) or one of rules admits it.
func Check(raw string, rules []Rule) error {
	u, err := parse(raw)
	if err != nil {
		return err
	}
	if IsLoopback(u.Hostname()) {
		return nil
	}
	for _, r := range rules {
		if r.Allows(u) {
			return nil
		}
	}
	return fmt.Errorf("return_url %q is not on the allow-list", clip(raw))
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
