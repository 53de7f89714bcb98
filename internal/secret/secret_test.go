package secret_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/secret"
)

const plain = "ya29.a0AfH6SMBsupersecretvalue"

func TestSecretNeverPrintsPlaintext(t *testing.T) {
	t.Parallel()
	s := secret.New(plain)
	fp := secret.Fingerprint(plain)
	if len(fp) != 10 {
		t.Fatalf("fingerprint %q; want 10 hex digits", fp)
	}
	js, _ := json.Marshal(map[string]any{"tok": s})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "tok", s, "group", slog.GroupValue(slog.Any("inner", s)))
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s),
		"%q": fmt.Sprintf("%q", s), "%x": fmt.Sprintf("%x", s), "struct %+v": fmt.Sprintf("%+v", struct{ T secret.Secret }{s}),
		"String": s.String(), "json": string(js), "slog": buf.String(),
	}
	for name, out := range outs {
		if strings.Contains(out, "supersecret") {
			t.Errorf("%s leaks the plaintext: %s", name, out)
		}
		if !strings.Contains(out, fp) {
			t.Errorf("%s = %q; want the fingerprint %s", name, out, fp)
		}
	}
	if s.Reveal() != plain {
		t.Fatal("Reveal lost the plaintext")
	}
	if secret.Fingerprint("") != "" || !secret.New("").IsZero() {
		t.Fatal("empty secret must have an empty fingerprint")
	}
}

func TestRedactingHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(secret.NewRedactingHandler(slog.NewJSONHandler(&buf, nil)))
	log = log.With("api_key", "ag_leaky", "request_id", "req_1")
	log.Info("oauth", "refresh_token", plain, "Authorization", "Bearer "+plain, "code", "4/0Aabcdsecretcode",
		"client_secret", "GOCSPX-secret", "password", "hunter2", "code_verifier", "verifierverifier",
		slog.Group("resp", slog.String("access_token", plain), slog.Int("status_code", 400)),
		"refresh_token_fp", "0123456789", "status_code", 200, "user_id", "alice")
	out := buf.String()
	for _, leak := range []string{"supersecret", "ag_leaky", "secretcode", "GOCSPX", "hunter2", "verifierverifier"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q: %s", leak, out)
		}
	}
	for _, keep := range []string{`"refresh_token_fp":"0123456789"`, `"status_code":200`, `"user_id":"alice"`, `"request_id":"req_1"`, `"status_code":400`,
		`"refresh_token":"REDACTED(fp=` + secret.Fingerprint(plain) + `)"`} {
		if !strings.Contains(out, keep) {
			t.Errorf("log lost %s: %s", keep, out)
		}
	}
}

func TestSensitiveKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"access_token": true, "refreshToken": true, "client_secret": true, "Authorization": true, "code": true,
		"auth_code": true, "code_verifier": true, "api_key": true, "Set-Cookie": true, "password": true,
		"access_token_fp": false, "token_fingerprint": false, "status_code": false, "error_code": false,
		"user_id": false, "provider": false, "expires_at": false,
	} {
		if got := secret.SensitiveKey(key); got != want {
			t.Errorf("SensitiveKey(%q) = %v; want %v", key, got, want)
		}
	}
}

func TestFingerprintAllocatesOnlyItsResult(t *testing.T) {
	tok := strings.Repeat("ya29.a0AfH6SMB", 13) // a Google-sized token
	if got, want := secret.Fingerprint(tok), fmt.Sprintf("%x", sha256.Sum256([]byte(tok)))[:10]; got != want {
		t.Fatalf("Fingerprint = %s; want %s", got, want)
	}
	long := strings.Repeat("x", 2000) // beyond the stack buffer
	if got, want := secret.Fingerprint(long), fmt.Sprintf("%x", sha256.Sum256([]byte(long)))[:10]; got != want {
		t.Fatalf("secret.Fingerprint(long) = %s; want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = secret.Fingerprint(tok) }); n > 1 {
		t.Errorf("Fingerprint allocates %v times; want 1 (its result)", n)
	}
}
