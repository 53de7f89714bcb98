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
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	// A decoded string can hold a NUL only where the body has the escape
	// \u0000 (JSON forbids a raw control character in a string): look for
	// the field only then.
	if bytes.Contains(body, []byte(`\u0000`)) {
		if field, bad := hasNUL(reflect.ValueOf(v), ""); bad {
			return authgate.Errorf(authgate.ClassInvalidRequest, "field %s contains a NUL character", strings.TrimPrefix(field, "."))
		}
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

// hasNUL reports the first string inside v (structs, slices, maps,
// pointers) that holds a NUL byte, and its path.
func hasNUL(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return hasNUL(v.Elem(), path)
	case reflect.String:
		return path, strings.IndexByte(v.String(), 0) >= 0
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			name := t.Field(i).Name
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
				name = tag
			}
			if p, bad := hasNUL(v.Field(i), path+"."+name); bad {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p, bad := hasNUL(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, true
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if p, bad := hasNUL(k, path+".(key)"); bad {
				return p, true
			}
			if p, bad := hasNUL(v.MapIndex(k), path+"."+fmt.Sprint(k.Interface())); bad {
				return p, true
			}
		}
	}
	return "", false
}
