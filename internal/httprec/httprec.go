// Package httprec records provider responses for the broker and the
// refresher: status, headers and a capped copy of the body of the last
// response a client saw, which golang.org/x/oauth2 does not expose on every
// path (Slack's HTTP-200 errors, the Date header for clock skew, request ids).
// It must never log what it records; callers decide what to keep.
package httprec

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptrace"
	"time"
)

// Recorder is an http.RoundTripper that keeps the last response. Use one per
// provider call; it is not safe for concurrent requests.
type Recorder struct {
	Base   http.RoundTripper
	Status int
	Header http.Header
	Body   []byte
	// Sent is set once the request was written to the connection: after a
	// transport error it says whether the provider may have received (and
	// acted on) the request.
	Sent bool
}

// MaxBody caps what is kept of a response body.
const MaxBody = 1 << 20

// RoundTrip forwards the request and keeps a copy of the response.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := r.Base
	if base == nil {
		base = http.DefaultTransport
	}
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { r.Sent = true }}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.Status, r.Header, r.Body = resp.StatusCode, resp.Header.Clone(), b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

var requestIDHeaders = []string{"X-Request-Id", "X-Notion-Request-Id", "X-Slack-Req-Id", "X-Goog-Request-Id", "Request-Id"}

// RequestID returns the provider's request id from the recorded headers.
func (r *Recorder) RequestID() string {
	for _, k := range requestIDHeaders {
		if v := r.Header.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// ClockSkew is the provider's Date header minus received (our clock when
// the response arrived), to the second. It is unknown (false) without a
// parseable Date, and for a response served from a cache (an Age header),
// whose Date is old by design.
func (r *Recorder) ClockSkew(received time.Time) (time.Duration, bool) {
	if r.Header == nil || r.Header.Get("Age") != "" {
		return 0, false
	}
	d, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return 0, false
	}
	return d.Sub(received).Round(time.Second), true
}
