package api

import (
	"net/http"

	"github.com/authgate/authgate"
)

// decodeTokenBody reads the token route's body. Nearly every caller sends
// the same small object ({"min_valid_seconds":300}, maybe actions or a
// rejected fingerprint); parseTokenBody reads exactly that subset of JSON
// without reflection. Anything outside it — escapes, non-ASCII, other or
// repeated keys, numbers with fractions or exponents, errors of any kind —
// goes through decodeJSONBody unchanged, so what is accepted, refused and
// said about it is decodeJSON's, byte for byte
// (TestTokenBodyFastPathAgreesWithDecodeJSON).
func decodeTokenBody(w http.ResponseWriter, r *http.Request, b *authgate.TokenRequestBody) error {
	bp, body, err := jsonBody(w, r, 16<<10)
	defer bodyBufs.Put(bp)
	if err != nil {
		return err
	}
	if parseTokenBody(body, b) {
		return nil
	}
	*b = authgate.TokenRequestBody{}
	return decodeJSONBody(body, b)
}

// parseTokenBody parses body into b if it is in the simple subset, and
// reports whether it was. b is only written on success.
func parseTokenBody(body []byte, b *authgate.TokenRequestBody) bool {
	p := tokenParser{s: body}
	var out authgate.TokenRequestBody
	var seen [3]bool
	p.ws()
	if !p.byte('{') {
		return false
	}
	p.ws()
	if !p.byte('}') {
		for {
			key, ok := p.str()
			if !ok {
				return false
			}
			p.ws()
			if !p.byte(':') {
				return false
			}
			p.ws()
			switch key {
			case "min_valid_seconds":
				if seen[0] {
					return false
				}
				seen[0] = true
				if p.null() {
					break
				}
				n, ok := p.int()
				if !ok {
					return false
				}
				out.MinValidSeconds = &n
			case "actions":
				if seen[1] {
					return false
				}
				seen[1] = true
				if p.null() {
					break
				}
				if out.Actions, ok = p.strs(); !ok {
					return false
				}
			case "rejected_fingerprint":
				if seen[2] {
					return false
				}
				seen[2] = true
				if p.null() {
					break
				}
				if out.RejectedFingerprint, ok = p.str(); !ok {
					return false
				}
			default:
				return false
			}
			p.ws()
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return false
			}
			p.ws()
		}
	}
	p.ws()
	if p.i != len(p.s) {
		return false
	}
	*b = out
	return true
}

type tokenParser struct {
	s []byte
	i int
}

func (p *tokenParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *tokenParser) byte(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *tokenParser) null() bool {
	if len(p.s)-p.i >= 4 && string(p.s[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (p *tokenParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '"':
			s := string(p.s[start:p.i])
			p.i++
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
		p.i++
	}
	return "", false
}

// strs reads an array of str strings.
func (p *tokenParser) strs() ([]string, bool) {
	if !p.byte('[') {
		return nil, false
	}
	out := []string{}
	p.ws()
	if p.byte(']') {
		return out, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.ws()
		if p.byte(']') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
		p.ws()
	}
}

// int reads an integer of at most nine digits, as JSON writes it (no
// leading zeros, no plus sign, no fraction or exponent).
func (p *tokenParser) int() (int, bool) {
	neg := p.byte('-')
	start := p.i
	n := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n = n*10 + int(p.s[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 9 || (digits > 1 && p.s[start] == '0') {
		return 0, false
	}
	// A fraction or an exponent is left to encoding/json.
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}
