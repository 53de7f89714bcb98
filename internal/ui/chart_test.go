package ui

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/authgate/authgate"
)

// TestLifetimeChart: a token's bar spans issue to expiry inside the window,
// refreshes and failures are counted and marked, and events older than the
// window leave no mark.
func TestLifetimeChart(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ev := func(typ authgate.EventType, at time.Time, expires time.Time) authgate.Event {
		d, _ := json.Marshal(map[string]string{"expires_at": expires.Format(time.RFC3339), "access_token_fp": "abc"})
		return authgate.Event{Type: typ, At: at, Details: d}
	}
	events := []authgate.Event{
		ev(authgate.EventTokenIssued, now.Add(-30*time.Hour), now.Add(-29*time.Hour)), // wholly before the window
		ev(authgate.EventTokenIssued, now.Add(-12*time.Hour), now.Add(-11*time.Hour)),
		ev(authgate.EventRefreshSucceeded, now.Add(-6*time.Hour), now.Add(-5*time.Hour)),
		{Type: authgate.EventRefreshFailed, At: now.Add(-time.Hour)},
	}
	ch := lifetimeChart(events, now, 24*time.Hour)
	if ch.Tokens != 3 || ch.Refreshes != 1 || ch.Failures != 1 {
		t.Fatalf("tokens %d, refreshes %d, failures %d; want 3, 1, 1", ch.Tokens, ch.Refreshes, ch.Failures)
	}
	if len(ch.Bars) != 2 || len(ch.Marks) != 3 {
		t.Fatalf("%d bars and %d marks; want 2 and 3 (the old token draws nothing)", len(ch.Bars), len(ch.Marks))
	}
	span := float64(chartWidth - chartLeft - chartRight)
	if b := ch.Bars[0]; math.Abs(b.X-(chartLeft+span/2)) > 1e-9 || math.Abs(b.W-span/24) > 1e-9 {
		t.Fatalf("the noon-minus-12h token's bar is at %.1f wide %.1f; want %.1f wide %.1f", b.X, b.W, chartLeft+span/2, span/24)
	}
	if ch.Ticks[0].Anchor != "start" || ch.Ticks[4].Anchor != "end" || ch.Ticks[4].X != chartLeft+span {
		t.Fatalf("ticks %+v", ch.Ticks)
	}
}
