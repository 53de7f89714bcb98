package netpolicy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"time"

	"github.com/authgate/authgate"
)

// lookupTimeout bounds the DNS lookup of a URL being registered.
const lookupTimeout = 5 * time.Second

// CheckEndpoint is CheckURL for a tenant registering u, answered as the
// *authgate.Error the API and CLI show: invalid_request naming the setting
// that would admit a refused address (with a field error on "url"), or
// transient when the name could not be looked up right now.
func (p Policy) CheckEndpoint(ctx context.Context, u *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	err := p.CheckURL(ctx, u)
	if err == nil {
		return nil
	}
	var (
		re  *RefusedError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &re), errors.Is(err, ErrNumericHost):
		return invalidURL("webhook url host " + err.Error())
	case errors.As(err, &dns) && dns.IsNotFound:
		return invalidURL("webhook url host " + u.Hostname() + " does not resolve").WithCause(err)
	case errors.As(err, &dns):
		return authgate.Errorf(authgate.ClassTransient, "could not look up webhook url host %s; try again", u.Hostname()).WithCause(err)
	}
	return invalidURL("webhook url host " + u.Hostname() + ": " + err.Error())
}

func invalidURL(msg string) *authgate.Error {
	e := authgate.Errorf(authgate.ClassInvalidRequest, "%s", msg)
	e.Errors = []authgate.FieldError{{Field: "url", Message: msg}}
	return e
}
