package diagnose

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/authgate/authgate/sandbox"
)

// SandboxSignIn plays the user on a sandbox server: a browser of its own
// (cookies kept, as the link is bound to the browser that opens it) opens
// the connect link, signs in as account on the sandbox's consent page and
// follows the redirect back to authgate's callback. It sets no consent
// preset, so nothing is left behind that would make other connects on the
// server complete as account. A provider error page (an admin policy, say)
// never reaches authgate: it is returned as the error.
func SandboxSignIn(ctx context.Context, link, account string) error {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := get(link)
	if err != nil {
		return err
	}
	auth, err := resp.Location()
	if err != nil {
		return fmt.Errorf("the connect link answered %d, not a redirect to the provider", resp.StatusCode)
	}
	back, err := sandbox.CompleteConsent(ctx, browser, auth.String(), sandbox.Choice{Account: account})
	if err != nil {
		return err
	}
	_, err = get(back.String())
	return err
}
