package secret

import (
	"context"
	"log/slog"
	"strings"
)

// RedactingHandler wraps a slog.Handler and replaces the value of every
// attribute whose key names a secret (token, secret, password, authorization,
// cookie, verifier, api key, or an OAuth code) with "REDACTED(fp=…)", so a
// careless `slog.String("refresh_token", tok)` still logs only a fingerprint.
// Keys that end in "_fp" or "fingerprint" pass: they are fingerprints already.
type RedactingHandler struct{ next slog.Handler }

// NewRedactingHandler wraps next.
func NewRedactingHandler(next slog.Handler) *RedactingHandler { return &RedactingHandler{next: next} }

var _ slog.Handler = (*RedactingHandler)(nil)

// Enabled defers to the wrapped handler.
func (h *RedactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle redacts the record's attributes, then passes it on.
func (h *RedactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts the attributes before the wrapped handler keeps them.
func (h *RedactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return &RedactingHandler{next: h.next.WithAttrs(red)}
}

// WithGroup defers to the wrapped handler.
func (h *RedactingHandler) WithGroup(name string) slog.Handler {
	return &RedactingHandler{next: h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		red := make([]slog.Attr, len(attrs))
		for i, g := range attrs {
			red[i] = redactAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	}
	if !SensitiveKey(a.Key) {
		return slog.Attr{Key: a.Key, Value: v}
	}
	s := v.String()
	if s == "" {
		return slog.String(a.Key, "")
	}
	return slog.String(a.Key, "REDACTED(fp="+Fingerprint(s)+")")
}

// notSecretCodes are keys ending in "code" that carry no secret.
var notSecretCodes = []string{"status_code", "statuscode", "error_code", "errorcode", "exit_code", "http_code", "response_code"}

// SensitiveKey reports whether an attribute or field named key holds a secret.
func SensitiveKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_fp") || strings.HasSuffix(k, "fingerprint") {
		return false
	}
	for _, w := range []string{"token", "secret", "password", "passwd", "authorization", "cookie", "verifier", "api_key", "apikey"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	if strings.HasSuffix(k, "code") {
		for _, ok := range notSecretCodes {
			if strings.HasSuffix(k, ok) {
				return false
			}
		}
		return true
	}
	return false
}
