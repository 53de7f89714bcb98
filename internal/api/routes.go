package api

// Body caps per route. An import body holds two tokens and some scopes; 64 KiB
// is far above any real one and far below anything that could hurt us.
const (
	maxImportBody = 64 << 10
)

func (a *API) routes() {
	a.mux.Handle("GET /healthz", a.handle(a.healthz))
	a.mux.Handle("GET /readyz", a.handle(a.readyz))
	a.mux.Handle("GET /v1/openapi.json", a.handle(a.openAPI))

	a.mux.Handle("GET /v1/credentials", a.authed(a.listCredentials))
	a.mux.Handle("POST /v1/credentials/import", a.authed(a.importCredential))
	a.mux.Handle("GET /v1/credentials/{id}", a.authed(a.getCredential))
	a.mux.Handle("DELETE /v1/credentials/{id}", a.authed(a.deleteCredential))
	a.mux.Handle("GET /v1/credentials/{id}/events", a.authed(a.credentialEvents))

	if a.refresher != nil {
		a.mux.Handle("POST /v1/credentials/{id}/token", a.authed(a.credentialToken))
	}
	if a.verifier != nil {
		a.mux.Handle("POST /v1/credentials/{id}/verify", a.authed(a.verifyCredential))
		a.mux.Handle("POST /v1/credentials/{id}/diagnose", a.authed(a.diagnoseCredential))
	}
	if a.gate != nil {
		a.mux.Handle("POST /v1/runs", a.authed(a.createRun))
		a.mux.Handle("GET /v1/runs", a.authed(a.listRuns))
		a.mux.Handle("GET /v1/runs/{id}", a.authed(a.getRun))
		a.mux.Handle("POST /v1/runs/{id}/cancel", a.authed(a.cancelRun))
		a.mux.Handle("POST /v1/runs/{id}/finish", a.authed(a.finishRun))
		a.mux.Handle("POST /v1/runs/{id}/steps", a.authed(a.gateStep))
		a.mux.Handle("POST /v1/runs/{id}/steps/{key}/complete", a.authed(a.completeStep))
		a.mux.Handle("POST /v1/runs/{id}/steps/{key}/fail", a.authed(a.failStep))
	}
	if a.webhooks != nil {
		a.mux.Handle("POST /v1/webhooks", a.authed(a.createWebhook))
		a.mux.Handle("GET /v1/webhooks", a.authed(a.listWebhooks))
		a.mux.Handle("DELETE /v1/webhooks/{id}", a.authed(a.deleteWebhook))
	}
	a.mux.Handle("POST /v1/classify", a.authed(a.classifyError))
	a.mux.Handle("POST /v1/api-keys", a.authed(a.createAPIKey))
	a.mux.Handle("GET /v1/api-keys", a.authed(a.listAPIKeys))
	a.mux.Handle("DELETE /v1/api-keys/{id}", a.authed(a.revokeAPIKey))
	if a.broker != nil {
		a.mux.Handle("POST /v1/connect-sessions", a.authed(a.createConnectSession))
		a.mux.Handle("GET /v1/connect-sessions/{id}", a.authed(a.getConnectSession))
		a.mux.Handle("GET /connect/{session}", a.handle(a.connectRedirect))
		a.mux.Handle("GET /oauth/callback", a.handle(a.oauthCallback))
	}
	if a.providers != nil {
		a.mux.Handle("GET /v1/providers", a.authed(a.listProviders))
	}
	if a.consoleLinks != nil {
		a.mux.Handle("POST /v1/ui/login-links", a.authed(a.createConsoleLoginLink))
	}
	if a.metrics != nil {
		a.mux.Handle("GET /metrics", a.metrics.handler())
	}
}
