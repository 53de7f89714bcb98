package ui

import (
	"errors"
	"net/url"
)

// parseOrigin parses an Origin header: scheme://host[:port] and nothing
// else ("null", paths, user info and queries are refused).
func parseOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("not an origin")
	}
	return u, nil
}
