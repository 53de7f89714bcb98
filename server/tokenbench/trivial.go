package tokenbench

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/authgate/authgate"
)

// Body is what both handlers are sent: the token route's usual request.
var Body = []byte(`{"min_valid_seconds":300}`)

// TokenPath is the route both handlers answer, with {id} filled in.
func TokenPath(id authgate.CredentialID) string { return "/v1/credentials/" + string(id) + "/token" }

// Trivial is the yardstick: what any net/http handler of the token route's
// shape costs with no storage, no crypto and no refresher. It routes the
// same pattern, checks the bearer key, decodes the body strictly, and
// answers answer as JSON (the bench passes it one real answer of the token
// route, so both send the same bytes).
func Trivial(key string, answer authgate.AccessToken) http.Handler {
	want := []byte("Bearer " + key)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/credentials/{id}/token", func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, `{"type":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var body struct {
			MinValidSeconds     *int     `json:"min_valid_seconds"`
			Actions             []string `json:"actions"`
			RejectedFingerprint string   `json:"rejected_fingerprint"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			http.Error(w, `{"type":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		a := answer
		a.CredentialID = authgate.CredentialID(r.PathValue("id"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(a)
	})
	return mux
}

// httpServer is how authgate's own Serve configures net/http, so that the
// trivial handler runs with the same server settings.
func httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// TrivialReady is the line ServeTrivial prints once it listens.
const TrivialReady = "trivial handler serving on "

// ServeTrivial serves Trivial on a free loopback port until ctx is done,
// after printing TrivialReady and its URL to out. answerJSON is one answer
// of the token route. `authgate bench` runs it in a process of its own.
func ServeTrivial(ctx context.Context, key string, answerJSON []byte, out io.Writer) error {
	if key == "" {
		return errors.New("trivial handler: no key to check (AUTHGATE_BENCH_KEY)")
	}
	var answer authgate.AccessToken
	if err := json.Unmarshal(answerJSON, &answer); err != nil || answer.AccessToken == "" {
		return fmt.Errorf("trivial handler: the answer to copy is not a token answer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := httpServer(Trivial(key, answer))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(out, "%shttp://%s\n", TrivialReady, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
