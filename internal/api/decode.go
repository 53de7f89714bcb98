package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/authgate/authgate"
)

// decodeJSON reads exactly one JSON object from the body into v, refusing
// unknown fields, trailing data, bodies over max bytes and non-JSON content
// types. Its errors describe the problem without echoing the body.
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return authgate.Errorf(authgate.ClassUnsupportedMedia, "send the body as JSON with 'Content-Type: application/json'")
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return authgate.Errorf(authgate.ClassInvalidRequest, "body must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return authgate.Errorf(authgate.ClassInvalidRequest, "body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return authgate.Errorf(authgate.ClassInvalidRequest, "body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return authgate.Errorf(authgate.ClassInvalidRequest, "body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return authgate.Errorf(authgate.ClassInvalidRequest, "body must be a JSON object")
		}
		return authgate.Errorf(authgate.ClassInvalidRequest, "field %s must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return authgate.Errorf(authgate.ClassInvalidRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return authgate.Errorf(authgate.ClassInvalidRequest, "body is not valid JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

// query reads the query string, refusing parameters not in allowed, so a
// misspelt filter fails loudly instead of silently matching everything.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "query string is malformed")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return nil, authgate.Errorf(authgate.ClassInvalidRequest, "unknown query parameter %q (allowed: %s)", truncate(k, 40), strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, authgate.Errorf(authgate.ClassInvalidRequest, "query parameter %s given %d times", k, len(v))
		}
	}
	return q, nil
}

func intParam(q url.Values, name string, min, max int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, authgate.Errorf(authgate.ClassInvalidRequest, "%s must be a whole number from %d to %d", name, min, max)
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
