package storage

import (
	"time"

	"github.com/authgate/authgate"
)

// CredentialTouchParams is the pre-89ad9a5 touch, kept only so that the
// backends and the refresher build on branch issue-8 while main rewrites them
// (see bridge_issue8.go in each backend). Delete this file when merging main.
type CredentialTouchParams struct {
	ID     authgate.CredentialID
	At     time.Time
	Before time.Time
}
