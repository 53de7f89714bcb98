package api

import "github.com/authgate/authgate"

// Body caps per route. An import body holds two tokens and some scopes; 64 KiB
// is far above any real one and far below anything that could hurt us.
const (
	maxImportBody = 64 << 10
)

// routes is the route table: each route's pattern, the least role a key
// needs to call it (public routes need no key) and its handler, declared
// once here. authed enforces the role; openapi.json states it as
// x-authgate-role, and TestOpenAPIMatchesRoutes keeps the two equal.
//
// Which end user a user key may act for is the handlers' business (they
// load the resource anyway): tenancy.Principal.User and Owns.
func (a *API) routes() {
	a.public("GET /healthz", a.healthz)
	a.public("GET /readyz", a.readyz)
	a.public("GET /v1/openapi.json", a.openAPI)

	a.route("GET /v1/credentials", authgate.RoleUser, a.listCredentials)
	a.route("POST /v1/credentials/import", authgate.RoleService, a.importCredential)
	a.route("GET /v1/credentials/{id}", authgate.RoleUser, a.getCredential)
	a.route("DELETE /v1/credentials/{id}", authgate.RoleUser, a.deleteCredential)
	a.route("GET /v1/credentials/{id}/events", authgate.RoleUser, a.credentialEvents)

	if a.refresher != nil {
		a.route("POST /v1/credentials/{id}/token", authgate.RoleUser, a.credentialToken)
	}
	if a.verifier != nil {
		a.route("POST /v1/credentials/{id}/verify", authgate.RoleUser, a.verifyCredential)
		a.route("POST /v1/credentials/{id}/diagnose", authgate.RoleUser, a.diagnoseCredential)
	}
	if a.gate != nil {
		a.route("POST /v1/runs", authgate.RoleUser, a.createRun)
		a.route("GET /v1/runs", authgate.RoleUser, a.listRuns)
		a.route("GET /v1/runs/{id}", authgate.RoleUser, a.getRun)
		a.route("POST /v1/runs/{id}/cancel", authgate.RoleUser, a.cancelRun)
		a.route("POST /v1/runs/{id}/finish", authgate.RoleUser, a.finishRun)
		a.route("POST /v1/runs/{id}/steps", authgate.RoleUser, a.gateStep)
		a.route("POST /v1/runs/{id}/steps/{key}/complete", authgate.RoleUser, a.completeStep)
		a.route("POST /v1/runs/{id}/steps/{key}/fail", authgate.RoleUser, a.failStep)
	}
	if a.webhooks != nil {
		a.route("POST /v1/webhooks", authgate.RoleAdmin, a.createWebhook)
		a.route("GET /v1/webhooks", authgate.RoleAdmin, a.listWebhooks)
		a.route("GET /v1/webhooks/deliveries", authgate.RoleAdmin, a.listDeliveries)
		a.route("DELETE /v1/webhooks/{id}", authgate.RoleAdmin, a.deleteWebhook)
	}
	a.route("POST /v1/classify", authgate.RoleUser, a.classifyError)
	a.route("GET /v1/me", authgate.RoleUser, a.me)
	a.route("POST /v1/api-keys", authgate.RoleAdmin, a.createAPIKey)
	a.route("GET /v1/api-keys", authgate.RoleAdmin, a.listAPIKeys)
	a.route("DELETE /v1/api-keys/{id}", authgate.RoleAdmin, a.revokeAPIKey)
	if a.broker != nil {
		a.route("POST /v1/connect-sessions", authgate.RoleUser, a.createConnectSession)
		a.route("GET /v1/connect-sessions/{id}", authgate.RoleUser, a.getConnectSession)
		a.public("GET /connect/{session}", a.connectRedirect)
		a.public("GET /oauth/callback", a.oauthCallback)
	}
	if a.providers != nil {
		a.route("GET /v1/providers", authgate.RoleUser, a.listProviders)
	}
	if a.consoleLinks != nil {
		a.route("POST /v1/ui/login-links", authgate.RoleAdmin, a.createConsoleLoginLink)
	}
	if a.metrics != nil {
		a.mux.Handle("GET /metrics", a.metrics.handler())
	}
}
