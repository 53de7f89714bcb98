package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return err
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, and a
	// \u0000 into a NUL that PostgreSQL refuses to store: refuse both here,
	// the same on every backend.
	if !utf8.Valid(body) {
		return authgate.Errorf(authgate.ClassInvalidRequest, "body is not valid UTF-8")
	}
	// Every body is an object: `null` would decode into the zero value
	// (an API key with no name, a run with no workflow) without a word.
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] != '{' && json.Valid(t) {
		return invalidField("body", "must be a JSON object, not "+jsonValueKind(t[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if field, msg, bad := badString(reflect.ValueOf(v), "", ""); bad {
		return invalidField(strings.TrimPrefix(field, "."), msg)
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
			return invalidField("body", "must be a JSON object")
		}
		return fieldProblem(typ.Field, "must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		e := authgate.Errorf(authgate.ClassInvalidRequest, "unknown field %q", f)
		e.Errors = []authgate.FieldError{{Field: f, Message: "is not a known field"}}
		return e
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

// jsonValueKind names the JSON value that starts with c.
func jsonValueKind(c byte) string {
	switch c {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	}
	return "a number"
}
