package authgate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Class is the stable kind of an error. It is the `type` member of every
// RFC 9457 problem the API returns, so clients branch on it.
//
// The first group is SPEC §3's classification of provider failures; each has
// one policy. The second group describes problems with the API call itself.
type Class string

const (
	ClassReauthRequired      Class = "reauth_required"
	ClassInsufficientScope   Class = "insufficient_scope"
	ClassAdminPolicy         Class = "admin_policy"
	ClassNotSharedOrNotFound Class = "not_shared_or_not_found"
	ClassRateLimited         Class = "rate_limited"
	ClassTransient           Class = "transient"
	ClassInvalidRequest      Class = "invalid_request"
	ClassClientMisconfigured Class = "client_misconfigured"

	ClassUnauthorized     Class = "unauthorized"       // no or unknown API key
	ClassNotFound         Class = "not_found"          // no such resource for this tenant
	ClassMethodNotAllowed Class = "method_not_allowed" // route exists, method does not
	ClassConflict         Class = "conflict"           // concurrent change; re-read and retry
	ClassPayloadTooLarge  Class = "payload_too_large"  // body over the route's cap
	ClassUnsupportedMedia Class = "unsupported_media_type"
	ClassForbidden        Class = "forbidden"   // not for this caller: a key whose role does not reach the route, another user's user_id, a connect link bound to another browser
	ClassUnavailable      Class = "unavailable" // not ready (readiness probe)
	// ClassWrongPrincipal: a run bound a credential of another tenant or
	// another user; nothing was created.
	ClassWrongPrincipal Class = "wrong_principal"
	// ClassBlockedOnAuth: the run waits for its user to reconnect a
	// credential (ReconnectURL); it resumes by itself afterwards.
	ClassBlockedOnAuth Class = "blocked_on_auth"
	ClassInternal      Class = "internal" // our bug; the detail never leaks the cause
)

// Status is the HTTP status the API answers with for this class.
func (c Class) Status() int {
	switch c {
	case ClassReauthRequired:
		return http.StatusConflict // the request is fine; the credential's state is not
	case ClassInsufficientScope, ClassAdminPolicy:
		return http.StatusForbidden
	case ClassNotSharedOrNotFound, ClassNotFound:
		return http.StatusNotFound
	case ClassRateLimited:
		return http.StatusTooManyRequests
	case ClassTransient:
		return http.StatusBadGateway
	case ClassInvalidRequest:
		return http.StatusBadRequest
	case ClassClientMisconfigured, ClassInternal:
		return http.StatusInternalServerError
	case ClassUnauthorized:
		return http.StatusUnauthorized
	case ClassMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ClassConflict:
		return http.StatusConflict
	case ClassPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case ClassUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case ClassForbidden, ClassWrongPrincipal:
		return http.StatusForbidden
	case ClassBlockedOnAuth:
		return http.StatusConflict
	case ClassUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is the only error that crosses the API boundary. Its JSON form is an
// RFC 9457 problem document; the SDK decodes problems back into *Error.
//
// Detail is written for the end user. The cause is kept for logs and errors.Is
// but is never marshalled: it may name internals.
type Error struct {
	Class  Class  `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Instance is the request path the problem occurred on.
	Instance string `json:"instance,omitempty"`

	CredentialID  CredentialID `json:"credential_id,omitempty"`
	MissingScopes []string     `json:"missing_scopes,omitempty"`
	// RetryAfter is how long to wait before trying again, when known.
	RetryAfter   Duration `json:"retry_after,omitempty"`
	ReconnectURL string   `json:"reconnect_url,omitempty"`
	// AgentHint is one sentence an LLM agent can relay to its user verbatim.
	AgentHint string `json:"agent_hint,omitempty"`
	// Errors lists field-level validation problems, when there are several.
	Errors []FieldError `json:"errors,omitempty"`

	cause error
}

// FieldError names one invalid field of a request body or query.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Errorf returns an *Error of class c whose end-user detail is formatted.
func Errorf(c Class, format string, args ...any) *Error {
	return &Error{Class: c, Title: c.title(), Status: c.Status(), Detail: fmt.Sprintf(format, args...)}
}

// WithCause returns e with a hidden cause attached (for logs and errors.Is).
func (e *Error) WithCause(err error) *Error {
	e.cause = err
	return e
}

func (e *Error) Error() string {
	s := string(e.Class)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the hidden cause.
func (e *Error) Unwrap() error { return e.cause }

// Is lets errors.Is(err, &Error{Class: c}) match on class alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Class == e.Class && t.Detail == "" && t.cause == nil
}

func (c Class) title() string {
	switch c {
	case ClassReauthRequired:
		return "Reconnect required"
	case ClassInsufficientScope:
		return "Missing permissions"
	case ClassAdminPolicy:
		return "Blocked by an administrator policy"
	case ClassNotSharedOrNotFound:
		return "Not shared or not found"
	case ClassRateLimited:
		return "Rate limited"
	case ClassTransient:
		return "Temporary provider failure"
	case ClassInvalidRequest:
		return "Invalid request"
	case ClassClientMisconfigured:
		return "OAuth client misconfigured"
	case ClassUnauthorized:
		return "Unauthorized"
	case ClassNotFound:
		return "Not found"
	case ClassMethodNotAllowed:
		return "Method not allowed"
	case ClassConflict:
		return "Conflict"
	case ClassPayloadTooLarge:
		return "Payload too large"
	case ClassUnsupportedMedia:
		return "Unsupported media type"
	case ClassForbidden:
		return "Forbidden"
	case ClassUnavailable:
		return "Unavailable"
	case ClassWrongPrincipal:
		return "Credential of another user or tenant"
	case ClassBlockedOnAuth:
		return "Run blocked on authorization"
	}
	return "Internal error"
}

// Duration marshals as a whole number of seconds, as Retry-After does.
type Duration time.Duration

// MarshalJSON writes the duration in seconds, rounded up.
func (d Duration) MarshalJSON() ([]byte, error) {
	secs := (time.Duration(d) + time.Second - 1) / time.Second
	return json.Marshal(int64(secs))
}

// UnmarshalJSON reads a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a number of seconds: %w", err)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
