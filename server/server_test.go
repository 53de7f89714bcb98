package server

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://app:s3cret@db.internal:5432/authgate":                 "postgres://app:xxxxx@db.internal:5432/authgate",
		"postgres://db.internal/authgate?password=s3cret&sslmode=require": "postgres://db.internal/authgate?password=xxxxx&sslmode=require",
		"sqlite:authgate.db": "sqlite:authgate.db",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q; want %q", in, got, want)
		}
		if strings.Contains(redactURL(in), "s3cret") {
			t.Errorf("redactURL(%q) leaks the password", in)
		}
	}
}
