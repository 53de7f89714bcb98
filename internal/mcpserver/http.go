package mcpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
)

// UserHeader names the end user when the user_id query parameter does not.
const UserHeader = "X-Authgate-User"

// HTTPConfig is the streamable-HTTP endpoint serve mounts at /mcp.
type HTTPConfig struct {
	// Authenticate resolves an Authorization header to a stable principal
	// (tenant and key); an error refuses the request with 401.
	Authenticate func(ctx context.Context, authorization string) (principal string, err error)
	// API is authgate's own HTTP API: the tools call it in process with
	// the caller's key, so they see exactly what that tenant's key sees.
	API http.Handler
	// Transport, PollInterval, Writes and Logger are as in Config.
	Transport    http.RoundTripper
	PollInterval time.Duration
	Writes       *Writes
	Changes      *Changes
	Logger       *slog.Logger
}

// maxServers bounds the per-(key, user) servers kept between requests.
const maxServers = 1024

// Handler serves MCP over streamable HTTP: the tenant API key as a Bearer
// token, the end user from ?user_id= or the X-Authgate-User header. A
// session stays bound to the key and user that opened it (the SDK refuses
// another principal on its session id).
func Handler(hc HTTPConfig) http.Handler {
	if hc.Writes == nil {
		hc.Writes = NewWrites(time.Hour)
	}
	if hc.Logger == nil {
		hc.Logger = slog.New(slog.DiscardHandler)
	}
	var mu sync.Mutex
	servers := map[string]*mcp.Server{}
	api := &http.Client{Transport: handlerTransport{hc.API}}
	getServer := func(r *http.Request) *mcp.Server {
		ti := auth.TokenInfoFromContext(r.Context())
		if ti == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if s, ok := servers[ti.UserID]; ok {
			return s
		}
		key, _ := ti.Extra["key"].(string)
		user, _ := ti.Extra["user"].(string)
		c := &authgate.Client{BaseURL: "http://authgate.internal", APIKey: key, HTTPClient: api}
		s, err := New(Config{Client: c, UserID: user, Transport: hc.Transport, PollInterval: hc.PollInterval, Writes: hc.Writes, Changes: hc.Changes, Logger: hc.Logger})
		if err != nil {
			return nil
		}
		if len(servers) >= maxServers {
			clear(servers)
		}
		servers[ti.UserID] = s
		return s
	}
	h := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Logger: hc.Logger})
	verify := func(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
		principal, err := hc.Authenticate(ctx, "Bearer "+token)
		if err != nil {
			return nil, auth.ErrInvalidToken
		}
		user := endUser(r)
		return &auth.TokenInfo{UserID: principal + "\x00" + user, Extra: map[string]any{"key": token, "user": user}}, nil
	}
	authed := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSpace(endUser(r)) == "" {
			http.Error(w, "name the end user: /mcp?user_id=… or the "+UserHeader+" header", http.StatusBadRequest)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

func endUser(r *http.Request) string {
	if u := r.URL.Query().Get("user_id"); u != "" {
		return u
	}
	return r.Header.Get(UserHeader)
}

// handlerTransport answers the tools' API calls from the API handler in
// process: no socket, no dependence on the public URL being reachable from
// the server itself.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.h == nil {
		return nil, errors.New("mcpserver: no API handler")
	}
	r = r.Clone(r.Context())
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = r.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
