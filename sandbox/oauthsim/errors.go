package oauthsim

import "errors"

var (
	errAllAccounts = errors.New("revoke on the oidc provider needs an account")
	errUnsupported = errors.New("the oidc provider has nothing to un-share")
)
