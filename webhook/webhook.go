// Package webhook signs and verifies authgate's webhook bodies: authgate's
// sender signs each delivery, and a receiver (yours) verifies it before
// trusting it.
//
// A delivery is a POST whose body is a JSON event. Its SignatureHeader is
//
//	Authgate-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// where t is the Unix time of the signature and v1 is the hex HMAC-SHA256,
// keyed with the endpoint's secret (shown once, when the endpoint is
// created), of the string "<t>.<body>". Verify checks the signature in
// constant time and refuses a timestamp outside a tolerance (replays).
// Deliveries are retried: the DeliveryHeader id is the same on every
// attempt, so a receiver drops the ones it has seen.
//
// This package must never log or return a secret, and depends on the
// standard library only.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "Authgate-Signature"
	// DeliveryHeader is the delivery's id, the same on every retry.
	DeliveryHeader = "Authgate-Delivery"
	// EventHeader names the event type (run.blocked_on_auth, …).
	EventHeader = "Authgate-Event"
)

// DefaultTolerance is how far a signature's time may be from now.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns.
var (
	ErrNoSignature  = errors.New("webhook: no valid signature header")
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrTooOld       = errors.New("webhook: signature timestamp outside the tolerance")
)

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (the SignatureHeader value) against body and secret,
// and that its time is within tolerance of now (DefaultTolerance if zero).
// Any v1 entry may match, so a secret can be rolled by signing with both.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w (signed %s ago)", ErrTooOld, d.Round(time.Second))
	}
	return nil
}
