package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/authgate/authgate"
)

// TestTokenJSONMatchesEncodingJSON holds the hand-written token answer to
// what encoding/json writes, for every field of authgate.AccessToken and
// strings that need escaping.
func TestTokenJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	// A new field must be written by appendToken too: this count makes
	// adding one fail here until it is.
	if n := reflect.TypeFor[authgate.AccessToken]().NumField(); n != 8 {
		t.Fatalf("authgate.AccessToken has %d fields; appendToken writes 8: update it and this test", n)
	}
	exp := time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)
	zoned := time.Date(2026, 12, 4, 10, 0, 0, 0, time.FixedZone("x", 5*3600+1800))
	strs := []string{"", "ya29.a0AfH6SMB-_.~+/=", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f\x7f",
		"ünïcödé ✓ \u2028\u2029", "bad utf-8 \xff\xfe", "slack xoxb-1-2-3"}
	cases := []authgate.AccessToken{
		{},
		{CredentialID: "cred_abc", Provider: "google", AccessToken: "ya29.x", TokenType: "Bearer", ExpiresAt: &exp, Scopes: []string{"openid", "email"}, Fingerprint: "0123456789", MinValidMet: true},
		{CredentialID: "cred_abc", ExpiresAt: &zoned, Scopes: []string{}},
	}
	for i, s := range strs {
		cases = append(cases, authgate.AccessToken{CredentialID: authgate.CredentialID(s), Provider: s, AccessToken: s, TokenType: s,
			Scopes: []string{s, strs[(i+1)%len(strs)]}, Fingerprint: s, MinValidMet: i%2 == 0, ExpiresAt: &exp})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		cases = append(cases, authgate.AccessToken{AccessToken: string(b), Scopes: []string{string(b[:len(b)/2])}})
	}
	for _, c := range cases {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(c); err != nil {
			t.Fatal(err)
		}
		got, err := appendToken(nil, &c)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendToken(%+v)\n got  %s (%v)\n want %s", c, got, err, want.Bytes())
		}
	}
	// A time encoding/json cannot write is an error for both.
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := appendToken(nil, &authgate.AccessToken{ExpiresAt: &far}); err == nil {
		t.Error("appendToken wrote the year 10000")
	}
}

// tokenBodies are bodies the token route may receive: the common ones the
// fast path takes and every kind it must leave to encoding/json.
var tokenBodies = []string{
	`{"min_valid_seconds":300}`, `{}`, ` { } `, "{\n\t\"min_valid_seconds\" : 60 ,\r\n\"actions\":[\"drive.files.list\",\"docs.create\"]}",
	`{"min_valid_seconds":0}`, `{"min_valid_seconds":-5}`, `{"min_valid_seconds":-0}`, `{"min_valid_seconds":86401}`, `{"min_valid_seconds":999999999}`,
	`{"min_valid_seconds":9999999999}`, `{"min_valid_seconds":01}`, `{"min_valid_seconds":1.5}`, `{"min_valid_seconds":1e3}`, `{"min_valid_seconds":"300"}`,
	`{"min_valid_seconds":null}`, `{"actions":null}`, `{"actions":[]}`, `{"actions":[ ]}`, `{"actions":["a",]}`, `{"actions":["a" "b"]}`, `{"actions":[1]}`,
	`{"rejected_fingerprint":"0123456789"}`, `{"rejected_fingerprint":null}`, `{"rejected_fingerprint":""}`, `{"rejected_fingerprint":"\u0030"}`,
	`{"rejected_fingerprint":"a\u0000b"}`, `{"actions":["caf\u00e9"]}`, `{"actions":["café"]}`, `{"min_valid_seconds":300,"min_valid_seconds":60}`,
	`{"MIN_VALID_SECONDS":300}`, `{"min_valid_seconds":300,}`, `{"min_valid_seconds":300}{}`, `{"min_valid_seconds":300} x`, `{"unknown":1}`,
	`[]`, `null`, `"x"`, ``, `{`, `{"min_valid_seconds"`, `{"min_valid_seconds":`, `{"min_valid_seconds":3`, "\xff", `{"actions":["\xff"]}`,
	`{"min_valid_seconds":true}`, `{"min_valid_seconds":-}`, `{"actions":"a"}`, `{"actions":["a","b","c"],"rejected_fingerprint":"abcdef0123","min_valid_seconds":1}`,
}

// TestTokenBodyFastPathAgreesWithDecodeJSON: whatever the fast path
// accepts, decodeJSON accepts with the same value.
func TestTokenBodyFastPathAgreesWithDecodeJSON(t *testing.T) {
	t.Parallel()
	fast := 0
	for _, body := range tokenBodies {
		if checkTokenBody(t, body) {
			fast++
		}
	}
	if fast < 10 {
		t.Errorf("the fast path took only %d of the bodies; it should take the common ones", fast)
	}
	for _, common := range []string{`{"min_valid_seconds":300}`, `{}`, `{"actions":["drive.files.list"]}`, `{"rejected_fingerprint":"0123456789"}`} {
		var b authgate.TokenRequestBody
		if !parseTokenBody([]byte(common), &b) {
			t.Errorf("the fast path refuses the common body %s", common)
		}
	}
}

func checkTokenBody(t *testing.T, body string) (fast bool) {
	t.Helper()
	var got, want authgate.TokenRequestBody
	if !parseTokenBody([]byte(body), &got) {
		if !reflect.DeepEqual(got, authgate.TokenRequestBody{}) {
			t.Errorf("%q: the fast path refused the body but wrote %+v", body, got)
		}
		return false
	}
	if err := decodeJSONBody([]byte(body), &want); err != nil {
		t.Errorf("%q: the fast path accepted what decodeJSON refuses (%v)", body, err)
		return true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q: fast path %+v; decodeJSON %+v", body, got, want)
	}
	return true
}

func FuzzTokenBody(f *testing.F) {
	for _, b := range tokenBodies {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) { checkTokenBody(t, body) })
}
