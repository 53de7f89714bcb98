package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// openAPIDocument describes /v1. TestOpenAPIMatchesRoutes keeps it in step
// with routes.go (patterns and roles) and with every authgate.Class.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIServer is the servers entry the embedded document carries; the
// served document names the configured public URL instead.
const openAPIServer = `"servers": [
    {
      "url": "http://127.0.0.1:8080"
    }
  ]`

// servedDocument caches the document for the last public URL it was
// served with (the URL changes only when the operator reconfigures).
type servedDocument struct {
	mu  sync.Mutex
	url string
	doc []byte
}

func (s *servedDocument) get(public string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc != nil && s.url == public {
		return s.doc
	}
	doc := openAPIDocument
	if public != "" {
		u, _ := json.Marshal(strings.TrimRight(public, "/"))
		// A text substitution keeps the document byte for byte as written
		// (key order, indentation) apart from the one URL.
		doc = bytes.Replace(openAPIDocument, []byte(openAPIServer), []byte(`"servers": [
    {
      "url": `+string(u)+`
    }
  ]`), 1)
	}
	s.url, s.doc = public, doc
	return doc
}

// openAPI serves the OpenAPI 3.1 document (no API key: it is public
// knowledge, and clients generate code from it), its servers entry naming
// this installation's public URL (AUTHGATE_PUBLIC_URL).
func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	public := ""
	if a.publicURL != nil {
		public = a.publicURL()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(a.openAPIDoc.get(public))
	return err
}
