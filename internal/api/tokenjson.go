package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/authgate/authgate"
)

// The token route is the hot path: it answers with the one fixed shape
// below, written by hand into a pooled buffer instead of through
// encoding/json's reflection. The bytes are exactly what
// json.NewEncoder(w).Encode would write (TestTokenJSONMatchesEncodingJSON
// holds them to it, for every field of authgate.AccessToken).

// Header values shared by every answer, never modified in place (net/http
// copies them when it writes the header; Set and Add replace the slice).
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeToken writes t as the token route's 200 answer.
func writeToken(w http.ResponseWriter, t *authgate.AccessToken) error {
	bp := answerBufs.Get().(*[]byte)
	defer answerBufs.Put(bp)
	b, err := appendToken((*bp)[:0], t)
	if err != nil {
		return err
	}
	*bp = b
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// appendToken appends t as encoding/json encodes it, newline included.
func appendToken(b []byte, t *authgate.AccessToken) ([]byte, error) {
	b = append(b, `{"credential_id":`...)
	b = appendJSONString(b, string(t.CredentialID))
	b = append(b, `,"provider":`...)
	b = appendJSONString(b, t.Provider)
	b = append(b, `,"access_token":`...)
	b = appendJSONString(b, t.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, t.TokenType)
	b = append(b, `,"expires_at":`...)
	if t.ExpiresAt == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		var err error
		// AppendText is MarshalJSON's strict RFC 3339 without the quotes.
		if b, err = t.ExpiresAt.AppendText(b); err != nil {
			return nil, err
		}
		b = append(b, '"')
	}
	b = append(b, `,"scopes":`...)
	if t.Scopes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range t.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	b = append(b, `,"fingerprint":`...)
	b = appendJSONString(b, t.Fingerprint)
	b = append(b, `,"min_valid_met":`...)
	b = strconv.AppendBool(b, t.MinValidMet)
	return append(b, "}\n"...), nil
}

// appendJSONString appends s quoted. Strings of printable ASCII that
// encoding/json leaves alone (no quote, backslash or HTML-special < > &)
// are copied; anything else is left to encoding/json itself, so the
// escaping rules are never written twice.
func appendJSONString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
