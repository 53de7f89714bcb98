package storage

import (
	"time"

	"github.com/authgate/authgate"
)

// CredentialPromise is how far the current access token of a credential has
// been promised to callers, across every process: no caller was told the
// token stays valid past Horizon. On a provider that revokes the previous
// access token when it rotates, a refresh must not be sent before Horizon.
//
// The horizon belongs to one token (AccessFP, read at credential version
// Version): a newer token starts with nothing promised. Sealed means a
// refresh is planned at Horizon, so the horizon no longer grows.
type CredentialPromise struct {
	AccessFP string
	Version  int64
	Horizon  time.Time
	Sealed   bool
}

// CredentialPromiseParams names the token a caller holds (its fingerprint and
// the credential version it read it at) and the horizon it needs.
//
// Extend raises the horizon to Until unless it is sealed; Seal raises it to
// Until (normally "now") and seals it. Both replace a horizon recorded for an
// older version's different token, leave a newer version's horizon alone,
// and return what is stored afterwards: a caller whose token is not the
// returned AccessFP holds a stale copy.
type CredentialPromiseParams struct {
	ID       authgate.CredentialID
	AccessFP string
	Version  int64
	Until    time.Time
}
