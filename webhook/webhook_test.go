package webhook_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/webhook"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	secret, body := []byte("whsec_test"), []byte(`{"type":"run.resumed"}`)
	at := time.Unix(1767225600, 0)
	h := webhook.Sign(secret, at, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", secret, h, body, at.Add(time.Minute), nil},
		{"rolled secret: any v1 matches", secret, webhook.Sign([]byte("old"), at, body) + "," + h[len("t=1767225600,"):], body, at, nil},
		{"other secret", []byte("other"), h, body, at, webhook.ErrBadSignature},
		{"body changed", secret, h, []byte(`{"type":"run.finished"}`), at, webhook.ErrBadSignature},
		{"replayed later", secret, h, body, at.Add(time.Hour), webhook.ErrTooOld},
		{"no header", secret, "", body, at, webhook.ErrNoSignature},
		{"garbage", secret, "t=x,v1=zz", body, at, webhook.ErrNoSignature},
	}
	for _, tt := range tests {
		if err := webhook.Verify(tt.secret, tt.header, tt.body, tt.now, 0); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		}
	}
}

func ExampleVerify() {
	secret := []byte("whsec_…") // shown once when the endpoint was created
	body := []byte(`{"type":"run.resumed"}`)
	header := webhook.Sign(secret, time.Now(), body) // what authgate sends
	// In your handler: webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0)
	if err := webhook.Verify(secret, header, body, time.Now(), 0); err != nil {
		panic(err)
	}
	// Output:
}
