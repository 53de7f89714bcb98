package googlesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf16"
)

var (
	docsCreate      = apiMethod{ID: "google.apps.docs.v1.DocumentsService.CreateDocument", Service: "docs.googleapis.com", Scopes: []string{ScopeDocuments, ScopeDrive, ScopeDriveFile}, Docs: true}
	docsGet         = apiMethod{ID: "google.apps.docs.v1.DocumentsService.GetDocument", Service: "docs.googleapis.com", Scopes: []string{ScopeDocuments, ScopeDocumentsRO, ScopeDrive, ScopeDriveFile, ScopeDriveReadonly}, Docs: true}
	docsBatchUpdate = apiMethod{ID: "google.apps.docs.v1.DocumentsService.BatchUpdateDocument", Service: "docs.googleapis.com", Scopes: []string{ScopeDocuments, ScopeDrive, ScopeDriveFile}, Docs: true}
)

func (s *Sim) registerDocs(mux *http.ServeMux, p string) {
	mux.HandleFunc("POST "+p+"/v1/documents", s.docsCreate)
	mux.HandleFunc("GET "+p+"/v1/documents/{id}", s.docsGet)
	// "{id}:batchUpdate" arrives as one path segment.
	mux.HandleFunc("POST "+p+"/v1/documents/{idop}", s.docsBatchUpdate)
}

// document renders a Google Doc as the Docs v1 Document resource: a section
// break, then one paragraph per line. Indexes count UTF-16 code units and
// the body starts at 1.
func (f *file) document() map[string]any {
	content := []any{map[string]any{"endIndex": 1, "sectionBreak": map[string]any{"sectionStyle": map[string]any{"columnSeparatorStyle": "NONE", "contentDirection": "LEFT_TO_RIGHT", "sectionType": "CONTINUOUS"}}}}
	idx := 1
	lines := strings.SplitAfter(f.Text, "\n")
	for _, line := range lines {
		if line == "" {
			continue
		}
		n := len(utf16.Encode([]rune(line)))
		content = append(content, map[string]any{
			"startIndex": idx, "endIndex": idx + n,
			"paragraph": map[string]any{
				"elements":       []any{map[string]any{"startIndex": idx, "endIndex": idx + n, "textRun": map[string]any{"content": line, "textStyle": map[string]any{}}}},
				"paragraphStyle": map[string]any{"namedStyleType": "NORMAL_TEXT", "direction": "LEFT_TO_RIGHT"},
			},
		})
		idx += n
	}
	return map[string]any{
		"documentId": f.ID, "title": f.Name, "revisionId": fmt.Sprintf("ALm37BV%08d", f.Revision),
		"suggestionsViewMode": "SUGGESTIONS_INLINE",
		"body":                map[string]any{"content": content},
		"documentStyle":       map[string]any{"pageSize": map[string]any{"height": map[string]any{"magnitude": 792, "unit": "PT"}, "width": map[string]any{"magnitude": 612, "unit": "PT"}}},
	}
}

func (s *Sim) docsNotFound(w http.ResponseWriter, c *caller) {
	s.apiError(w, http.StatusNotFound, rpcError(404, "NOT_FOUND", "Requested entity was not found."), c.indent)
}

func (s *Sim) docsCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, docsCreate)
	if !ok {
		return
	}
	var body struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		s.apiError(w, http.StatusBadRequest, rpcError(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), c.indent)
		return
	}
	if body.Title == "" {
		body.Title = "Untitled document"
	}
	s.mu.Lock()
	now := s.now().UTC()
	f := &file{ID: s.newIDLocked(), Name: body.Title, MimeType: MimeDoc, Owner: c.AccountID, CreatedBy: c.ClientID, Created: now, Updated: now, Text: "\n", Revision: 1}
	s.files[f.ID] = f
	doc := f.document()
	s.mu.Unlock()
	s.writeOK(w, c, http.StatusOK, doc)
}

// docFor returns a visible Google Doc or answers the request: unknown or
// invisible ids are 404; a file that is not a Google Doc (say, text/plain)
// is refused, which is how "the agent made a .txt instead of a Doc" shows.
func (s *Sim) docFor(w http.ResponseWriter, c *caller, id string) (*file, bool) {
	f := s.files[id]
	if !c.visible(f) {
		return nil, false
	}
	if f.MimeType != MimeDoc {
		// Inferred shape (no Docs capture, reference §2.5).
		return f, false
	}
	return f, true
}

func (s *Sim) docsGet(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, docsGet)
	if !ok {
		return
	}
	s.mu.Lock()
	f, ok := s.docFor(w, c, r.PathValue("id"))
	var doc map[string]any
	if ok {
		doc = f.document()
	}
	s.mu.Unlock()
	switch {
	case f == nil:
		s.docsNotFound(w, c)
	case !ok:
		s.apiError(w, http.StatusBadRequest, rpcError(400, "FAILED_PRECONDITION", "This operation is not supported for this document"), c.indent)
	default:
		s.writeOK(w, c, http.StatusOK, doc)
	}
}

type insertText struct {
	Text     string `json:"text"`
	Location *struct {
		Index     *int   `json:"index"`
		SegmentID string `json:"segmentId"`
		TabID     string `json:"tabId"`
	} `json:"location"`
	EndOfSegmentLocation *struct {
		SegmentID string `json:"segmentId"`
		TabID     string `json:"tabId"`
	} `json:"endOfSegmentLocation"`
}

// docsBatchUpdate applies insertText requests atomically: all or none.
func (s *Sim) docsBatchUpdate(w http.ResponseWriter, r *http.Request) {
	id, op, _ := strings.Cut(r.PathValue("idop"), ":")
	if op != "batchUpdate" {
		s.apiError(w, http.StatusNotFound, rpcError(404, "NOT_FOUND", "Requested entity was not found."), "  ")
		return
	}
	c, ok := s.apiAuth(w, r, docsBatchUpdate)
	if !ok {
		return
	}
	var body struct {
		Requests []map[string]json.RawMessage `json:"requests"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		s.apiError(w, http.StatusBadRequest, rpcError(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), c.indent)
		return
	}
	invalid := func(msg string) {
		s.apiError(w, http.StatusBadRequest, rpcError(400, "INVALID_ARGUMENT", msg), c.indent)
	}
	if len(body.Requests) == 0 {
		invalid("Invalid requests: must contain at least one request.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.docFor(w, c, id)
	switch {
	case f == nil:
		s.docsNotFound(w, c)
		return
	case !ok:
		s.apiError(w, http.StatusBadRequest, rpcError(400, "FAILED_PRECONDITION", "This operation is not supported for this document"), c.indent)
		return
	}
	text := []uint16(utf16.Encode([]rune(f.Text)))
	replies := make([]any, 0, len(body.Requests))
	for i, req := range body.Requests {
		raw, ok := req["insertText"]
		if !ok || len(req) != 1 {
			for k := range req {
				invalid(fmt.Sprintf("Invalid requests[%d].%s: the sandbox supports insertText only.", i, k))
				return
			}
			invalid(fmt.Sprintf("Invalid requests[%d]: no request kind set.", i))
			return
		}
		var it insertText
		if err := json.Unmarshal(raw, &it); err != nil {
			invalid(fmt.Sprintf("Invalid requests[%d].insertText: malformed.", i))
			return
		}
		if (it.Location == nil) == (it.EndOfSegmentLocation == nil) {
			invalid(fmt.Sprintf("Invalid requests[%d].insertText: exactly one of location or endOfSegmentLocation must be set.", i))
			return
		}
		if it.Text == "" {
			invalid(fmt.Sprintf("Invalid requests[%d].insertText: text must not be empty.", i))
			return
		}
		end := len(text) + 1 // the body's end index (it starts at 1)
		at := end - 1        // before the final newline
		if it.Location != nil {
			if it.Location.SegmentID != "" {
				invalid(fmt.Sprintf("Invalid requests[%d].insertText: segment %s not found.", i, it.Location.SegmentID))
				return
			}
			if it.Location.Index == nil || *it.Location.Index < 1 {
				invalid(fmt.Sprintf("Invalid requests[%d].insertText: Index must be at least 1.", i))
				return
			}
			if *it.Location.Index >= end {
				invalid(fmt.Sprintf("Invalid requests[%d].insertText: Index %d must be less than the end index of the referenced segment, %d.", i, *it.Location.Index, end))
				return
			}
			at = *it.Location.Index
		} else if it.EndOfSegmentLocation.SegmentID != "" {
			invalid(fmt.Sprintf("Invalid requests[%d].insertText: segment %s not found.", i, it.EndOfSegmentLocation.SegmentID))
			return
		}
		ins := utf16.Encode([]rune(it.Text))
		pos := at - 1
		text = append(text[:pos], append(ins, text[pos:]...)...)
		replies = append(replies, map[string]any{})
	}
	f.Text = string(utf16.Decode(text))
	f.Revision++
	f.Updated = s.now().UTC()
	s.writeOK(w, c, http.StatusOK, map[string]any{
		"documentId": f.ID, "replies": replies,
		"writeControl": map[string]any{"requiredRevisionId": fmt.Sprintf("ALm37BV%08d", f.Revision)},
	})
}
