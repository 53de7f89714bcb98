package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes /v1. TestOpenAPIMatchesRoutes keeps it in step
// with routes.go and with every authgate.Class.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI serves the OpenAPI 3.1 document (no API key: it is public
// knowledge, and clients generate code from it).
func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIDocument)
	return err
}
