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
	"sync"
	"unicode/utf8"

	"github.com/authgate/authgate"
)

// decodeJSON reads exactly one JSON object from the body into v, refusing
// unknown fields, trailing data, bodies over max bytes and non-JSON content
// types. Its errors describe the problem without echoing the body.
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	bp, body, err := jsonBody(w, r, max)
	defer bodyBufs.Put(bp)
	if err != nil {
		return err
	}
	return decodeJSONBody(body, v)
}

// jsonBody checks the content type and reads the body (at most max bytes)
// into a pooled buffer, which the caller puts back into bodyBufs.
func jsonBody(w http.ResponseWriter, r *http.Request, max int64) (*[]byte, []byte, error) {
	bp := bodyBufs.Get().(*[]byte)
	// "application/json" exactly is the common case; anything else is parsed.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return bp, nil, authgate.Errorf(authgate.ClassUnsupportedMedia, "send the body as JSON with 'Content-Type: application/json'")
		}
	}
	body, err := readBody((*bp)[:0], http.MaxBytesReader(w, r.Body, max))
	*bp = body[:0]
	return bp, body, err
}

// decodeJSONBody is decodeJSON on a body already read.
func decodeJSONBody(body []byte, v any) error {
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

// bodyBufs recycles request-body buffers: decoding copies every string it
// keeps, so the bytes are free again once decodeJSON returns.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readBody appends everything r holds to b.
func readBody(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
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
