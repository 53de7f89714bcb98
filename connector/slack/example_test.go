package slack_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/slack"
	"github.com/authgate/authgate/sandbox"
)

// Slack answers failures with HTTP 200 and "ok": false; the connector turns
// them into *authgate.ProviderError. Here against the sandbox with a token
// that was never issued; with authgate, the token source is
// client.TokenSource(ctx, credentialID, authgate.TokenRequest{}).
func Example() {
	hs := httptest.NewServer(sandbox.New(sandbox.Options{Seed: 1}).Handler())
	defer hs.Close()
	ctx := context.Background()
	s := slack.New(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "xoxb-not-issued"}), slack.Options{BaseURL: hs.URL + "/sandbox/slack/api/"})
	_, err := s.AuthTest(ctx)
	var pe *authgate.ProviderError
	fmt.Println(errors.As(err, &pe), pe.Status, pe.SlackError)
	// Output:
	// true 200 invalid_auth
}
