package api

// Body caps per route. An import body holds two tokens and some scopes; 64 KiB
// is far above any real one and far below anything that could hurt us.
const (
	maxImportBody = 64 << 10
)

func (a *API) routes() {
	a.mux.Handle("GET /healthz", a.handle(a.healthz))
	a.mux.Handle("GET /readyz", a.handle(a.readyz))

	a.mux.Handle("GET /v1/credentials", a.authed(a.listCredentials))
	a.mux.Handle("POST /v1/credentials/import", a.authed(a.importCredential))
	a.mux.Handle("GET /v1/credentials/{id}", a.authed(a.getCredential))
	a.mux.Handle("DELETE /v1/credentials/{id}", a.authed(a.deleteCredential))
	a.mux.Handle("GET /v1/credentials/{id}/events", a.authed(a.credentialEvents))
}
