package ui

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/authgate/authgate"
)

// chart is the inline SVG of a credential's last day: one bar per access
// token from issue (or refresh) to expiry, a mark per refresh, failure or
// reconnect. Coordinates are computed here so the template only draws.
type chart struct {
	Width, Height int
	Bars          []chartBar
	Marks         []chartMark
	Ticks         []chartTick
	Refreshes     int
	Failures      int
	Tokens        int
}

type chartBar struct {
	X, W, Y float64
	Label   string
}

type chartMark struct {
	X     float64
	Kind  string // "refresh", "issued", "failure", "reconnect"
	Label string
}

type chartTick struct {
	X      float64
	Label  string
	Anchor string // SVG text-anchor: the end ticks stay inside the chart
}

const (
	chartWidth  = 720
	chartHeight = 120
	chartLeft   = 8
	chartRight  = 8
)

// lifetimeChart lays out events of the window ending at now.
func lifetimeChart(events []authgate.Event, now time.Time, window time.Duration) chart {
	ch := chart{Width: chartWidth, Height: chartHeight}
	start := now.Add(-window)
	span := float64(chartWidth - chartLeft - chartRight)
	x := func(t time.Time) float64 {
		if t.Before(start) {
			t = start
		}
		if t.After(now) {
			t = now
		}
		return chartLeft + span*float64(t.Sub(start))/float64(window)
	}
	for i := 0; i <= 4; i++ {
		t := start.Add(window * time.Duration(i) / 4)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		ch.Ticks = append(ch.Ticks, chartTick{X: x(t), Label: t.UTC().Format("15:04"), Anchor: anchor})
	}
	lane := 0
	for _, e := range events {
		var d struct {
			ExpiresAt string `json:"expires_at"`
			AccessFP  string `json:"access_token_fp"`
		}
		_ = json.Unmarshal(e.Details, &d)
		switch e.Type {
		case authgate.EventTokenIssued, authgate.EventRefreshSucceeded:
			kind := "issued"
			if e.Type == authgate.EventRefreshSucceeded {
				kind = "refresh"
				ch.Refreshes++
			}
			ch.Tokens++
			end := now
			if exp, err := time.Parse(time.RFC3339, d.ExpiresAt); err == nil {
				end = exp
			}
			if end.Before(start) {
				continue
			}
			if !e.At.Before(start) {
				ch.Marks = append(ch.Marks, chartMark{X: x(e.At), Kind: kind, Label: fmt.Sprintf("%s at %s (token %s)", e.Type, e.At.UTC().Format("15:04:05"), d.AccessFP)})
			}
			ch.Bars = append(ch.Bars, chartBar{X: x(e.At), W: max(x(end)-x(e.At), 2), Y: float64(20 + 14*(lane%4)),
				Label: fmt.Sprintf("token %s: %s → %s", d.AccessFP, e.At.UTC().Format("15:04:05"), end.UTC().Format("15:04:05"))})
			lane++
		case authgate.EventRefreshFailed, authgate.EventRevokedDetected, authgate.EventReauthRequiredSet:
			if e.At.Before(start) {
				continue
			}
			ch.Failures++
			ch.Marks = append(ch.Marks, chartMark{X: x(e.At), Kind: "failure", Label: fmt.Sprintf("%s at %s", e.Type, e.At.UTC().Format("15:04:05"))})
		case authgate.EventReconnected:
			if e.At.Before(start) {
				continue
			}
			ch.Marks = append(ch.Marks, chartMark{X: x(e.At), Kind: "reconnect", Label: fmt.Sprintf("reconnected at %s", e.At.UTC().Format("15:04:05"))})
		}
	}
	return ch
}
