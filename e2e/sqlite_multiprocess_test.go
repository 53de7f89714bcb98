package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestTwoProcessesShareSQLite runs two `authgate serve` processes on one
// SQLite file and 50 concurrent writers, 25 against each, doing 200 writes
// each (creates and updates of 20 credentials per writer). Every write must
// succeed — no "database is locked" — and the final state must hold every
// write exactly once.
func TestTwoProcessesShareSQLite(t *testing.T) {
	t.Parallel()
	const writers, writes, slots = 50, 200, 20
	dir := t.TempDir()
	a := serve(t, dir)
	b := serve(t, dir)
	if a.AdminKey == "" || b.AdminKey != "" {
		t.Fatalf("admin keys: first %q, second %q; want exactly the first to create one", a.AdminKey, b.AdminKey)
	}
	key := a.AdminKey
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	var wg sync.WaitGroup
	errs := make(chan string, writers)
	var mu sync.Mutex
	created := 0
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := []*proc{a, b}[w%2]
			for i := range writes {
				body := fmt.Sprintf(`{"user_id":"w%02d-u%02d","provider":"google","subject":"s","access_token":"tok-%d-%d","scopes":["openid"]}`, w, i%slots, w, i)
				req, _ := http.NewRequest("POST", target.URL+"/v1/credentials/import", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					errs <- fmt.Sprintf("writer %d write %d: %v", w, i, err)
					return
				}
				var out struct {
					Detail string `json:"detail"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				switch resp.StatusCode {
				case 201:
					mu.Lock()
					created++
					mu.Unlock()
				case 200:
				default:
					errs <- fmt.Sprintf("writer %d write %d: status %d %s", w, i, resp.StatusCode, out.Detail)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if created != writers*slots {
		t.Errorf("%d creates; want %d", created, writers*slots)
	}

	// Read everything back through the other process: each credential holds
	// its last write and counts exactly writes/slots versions.
	var creds []struct {
		ID      string `json:"id"`
		UserID  string `json:"user_id"`
		Version int    `json:"version"`
	}
	after := ""
	for {
		url := b.URL + "/v1/credentials?limit=1000"
		if after != "" {
			url += "&after=" + after
		}
		r := call(t, hc, "GET", url, key, "")
		var page struct {
			Credentials []struct {
				ID      string `json:"id"`
				UserID  string `json:"user_id"`
				Version int    `json:"version"`
			} `json:"credentials"`
			NextAfter string `json:"next_after"`
		}
		if err := json.Unmarshal([]byte(r.body), &page); err != nil || r.status != 200 {
			t.Fatalf("list %d %s", r.status, r.body)
		}
		creds = append(creds, page.Credentials...)
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if len(creds) != writers*slots {
		t.Fatalf("%d credentials stored; want %d", len(creds), writers*slots)
	}
	for _, c := range creds {
		if c.Version != writes/slots {
			t.Fatalf("credential %s (%s) at version %d; want %d (one per write)", c.ID, c.UserID, c.Version, writes/slots)
		}
	}
	ev := call(t, hc, "GET", a.URL+"/v1/credentials/"+creds[0].ID+"/events?limit=1000", key, "")
	if n := strings.Count(ev.body, `"type":"token_issued"`); n != writes/slots {
		t.Fatalf("credential %s has %d token_issued events; want %d", creds[0].ID, n, writes/slots)
	}
	a.stop(t)
	b.stop(t)
	for name, p := range map[string]*proc{"first": a, "second": b} {
		logs := p.stderr.String()
		if strings.Contains(logs, "database is locked") || strings.Contains(logs, "SQLITE_BUSY") || strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("%s process logged errors:\n%s", name, grepLines(logs, "ERROR", "locked", "BUSY"))
		}
	}
}

func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	if len(out) > 20 {
		out = out[:20]
	}
	return strings.Join(out, "\n")
}
