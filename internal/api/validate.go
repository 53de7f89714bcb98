package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/authgate/authgate"
)

// fieldProblem is a 400 naming the one field that is wrong, in the detail
// and in errors[] (so a client can point at it without parsing words).
func fieldProblem(field, format string, args ...any) *authgate.Error {
	msg := fmt.Sprintf(format, args...)
	e := authgate.Errorf(authgate.ClassInvalidRequest, "%s %s", field, msg)
	e.Errors = []authgate.FieldError{{Field: field, Message: msg}}
	return e
}

// invalidField is fieldProblem for a message without arguments.
func invalidField(field, msg string) *authgate.Error { return fieldProblem(field, "%s", msg) }

// Bounds on the strings of a request body, by JSON field name. Ids and
// names end up in indexes, logs and URLs: 256 bytes is generous for any
// real one and refuses a megabyte "workflow". Fields not listed get
// maxOtherString; "body" (a provider's error body) and "output" are bounded
// by the route's body cap alone.
const (
	maxIDString = 256
	// maxAccountString is the stores' own bound on who a credential or key
	// belongs to (vault, broker, tenancy: 255 bytes). Checking it here too
	// makes a 256-byte user_id a problem naming the field on every route,
	// not a bare message from whichever layer met it first.
	maxAccountString = 255
	maxURLString     = 2048
	maxOtherString   = 16 << 10
)

var stringLimits = map[string]int{
	"workflow": maxIDString, "user_id": maxAccountString, "name": maxIDString, "provider": maxIDString, "key": maxIDString,
	"idempotency_key": maxIDString, "binding": maxIDString, "bindings": maxIDString, "workspace_id": maxAccountString,
	"subject": maxAccountString, "email": maxIDString, "domain": maxIDString, "expected_account": maxAccountString,
	"login_hint": maxIDString, "account_type": maxIDString, "token_type": maxIDString, "state": maxIDString,
	"operation": maxIDString, "rejected_fingerprint": maxIDString, "credential_id": maxIDString, "role": maxIDString,
	"actions": maxIDString, "drive_folder": maxIDString, "notion_page": maxIDString, "notion_database": maxIDString,
	"slack_channel": maxIDString, "status": maxIDString, "reason": 1024, "scopes": 1024,
	"return_url": maxURLString, "url": maxURLString,
	"body": -1, "output": -1,
}

// badString reports the first string inside v (structs, slices, maps,
// pointers) that holds a NUL byte or is longer than its field allows, with
// its path and what is wrong. name is the JSON field the value belongs to
// (slice elements and map values inherit it).
func badString(v reflect.Value, path, name string) (string, string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", "", false
		}
		return badString(v.Elem(), path, name)
	case reflect.String:
		s := v.String()
		if strings.IndexByte(s, 0) >= 0 {
			return path, "contains a NUL character", true
		}
		limit, ok := stringLimits[name]
		if !ok {
			limit = maxOtherString
		}
		if limit >= 0 && len(s) > limit {
			return path, fmt.Sprintf("is %d bytes long; at most %d", len(s), limit), true
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				// encoding/json flattens an untagged embedded struct into
				// its parent, so its fields carry no prefix on the wire
				// either (importBody embeds ImportCredentialRequest).
				if p, m, bad := badString(v.Field(i), path, name); bad {
					return p, m, true
				}
				continue
			}
			fname := f.Name
			if tag != "" && tag != "-" {
				fname = tag
			}
			if p, m, bad := badString(v.Field(i), path+"."+fname, fname); bad {
				return p, m, true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", "", false // json.RawMessage: bounded by the body cap
		}
		for i := range v.Len() {
			if p, m, bad := badString(v.Index(i), fmt.Sprintf("%s[%d]", path, i), name); bad {
				return p, m, true
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if k.Kind() == reflect.String && (len(k.String()) > maxIDString || strings.IndexByte(k.String(), 0) >= 0) {
				return path, fmt.Sprintf("has a key that is over %d bytes or holds a NUL character", maxIDString), true
			}
			if p, m, bad := badString(v.MapIndex(k), path+"."+fmt.Sprint(k.Interface()), name); bad {
				return p, m, true
			}
		}
	}
	return "", "", false
}

// decodeTargets checks a run's targets: absent (or null), or an object
// with the target fields (authgate.VerifyTargets), each a string.
func decodeTargets(raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil
	}
	if t[0] != '{' {
		return invalidField("targets", "must be an object such as {\"drive_folder\":\"…\",\"notion_database\":\"…\"}")
	}
	var v authgate.VerifyTargets
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		if e, ok := jsonError(err).(*authgate.Error); ok && len(e.Errors) == 1 {
			e.Errors[0].Field = "targets." + e.Errors[0].Field
			e.Detail = e.Errors[0].Field + " " + e.Errors[0].Message
			return e
		}
		return invalidField("targets", "must be an object of drive_folder, notion_page, notion_database and slack_channel strings")
	}
	if p, m, bad := badString(reflect.ValueOf(v), "targets", "targets"); bad {
		return invalidField(p, m)
	}
	return nil
}
