package googlesim

import (
	"errors"
	"strings"
	"unicode"
)

// parseQuery compiles the subset of Drive's `q` language the sandbox
// understands: clauses joined by `and`, each one of
//
//	name = 'x' | name != 'x' | name contains 'x'
//	mimeType = 'x' | mimeType != 'x'
//	'ID' in parents
//	trashed = true|false
//	fullText contains 'x'
//
// Anything else is refused, as Drive refuses what it cannot parse.
func parseQuery(q string) (func(*file) bool, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	var clauses []func(*file) bool
	for len(toks) > 0 {
		var c func(*file) bool
		switch {
		case len(toks) >= 3 && toks[0].quoted && strings.EqualFold(toks[1].text, "in") && toks[2].text == "parents":
			id := toks[0].text
			c = func(f *file) bool { return contains(f.Parents, id) }
		case len(toks) >= 3 && !toks[0].quoted:
			field, op, val := toks[0].text, toks[1].text, toks[2]
			c, err = clause(field, op, val)
			if err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("bad clause")
		}
		clauses = append(clauses, c)
		toks = toks[3:]
		if len(toks) > 0 {
			if !strings.EqualFold(toks[0].text, "and") || toks[0].quoted {
				return nil, errors.New("only 'and' joins clauses")
			}
			toks = toks[1:]
			if len(toks) == 0 {
				return nil, errors.New("dangling and")
			}
		}
	}
	return func(f *file) bool {
		for _, c := range clauses {
			if !c(f) {
				return false
			}
		}
		return true
	}, nil
}

func clause(field, op string, val token) (func(*file) bool, error) {
	switch field {
	case "name", "mimeType":
		if !val.quoted {
			return nil, errors.New("string expected")
		}
		get := func(f *file) string { return f.Name }
		if field == "mimeType" {
			get = func(f *file) string { return f.MimeType }
		}
		switch op {
		case "=":
			return func(f *file) bool { return get(f) == val.text }, nil
		case "!=":
			return func(f *file) bool { return get(f) != val.text }, nil
		case "contains":
			if field == "name" {
				return func(f *file) bool { return strings.Contains(strings.ToLower(f.Name), strings.ToLower(val.text)) }, nil
			}
		}
	case "trashed":
		if val.quoted || (val.text != "true" && val.text != "false") || (op != "=" && op != "!=") {
			return nil, errors.New("boolean expected")
		}
		want := (val.text == "true") == (op == "=")
		return func(f *file) bool { return f.Trashed == want }, nil
	case "fullText":
		if op == "contains" && val.quoted {
			needle := strings.ToLower(val.text)
			return func(f *file) bool {
				return strings.Contains(strings.ToLower(f.Name), needle) || strings.Contains(strings.ToLower(f.Text), needle) || strings.Contains(strings.ToLower(string(f.Content)), needle)
			}, nil
		}
	}
	return nil, errors.New("unsupported clause")
}

type token struct {
	text   string
	quoted bool
}

func tokenize(s string) ([]token, error) {
	var out []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		switch r := rs[i]; {
		case unicode.IsSpace(r):
			i++
		case r == '\'':
			var b strings.Builder
			i++
			closed := false
			for i < len(rs) {
				if rs[i] == '\\' && i+1 < len(rs) {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == '\'' {
					closed = true
					i++
					break
				}
				b.WriteRune(rs[i])
				i++
			}
			if !closed {
				return nil, errors.New("unterminated string")
			}
			out = append(out, token{text: b.String(), quoted: true})
		case r == '=':
			out = append(out, token{text: "="})
			i++
		case r == '!' && i+1 < len(rs) && rs[i+1] == '=':
			out = append(out, token{text: "!="})
			i += 2
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '=' && rs[j] != '!' && rs[j] != '\'' {
				j++
			}
			if j == i {
				return nil, errors.New("unexpected character")
			}
			out = append(out, token{text: string(rs[i:j])})
			i = j
		}
	}
	return out, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// fieldSel is a parsed `fields` selector: nil value = the whole field.
type fieldSel map[string]fieldSel

// parseFields parses Google's partial-response syntax ("a,b(c,d),e/f").
// "" returns nil (use the method's default); "*" returns every field.
func parseFields(s string) (fieldSel, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	sel, rest, err := parseSelList(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, errors.New("trailing input")
	}
	return sel, nil
}

func parseSelList(s string) (fieldSel, string, error) {
	sel := fieldSel{}
	for {
		s = strings.TrimLeft(s, " ")
		i := strings.IndexAny(s, ",()/")
		name := s
		if i >= 0 {
			name = s[:i]
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, s, errors.New("empty field name")
		}
		if i < 0 {
			s = ""
		} else {
			s = s[i:]
		}
		var sub fieldSel
		switch {
		case strings.HasPrefix(s, "("):
			var err error
			sub, s, err = parseSelList(s[1:])
			if err != nil {
				return nil, s, err
			}
			if !strings.HasPrefix(s, ")") {
				return nil, s, errors.New("missing )")
			}
			s = s[1:]
		case strings.HasPrefix(s, "/"):
			var err error
			sub, s, err = parseSelList(s[1:])
			if err != nil {
				return nil, s, err
			}
		}
		if prev, ok := sel[name]; ok && prev != nil && sub != nil {
			for k, v := range sub {
				prev[k] = v
			}
		} else {
			sel[name] = sub
		}
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
			continue
		}
		return sel, s, nil
	}
}

// apply keeps the selected fields of v (maps and slices of maps).
func (sel fieldSel) apply(v any) any {
	if sel == nil {
		return v
	}
	if _, all := sel["*"]; all {
		return v
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range sel {
			if x, ok := t[k]; ok {
				out[k] = sub.apply(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = sel.apply(x)
		}
		return out
	}
	return v
}
