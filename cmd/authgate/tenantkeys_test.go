package main

import (
	"context"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
)

// TestTenantKeysRoles: the operator CLI makes a key of each role, lists
// the role and user, refuses a user key without a user, and the server
// honours what it made.
func TestTenantKeysRoles(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	out, err := run(t, append(db, "tenants", "keys", "create", "default", "--name", "alice-agent", "--role", "user", "--user", "alice")...)
	if err != nil || !strings.Contains(out, "role user, user alice") {
		t.Fatalf("create user key: %v\n%s", err, out)
	}
	var key string
	for _, line := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(line, "api key: "); ok {
			key = k
		}
	}
	if _, err := run(t, append(db, "tenants", "keys", "create", "default", "--role", "service")...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, append(db, "tenants", "keys", "create", "default", "--role", "user")...); err == nil || !strings.Contains(oneLine(err), "user_id") {
		t.Fatalf("a user key without --user: %v", err)
	}
	out, err = run(t, append(db, "tenants", "keys", "list", "default")...)
	if err != nil || !strings.Contains(out, "ROLE") || !strings.Contains(out, "alice-agent  user") || !strings.Contains(out, "service") {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	me, err := authgate.NewClient(env.URL, key).Me(context.Background())
	if err != nil || me.Role != authgate.RoleUser || me.UserID != "alice" {
		t.Fatalf("the server sees the CLI's key as %+v, %v", me, err)
	}
}
