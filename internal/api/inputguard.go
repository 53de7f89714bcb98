package api

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/authgate/authgate"
)

// inputGuard refuses, before any route runs, a path or query string that
// decodes to invalid UTF-8 or holds a NUL or other control character: such
// input can only be an attack or a bug, SQLite would store it and
// PostgreSQL would fail on it with a 500. Every backend now answers 400.
func inputGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if field, ok := cleanInput(r); !ok {
			writeProblem(w, r, authgate.Errorf(authgate.ClassInvalidRequest, "%s contains invalid UTF-8 or a control character", field))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cleanInput(r *http.Request) (string, bool) {
	if !cleanText(r.URL.Path) {
		return "the path", false
	}
	if r.URL.RawQuery == "" {
		return "", true
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "the query string", false
	}
	for k, vs := range q {
		if !cleanText(k) {
			return "a query parameter name", false
		}
		for _, v := range vs {
			if !cleanText(v) {
				return "query parameter " + truncateText(k, 40), false
			}
		}
	}
	return "", true
}

func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
