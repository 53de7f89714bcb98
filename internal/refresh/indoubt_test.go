package refresh_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// TestNoSendAfterLosingTheLease: a flight whose request is held up before it
// leaves (a process frozen there) while its lease goes to another holder
// does not send when it resumes: the provider never sees that request. The
// flight starts over, waits for the lease and refreshes once it is free, so
// the provider sees exactly one refresh, and no refresh token twice.
func TestNoSendAfterLosingTheLease(t *testing.T) {
	t.Parallel()
	// The first token request is held before it is written, and the test
	// hears how the transport's attempt to write it ended.
	sent, proceed, wrote := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	f := startWith(t, func(c *serverConfig) {
		c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			first := false
			if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
				once.Do(func() { first = true; close(sent) })
			}
			if !first {
				return http.DefaultTransport.RoundTrip(r)
			}
			<-proceed
			resp, err := http.DefaultTransport.RoundTrip(r)
			wrote <- err
			return resp, err
		})
	})
	cred := f.oidcCred(t, "frozen@example.com", 3600)
	f.clock.Advance(time.Hour)
	res := make(chan tokenResult, 1)
	go func() { res <- f.token(t, http.DefaultClient, cred.ID, "") }()
	<-sent // the flight holds the lease; its request has not left
	ctx := context.Background()
	store := f.env.Server.Store
	row, err := store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: cred.TenantID, ID: cred.ID})
	if err != nil || row.LeaseHolder == "" {
		t.Fatalf("lease while the request is held: %q %v", row.LeaseHolder, err)
	}
	// Another process takes the lease over (as after the holder's lease
	// expired during a freeze): here by releasing and taking it.
	now := f.clock.Now()
	if err := store.CredentialLeaseRelease(ctx, storage.CredentialLeaseParams{ID: cred.ID, Holder: row.LeaseHolder}); err != nil {
		t.Fatal(err)
	}
	other := storage.CredentialLeaseParams{ID: cred.ID, Holder: "other-process/1", Now: now, Until: now.Add(2 * time.Second)}
	if ok, err := store.CredentialLeaseAcquire(ctx, other); !ok || err != nil {
		t.Fatalf("take the lease over: %v %v", ok, err)
	}
	close(proceed) // the frozen flight resumes
	if err := <-wrote; err == nil {
		t.Fatal("the request was sent by a flight that had lost its lease")
	}
	if c := f.sb().Counters()["oidc"]; c.Refreshes != 0 {
		t.Fatalf("the provider saw %d refreshes from a flight that had lost its lease", c.Refreshes)
	}
	// The flight starts over and waits for the other holder.
	if err := store.CredentialLeaseRelease(ctx, other); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.status != 200 {
		t.Fatalf("after the lease came free: %d %v", r.status, r.body)
	}
	c := f.assertHealthy(t, cred.ID)
	if c.Refreshes != 1 {
		t.Fatalf("%d provider refreshes; want 1", c.Refreshes)
	}
	got, _ := f.env.Client.Credential(ctx, cred.ID)
	if got.Status != authgate.CredentialStatusActive || got.RefreshTokenFingerprint == cred.RefreshTokenFingerprint {
		t.Fatalf("after: %+v", got)
	}
	if !strings.Contains(f.env.Logs.String(), "refresh not sent") {
		t.Fatalf("no log line says the refresh was not sent:\n%s", f.env.Logs.String())
	}
}
