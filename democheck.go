package authgate

import "time"

// DemoCheckItem is one line of `authgate democheck`'s checklist.
type DemoCheckItem struct {
	// Provider is "google" or "notion".
	Provider string `json:"provider"`
	// Name is one of disconnect, connect, account, scopes, doc, refresh,
	// concurrency, notion_read, notion_write.
	Name     string      `json:"name"`
	Status   CheckStatus `json:"status"` // pass or fail
	Evidence string      `json:"evidence"`
	Fix      string      `json:"fix,omitempty"`
}

// DemoCheck is `authgate democheck --json`: the pre-demo fresh sign-in
// checklist run through a server. It carries ids and fingerprints, never a
// token.
type DemoCheck struct {
	Server    string          `json:"server"`
	Sandbox   bool            `json:"sandbox"`
	UserID    string          `json:"user_id"`
	Providers []string        `json:"providers"`
	Items     []DemoCheckItem `json:"items"`
	Passed    int             `json:"passed"`
	Failed    int             `json:"failed"`
	// OK is true when every item passed.
	OK        bool      `json:"ok"`
	CheckedAt time.Time `json:"checked_at"`
}
