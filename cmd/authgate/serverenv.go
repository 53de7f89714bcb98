package main

import (
	"cmp"
	"strings"
)

// Every command that talks to a running server reads the same two names:
// AUTHGATE_URL and AUTHGATE_API_KEY (serve's next steps export both).
// AUTHGATE_KEY, the name serve printed before, is still accepted.
const (
	envServerURL = "AUTHGATE_URL"
	envAPIKey    = "AUTHGATE_API_KEY"
	envAPIKeyOld = "AUTHGATE_KEY"
	// serverEnvHelp ends the message of a command that has neither.
	serverEnvHelp = "set AUTHGATE_URL and AUTHGATE_API_KEY (or --server and --api-key)"
)

// serverAndKey resolves a server command's flags against the environment:
// flags win.
func serverAndKey(serverURL, apiKey string) (string, string) {
	serverURL = strings.TrimRight(cmp.Or(serverURL, envOr(envServerURL, "")), "/")
	apiKey = cmp.Or(apiKey, envOr(envAPIKey, ""), envOr(envAPIKeyOld, ""))
	return serverURL, apiKey
}
