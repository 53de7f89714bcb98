package googlesim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/authgate/authgate/sandbox/oauthcore"
)

// file is a Drive file. Google Docs keep their text in doc.
type file struct {
	ID, Name, MimeType, Description string
	Owner                           string // account sub
	// CreatedBy is the OAuth client that created the file ("" when the user
	// did): under drive.file an app sees only its own files.
	CreatedBy        string
	Parents          []string
	Created, Updated time.Time
	Content          []byte
	Trashed          bool
	// Unshared hides the file from every app (the unshare fault).
	Unshared bool
	Text     string // Google Docs body text; always ends with "\n"
	Revision int
}

func (s *Sim) newIDLocked() string {
	s.seq++
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, s.seq)
	r := s.core.Random(16)
	// Drive ids are 33-44 URL-safe characters.
	return "1" + base64.RawURLEncoding.EncodeToString(append(r, b...))[:32]
}

// seedFilesLocked gives a new account a few files that no app created, so
// drive.file versus drive.readonly visibility is observable.
func (s *Sim) seedFilesLocked(a *Account) {
	now := s.now().UTC()
	root := &file{ID: s.newIDLocked(), Name: "Projects", MimeType: MimeFolder, Owner: a.Sub, Created: now, Updated: now}
	plan := &file{ID: s.newIDLocked(), Name: "Q3 Planning", MimeType: MimeDoc, Owner: a.Sub, Parents: []string{root.ID}, Created: now, Updated: now,
		Text: "Q3 Planning\nShip the agent runner.\n", Revision: 1}
	notes := &file{ID: s.newIDLocked(), Name: "notes.txt", MimeType: "text/plain", Owner: a.Sub, Created: now, Updated: now, Content: []byte("remember the milk\n")}
	for _, f := range []*file{root, plan, notes} {
		s.files[f.ID] = f
	}
}

func (s *Sim) unshareFile(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok {
		return fmt.Errorf("no file %q", id)
	}
	f.Unshared = true
	return nil
}

// FilesOf returns the ids and names of an account's files (tests, admin).
func (s *Sim) FilesOf(email string) map[string]string {
	a := s.AccountFor(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, f := range s.files {
		if f.Owner == a.Sub {
			out[id] = f.Name
		}
	}
	return out
}

// visible reports whether the caller may see f: the owner's file, not
// unshared, and under drive.file only if this app created it. Through the
// Docs API the documents scopes see every Google Doc of the user; through
// Drive they see nothing (Drive methods do not accept them).
func (c *caller) visible(f *file) bool {
	if f == nil || f.Owner != c.AccountID || f.Unshared {
		return false
	}
	if c.has(ScopeDrive, ScopeDriveReadonly, ScopeDriveMetadata, ScopeDriveMetadataRO, ScopePrefix+"drive.photos.readonly", ScopePrefix+"drive.meet.readonly") {
		return true
	}
	if c.docsAPI && c.has(ScopeDocuments, ScopeDocumentsRO) && f.MimeType == MimeDoc {
		return true
	}
	return c.has(ScopeDriveFile, ScopeDriveAppdata) && f.CreatedBy == c.ClientID
}

var (
	readScopes   = []string{ScopeDrive, ScopeDriveAppdata, ScopeDriveFile, ScopePrefix + "drive.meet.readonly", ScopeDriveMetadata, ScopeDriveMetadataRO, ScopePrefix + "drive.photos.readonly", ScopeDriveReadonly}
	createScopes = []string{ScopeDrive, ScopeDriveAppdata, ScopeDriveFile}
	filesList    = apiMethod{ID: "google.apps.drive.v3.DriveFiles.List", Service: "drive.googleapis.com", Scopes: readScopes}
	filesGet     = apiMethod{ID: "google.apps.drive.v3.DriveFiles.Get", Service: "drive.googleapis.com", Scopes: readScopes}
	filesCreate  = apiMethod{ID: "google.apps.drive.v3.DriveFiles.Create", Service: "drive.googleapis.com", Scopes: createScopes}
	// files.delete accepts drive, drive.appdata and drive.file (the Drive
	// v3 discovery document).
	filesDelete = apiMethod{ID: "google.apps.drive.v3.DriveFiles.Delete", Service: "drive.googleapis.com", Scopes: createScopes}
)

func (s *Sim) registerDrive(mux *http.ServeMux, p string) {
	mux.HandleFunc("GET "+p+"/drive/v3/files", s.filesList)
	mux.HandleFunc("POST "+p+"/drive/v3/files", s.filesCreate)
	mux.HandleFunc("POST "+p+"/upload/drive/v3/files", s.filesCreate)
	// google.golang.org/api resolves media uploads against the host root
	// ("/upload/drive/v3/files"), whatever the endpoint option says.
	mux.HandleFunc("POST /upload/drive/v3/files", s.filesCreate)
	mux.HandleFunc("GET "+p+"/drive/v3/files/{id}", s.filesGet)
	mux.HandleFunc("DELETE "+p+"/drive/v3/files/{id}", s.filesDeleteHandler)
}

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// resource renders a file as the Drive v3 File resource.
func (f *file) resource() map[string]any {
	m := map[string]any{
		"kind": "drive#file", "id": f.ID, "name": f.Name, "mimeType": f.MimeType,
		"parents": nonNil(f.Parents), "createdTime": f.Created.Format(time.RFC3339Nano), "modifiedTime": f.Updated.Format(time.RFC3339Nano),
		"trashed": f.Trashed, "starred": false, "version": strconv.Itoa(f.Revision + 1),
	}
	if f.Description != "" {
		m["description"] = f.Description
	}
	switch f.MimeType {
	case MimeDoc:
		m["webViewLink"] = "https://docs.google.com/document/d/" + f.ID + "/edit?usp=drivesdk"
	case MimeFolder:
		m["webViewLink"] = "https://drive.google.com/drive/folders/" + f.ID
	default:
		m["size"] = strconv.Itoa(len(f.Content))
		m["webViewLink"] = "https://drive.google.com/file/d/" + f.ID + "/view?usp=drivesdk"
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Sim) notFound(w http.ResponseWriter, c *caller, id string) {
	s.apiError(w, http.StatusNotFound, legacyParamError(404, "notFound", "File not found: "+id+".", "fileId"), c.indent)
}

func (s *Sim) invalidParam(w http.ResponseWriter, c *caller, param, message string) {
	s.apiError(w, http.StatusBadRequest, legacyParamError(400, "invalid", message, param), c.indent)
}

func (s *Sim) filesList(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, filesList)
	if !ok {
		return
	}
	q := r.URL.Query()
	pageSize := 100
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.invalidParam(w, c, "pageSize", fmt.Sprintf("Invalid value '%s'. Values must be within the range: [1, 1000]", v))
			return
		}
		pageSize = n
	}
	match, err := parseQuery(q.Get("q"))
	if err != nil {
		s.invalidParam(w, c, "q", "Invalid Value")
		return
	}
	sel, err := parseFields(q.Get("fields"))
	if err != nil {
		s.invalidParam(w, c, "fields", "Invalid field selection "+q.Get("fields"))
		return
	}
	offset := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			s.invalidParam(w, c, "pageToken", "Invalid Value")
			return
		}
		offset = n
	}
	s.mu.Lock()
	var hits []*file
	for _, f := range s.files {
		if c.visible(f) && match(f) {
			hits = append(hits, f)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].Updated.Equal(hits[j].Updated) {
			return hits[i].Updated.After(hits[j].Updated) // most recently modified first
		}
		return hits[i].ID < hits[j].ID
	})
	var files []any
	for i := offset; i < len(hits) && i < offset+pageSize; i++ {
		files = append(files, hits[i].resource())
	}
	s.mu.Unlock()
	if files == nil {
		files = []any{}
	}
	out := map[string]any{"kind": "drive#fileList", "incompleteSearch": false, "files": files}
	if offset+pageSize < len(hits) {
		out["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + pageSize)))
	}
	if sel == nil {
		sel = fieldSel{"kind": nil, "incompleteSearch": nil, "nextPageToken": nil, "files": fieldSel{"kind": nil, "id": nil, "name": nil, "mimeType": nil}}
	}
	s.writeOK(w, c, http.StatusOK, sel.apply(out))
}

func (s *Sim) filesGet(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, filesGet)
	if !ok {
		return
	}
	id := r.PathValue("id")
	sel, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil {
		s.invalidParam(w, c, "fields", "Invalid field selection "+r.URL.Query().Get("fields"))
		return
	}
	s.mu.Lock()
	f := s.files[id]
	if !c.visible(f) {
		s.mu.Unlock()
		s.notFound(w, c, id)
		return
	}
	res := f.resource()
	content, mimeType := append([]byte(nil), f.Content...), f.MimeType
	s.mu.Unlock()
	if r.URL.Query().Get("alt") == "media" {
		if strings.HasPrefix(mimeType, "application/vnd.google-apps.") {
			s.apiError(w, http.StatusForbidden, legacyParamError(403, "fileNotDownloadable", "Only files with binary content can be downloaded. Use Export with Docs Editors files.", "alt"), c.indent)
			return
		}
		w.Header().Set("Content-Type", mimeType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(content)
		return
	}
	if sel == nil {
		sel = fieldSel{"kind": nil, "id": nil, "name": nil, "mimeType": nil}
	}
	s.writeOK(w, c, http.StatusOK, sel.apply(res))
}

type createMeta struct {
	Name        string   `json:"name"`
	MimeType    string   `json:"mimeType"`
	Description string   `json:"description"`
	Parents     []string `json:"parents"`
}

// filesCreate handles metadata-only creation and the media and multipart
// upload types. A Google Docs MIME type makes a real Google Doc (uploaded
// text is imported into it); any other type makes an ordinary file.
func (s *Sim) filesCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, filesCreate)
	if !ok {
		return
	}
	var meta createMeta
	var content []byte
	var contentType string
	body := http.MaxBytesReader(w, r.Body, 10<<20)
	switch ut := r.URL.Query().Get("uploadType"); ut {
	case "":
		if err := json.NewDecoder(body).Decode(&meta); err != nil && err != io.EOF {
			s.apiError(w, http.StatusBadRequest, legacyError(400, "global", "parseError", "Parse Error"), c.indent)
			return
		}
	case "media":
		b, err := io.ReadAll(body)
		if err != nil {
			s.apiError(w, http.StatusBadRequest, legacyError(400, "global", "badRequest", "Bad Request"), c.indent)
			return
		}
		content, contentType = b, r.Header.Get("Content-Type")
	case "multipart", "resumable":
		if ut == "resumable" {
			s.invalidParam(w, c, "uploadType", "Resumable uploads are not supported by the sandbox; use multipart")
			return
		}
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !strings.HasPrefix(mt, "multipart/") {
			s.apiError(w, http.StatusBadRequest, legacyError(400, "global", "badContent", "Media type '"+mt+"' is not supported. Valid media types: [multipart/related]"), c.indent)
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		part, err := mr.NextPart()
		if err == nil {
			err = json.NewDecoder(part).Decode(&meta)
		}
		if err == nil {
			part, err = mr.NextPart()
			if err == nil {
				contentType = part.Header.Get("Content-Type")
				content, err = io.ReadAll(part)
			}
		}
		if err != nil && err != io.EOF {
			s.apiError(w, http.StatusBadRequest, legacyError(400, "global", "badContent", "Bad multipart body"), c.indent)
			return
		}
	default:
		s.invalidParam(w, c, "uploadType", "Invalid Value")
		return
	}
	if meta.MimeType == "" {
		meta.MimeType = contentType
	}
	if meta.MimeType == "" {
		meta.MimeType = "application/octet-stream"
	}
	if mt, _, err := mime.ParseMediaType(meta.MimeType); err == nil {
		meta.MimeType = mt
	}
	if meta.Name == "" {
		meta.Name = "Untitled"
	}
	s.mu.Lock()
	for _, p := range meta.Parents {
		if pf := s.files[p]; !c.visible(pf) || pf.MimeType != MimeFolder {
			s.mu.Unlock()
			s.apiError(w, http.StatusNotFound, legacyParamError(404, "notFound", "File not found: "+p+".", "parents"), c.indent)
			return
		}
	}
	now := s.now().UTC()
	f := &file{ID: s.newIDLocked(), Name: meta.Name, MimeType: meta.MimeType, Description: meta.Description, Owner: c.AccountID,
		CreatedBy: c.ClientID, Parents: meta.Parents, Created: now, Updated: now}
	if f.MimeType == MimeDoc {
		f.Text, f.Revision = strings.TrimSuffix(string(content), "\n")+"\n", 1
	} else {
		f.Content = content
	}
	s.files[f.ID] = f
	res := f.resource()
	s.mu.Unlock()
	sel, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil || sel == nil {
		sel = fieldSel{"kind": nil, "id": nil, "name": nil, "mimeType": nil}
	}
	s.writeOK(w, c, http.StatusOK, sel.apply(res))
}

// filesDeleteHandler is files.delete: the file is gone for good (not
// trashed) and Drive answers 204 with an empty body; a file the caller
// cannot see is the usual 404.
func (s *Sim) filesDeleteHandler(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiAuth(w, r, filesDelete)
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	f := s.files[id]
	if !c.visible(f) {
		s.mu.Unlock()
		s.notFound(w, c, id)
		return
	}
	delete(s.files, id)
	s.mu.Unlock()
	w.Header().Set("Vary", "Origin, X-Origin")
	w.Header().Set("Server", "ESF")
	oauthcore.SetDate(w, s.providerNow())
	w.WriteHeader(http.StatusNoContent)
}
