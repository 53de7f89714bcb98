package ui

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate"
)

var funcs = template.FuncMap{
	"when":     when,
	"whenPtr":  func(t *time.Time) string { return whenPtr(t) },
	"rfc3339":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"relative": relative,
	"join":     strings.Join,
	"has":      func(list []string, s string) bool { return slices.Contains(list, s) },
	"class":    func(c authgate.Class) string { return classTitle(c) },
	"words":    func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"deref":    func(t *time.Time) time.Time { return *t },
	"derefF":   func(f *float64) float64 { return *f },
	"short":    func(s string) string { return strings.TrimPrefix(s, "https://www.googleapis.com/auth/") },
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func whenPtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return when(*t)
}

// relative says how far t is from now in words ("in 54 min", "3 h ago").
func relative(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}
