package notionsim

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// call is one authenticated API request.
type call struct {
	bot    *bot
	access oauthcore.Access
	// modern: Notion-Version 2025-09-03 or later (data sources).
	modern bool
}

var knownVersions = []string{"2021-05-13", "2021-08-16", "2022-02-22", Version2022, Version2025, Version2026}

// api wraps an endpoint: version header, token, rate limit, faults and the
// capabilities it needs (any one of caps; nil: none).
func (s *Sim) api(caps []string, h func(w http.ResponseWriter, r *http.Request, c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.core.CountAPI()
		version := r.Header.Get("Notion-Version")
		if version == "" {
			s.fail(w, http.StatusBadRequest, "missing_version", "Notion-Version header failed validation: Notion-Version header should be defined, instead was undefined.")
			return
		}
		if !containsAny(knownVersions, version) {
			s.fail(w, http.StatusBadRequest, "validation_error", "Notion-Version header failed validation: Notion-Version header should be one of "+strings.Join(knownVersions, ", ")+", instead was "+strconv.Quote(version)+".")
			return
		}
		a, err := s.core.LookupAccess(oauthcore.BearerToken(r))
		if err != nil {
			s.fail(w, http.StatusUnauthorized, "unauthorized", "API token is invalid.")
			return
		}
		s.mu.Lock()
		b := s.bots[a.AccountID]
		owner := s.usersByID[b.OwnerID].Email
		wait := s.takeRateLocked(b)
		s.mu.Unlock()
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			s.fail(w, http.StatusTooManyRequests, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
			return
		}
		if s.requestFaults(w, r, owner, fault.TargetAPI) {
			return
		}
		if caps != nil && !containsAny(a.Scopes, caps...) {
			s.fail(w, http.StatusForbidden, "restricted_resource", "API token does not have access to this resource.")
			return
		}
		h(w, r, &call{bot: b, access: a, modern: version >= Version2025})
	}
}

// takeRateLocked spends one request from the install's bucket; it returns
// the seconds to wait (Retry-After) when the bucket is empty, else 0.
func (s *Sim) takeRateLocked(b *bot) int {
	if s.rate < 0 {
		return 0
	}
	now := s.now()
	b.tokens = math.Min(float64(s.burst), b.tokens+now.Sub(b.last).Seconds()*s.rate)
	b.last = now
	if b.tokens < 1 {
		return int(math.Ceil((1 - b.tokens) / s.rate))
	}
	b.tokens--
	return 0
}

// visibleLocked reports whether the bot may see the object: it, or a page
// or database above it, was shared with the integration.
func (s *Sim) visibleLocked(b *bot, id string) (*object, bool) {
	o, ok := s.objects[id]
	if !ok || o.WorkspaceID != b.WorkspaceID {
		return nil, false
	}
	for cur := o; cur != nil; cur = s.objects[cur.ParentID] {
		if b.Shared[cur.ID] {
			return o, true
		}
		if cur.ParentType == "workspace" {
			break
		}
	}
	return nil, false
}

func (s *Sim) clientName(id string) string {
	if c, err := s.core.Client(id); err == nil {
		return c.Name
	}
	return "integration"
}

func (s *Sim) notFound(w http.ResponseWriter, c *call, kind, id string) {
	s.fail(w, http.StatusNotFound, "object_not_found", fmt.Sprintf("Could not find %s with ID: %s. Make sure the relevant pages and databases are shared with your integration %q.", kind, id, s.clientName(c.bot.ClientID)))
}

func (s *Sim) validation(w http.ResponseWriter, msg string) {
	s.fail(w, http.StatusBadRequest, "validation_error", msg)
}

func (s *Sim) botUser(c *call) map[string]any {
	owner := s.usersByID[c.bot.OwnerID]
	return map[string]any{"object": "user", "id": c.bot.ID, "name": s.clientName(c.bot.ClientID), "avatar_url": nil, "type": "bot",
		"bot": map[string]any{"owner": map[string]any{"type": "user", "user": map[string]any{"object": "user", "id": owner.ID}},
			"workspace_name": c.bot.Workspace, "workspace_id": c.bot.WorkspaceID, "workspace_limits": map[string]any{"max_file_upload_size_in_bytes": 5368709120}}}
}

func (s *Sim) usersMe(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	u := s.botUser(c)
	s.mu.Unlock()
	s.ok(w, u)
}

func list(results []any, typ string) map[string]any {
	if results == nil {
		results = []any{}
	}
	return map[string]any{"object": "list", "results": results, "next_cursor": nil, "has_more": false, "type": typ, typ: map[string]any{}}
}

func (s *Sim) usersList(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, ws := range s.workspaces {
		if ws.ID != c.bot.WorkspaceID {
			continue
		}
		for _, id := range ws.Members {
			u := s.usersByID[id]
			person := map[string]any{}
			if containsAny(c.access.Scopes, CapReadUserEmail) {
				person["email"] = u.Email
			}
			out = append(out, map[string]any{"object": "user", "id": u.ID, "name": u.Name, "avatar_url": nil, "type": "person", "person": person})
		}
	}
	out = append(out, s.botUser(c))
	s.ok(w, list(out, "user"))
}

func (s *Sim) pageJSON(o *object, modern bool) map[string]any {
	parent := map[string]any{"type": o.ParentType}
	switch o.ParentType {
	case "workspace":
		parent["workspace"] = true
	case "database_id":
		if modern {
			parent = map[string]any{"type": "data_source_id", "data_source_id": s.objects[o.ParentID].DataSourceID, "database_id": o.ParentID}
		} else {
			parent["database_id"] = o.ParentID
		}
	default:
		parent[o.ParentType] = o.ParentID
	}
	props := map[string]any{"title": map[string]any{"id": "title", "type": "title", "title": richText(o.Title)}}
	if o.ParentType == "database_id" {
		props = map[string]any{"Name": map[string]any{"id": "title", "type": "title", "title": richText(o.Title)},
			"Status": map[string]any{"id": "s%3Ak", "type": "select", "select": nil}}
	}
	by := map[string]any{"object": "user", "id": o.CreatedBy}
	if o.CreatedBy == "" {
		by["id"] = uuid("notion-seed-author")
	}
	return map[string]any{"object": "page", "id": o.ID, "created_time": o.Created.Format("2006-01-02T15:04:05.000Z"), "last_edited_time": o.Updated.Format("2006-01-02T15:04:05.000Z"),
		"created_by": by, "last_edited_by": by, "cover": nil, "icon": nil, "parent": parent, "archived": false, "in_trash": false,
		"properties": props, "url": "https://www.notion.so/" + strings.ReplaceAll(o.Title, " ", "-") + "-" + strings.ReplaceAll(o.ID, "-", ""), "public_url": nil}
}

func (s *Sim) databaseJSON(o *object, modern bool) map[string]any {
	out := map[string]any{"object": "database", "id": o.ID, "created_time": o.Created.Format("2006-01-02T15:04:05.000Z"), "last_edited_time": o.Updated.Format("2006-01-02T15:04:05.000Z"),
		"title": richText(o.Title), "description": []any{}, "parent": map[string]any{"type": "workspace", "workspace": true}, "is_inline": false, "archived": false, "in_trash": false,
		"url": "https://www.notion.so/" + strings.ReplaceAll(o.ID, "-", ""), "public_url": nil, "icon": nil, "cover": nil}
	if modern {
		out["data_sources"] = []any{map[string]any{"id": o.DataSourceID, "name": o.Title}}
	} else {
		out["properties"] = o.Properties
	}
	return out
}

func (s *Sim) dataSourceJSON(o *object) map[string]any {
	return map[string]any{"object": "data_source", "id": o.DataSourceID, "title": richText(o.Title), "properties": o.Properties,
		"parent": map[string]any{"type": "database_id", "database_id": o.ID}, "database_parent": map[string]any{"type": "workspace", "workspace": true},
		"created_time": o.Created.Format("2006-01-02T15:04:05.000Z"), "last_edited_time": o.Updated.Format("2006-01-02T15:04:05.000Z"), "archived": false, "in_trash": false}
}

func (s *Sim) search(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Query  string `json:"query"`
		Filter *struct {
			Property string `json:"property"`
			Value    string `json:"value"`
		} `json:"filter"`
		PageSize int `json:"page_size"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
			return
		}
	}
	dbKind := "database"
	if c.modern {
		dbKind = "data_source"
	}
	if body.Filter != nil && (body.Filter.Property != "object" || (body.Filter.Value != "page" && body.Filter.Value != dbKind)) {
		s.validation(w, fmt.Sprintf("body failed validation: body.filter.value should be \"page\" or %q, instead was %q.", dbKind, body.Filter.Value))
		return
	}
	if body.PageSize < 0 || body.PageSize > 100 {
		s.validation(w, "body failed validation: body.page_size should be a number between 1 and 100.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*object
	for id := range s.objects {
		o, ok := s.visibleLocked(c.bot, id)
		if !ok || !strings.Contains(strings.ToLower(o.Title), strings.ToLower(body.Query)) {
			continue
		}
		if body.Filter != nil && (body.Filter.Value == "page") != (o.Kind == "page") {
			continue
		}
		hits = append(hits, o)
	}
	sort.Slice(hits, func(i, j int) bool {
		return hits[i].Updated.After(hits[j].Updated) || hits[i].Updated.Equal(hits[j].Updated) && hits[i].ID < hits[j].ID
	})
	var out []any
	for _, o := range hits {
		switch {
		case o.Kind == "page":
			out = append(out, s.pageJSON(o, c.modern))
		case c.modern:
			out = append(out, s.dataSourceJSON(o))
		default:
			out = append(out, s.databaseJSON(o, false))
		}
	}
	s.ok(w, list(out, "page_or_"+dbKind))
}

func (s *Sim) databaseGet(w http.ResponseWriter, r *http.Request, c *call) {
	id := normID(r.PathValue("id"))
	s.mu.Lock()
	o, ok := s.visibleLocked(c.bot, id)
	if !ok || o.Kind != "database" {
		s.mu.Unlock()
		s.notFound(w, c, "database", r.PathValue("id"))
		return
	}
	out := s.databaseJSON(o, c.modern)
	s.mu.Unlock()
	s.ok(w, out)
}

func (s *Sim) dataSourceGet(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.modern {
		s.fail(w, http.StatusBadRequest, "invalid_request_url", "Invalid request URL.")
		return
	}
	s.mu.Lock()
	o := s.databaseByDataSourceLocked(c, normID(r.PathValue("id")))
	if o == nil {
		s.mu.Unlock()
		s.notFound(w, c, "data source", r.PathValue("id"))
		return
	}
	out := s.dataSourceJSON(o)
	s.mu.Unlock()
	s.ok(w, out)
}

func (s *Sim) databaseByDataSourceLocked(c *call, dsID string) *object {
	for id, o := range s.objects {
		if o.Kind == "database" && o.DataSourceID == dsID {
			if v, ok := s.visibleLocked(c.bot, id); ok {
				return v
			}
		}
	}
	return nil
}

// databaseQuery serves POST /v1/databases/{id}/query (Notion-Version up to
// 2022-06-28) and POST /v1/data_sources/{id}/query (2025-09-03 and later).
func (s *Sim) databaseQuery(w http.ResponseWriter, r *http.Request, c *call) {
	viaDataSource := strings.Contains(r.URL.Path, "/data_sources/")
	switch {
	case viaDataSource && !c.modern:
		s.fail(w, http.StatusBadRequest, "invalid_request_url", "Invalid request URL.")
		return
	case !viaDataSource && c.modern:
		s.fail(w, http.StatusBadRequest, "invalid_request", "Database query moved in Notion-Version "+Version2025+": use POST /v1/data_sources/{data_source_id}/query.")
		return
	}
	if r.ContentLength != 0 {
		var body map[string]any
		if err := decodeJSON(r, &body); err != nil {
			s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
			return
		}
	}
	s.mu.Lock()
	var db *object
	if viaDataSource {
		db = s.databaseByDataSourceLocked(c, normID(r.PathValue("id")))
	} else if o, ok := s.visibleLocked(c.bot, normID(r.PathValue("id"))); ok && o.Kind == "database" {
		db = o
	}
	if db == nil {
		s.mu.Unlock()
		kind := "database"
		if viaDataSource {
			kind = "data source"
		}
		s.notFound(w, c, kind, r.PathValue("id"))
		return
	}
	var rows []*object
	for _, o := range s.objects {
		if o.ParentID == db.ID {
			rows = append(rows, o)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Created.Before(rows[j].Created) || rows[i].Created.Equal(rows[j].Created) && rows[i].ID < rows[j].ID
	})
	var out []any
	for _, o := range rows {
		out = append(out, s.pageJSON(o, c.modern))
	}
	s.mu.Unlock()
	s.ok(w, list(out, "page_or_database"))
}

func (s *Sim) pageGet(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	o, ok := s.visibleLocked(c.bot, normID(r.PathValue("id")))
	if !ok || o.Kind != "page" {
		s.mu.Unlock()
		s.notFound(w, c, "page", r.PathValue("id"))
		return
	}
	out := s.pageJSON(o, c.modern)
	s.mu.Unlock()
	s.ok(w, out)
}

func (s *Sim) pageCreate(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Parent     map[string]any   `json:"parent"`
		Properties map[string]any   `json:"properties"`
		Children   []map[string]any `json:"children"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	if body.Parent == nil {
		s.validation(w, "body failed validation: body.parent should be defined, instead was `undefined`.")
		return
	}
	if body.Properties == nil {
		s.validation(w, "body failed validation: body.properties should be defined, instead was `undefined`.")
		return
	}
	if err := validBlocks(body.Children); err != "" {
		s.validation(w, err)
		return
	}
	s.mu.Lock()
	parentID, missingKind, missingID, invalid := s.resolveParentLocked(c, body.Parent)
	var out map[string]any
	if parentID != "" {
		now := s.now().UTC()
		parentType := "page_id"
		if s.objects[parentID].Kind == "database" {
			parentType = "database_id"
		}
		o := &object{ID: s.newIDLocked("page"), Kind: "page", Title: titleOf(body.Properties), WorkspaceID: c.bot.WorkspaceID,
			ParentType: parentType, ParentID: parentID, Created: now, Updated: now, CreatedBy: c.bot.ID}
		for _, ch := range body.Children {
			o.Children = append(o.Children, s.blockLocked(ch, c))
		}
		s.objects[o.ID] = o
		out = s.pageJSON(o, c.modern)
	}
	s.mu.Unlock()
	switch {
	case invalid != "":
		s.validation(w, invalid)
	case missingKind != "":
		s.notFound(w, c, missingKind, missingID)
	default:
		s.ok(w, out)
	}
}

// resolveParentLocked finds the visible parent a new page goes under: a
// page, or a database (by database_id up to 2022-06-28, by data_source_id
// from 2025-09-03).
func (s *Sim) resolveParentLocked(c *call, parent map[string]any) (id, missingKind, missingID, invalid string) {
	str := func(k string) (string, bool) { v, ok := parent[k].(string); return v, ok }
	if pid, ok := str("page_id"); ok {
		if o, vis := s.visibleLocked(c.bot, normID(pid)); vis && o.Kind == "page" {
			return o.ID, "", "", ""
		}
		return "", "page", pid, ""
	}
	if did, ok := str("database_id"); ok && !c.modern {
		if o, vis := s.visibleLocked(c.bot, normID(did)); vis && o.Kind == "database" {
			return o.ID, "", "", ""
		}
		return "", "database", did, ""
	}
	if dsid, ok := str("data_source_id"); ok && c.modern {
		if o := s.databaseByDataSourceLocked(c, normID(dsid)); o != nil {
			return o.ID, "", "", ""
		}
		return "", "data source", dsid, ""
	}
	if c.modern {
		return "", "", "", "body failed validation: body.parent should have page_id or data_source_id."
	}
	return "", "", "", "body failed validation: body.parent should have page_id or database_id."
}

func titleOf(props map[string]any) string {
	for _, key := range []string{"title", "Name"} {
		p, ok := props[key].(map[string]any)
		if !ok {
			continue
		}
		parts, _ := p["title"].([]any)
		var b strings.Builder
		for _, part := range parts {
			m, _ := part.(map[string]any)
			if t, ok := m["text"].(map[string]any); ok {
				s, _ := t["content"].(string)
				b.WriteString(s)
			}
		}
		return b.String()
	}
	return ""
}

func validBlocks(children []map[string]any) string {
	if len(children) > 100 {
		return "body failed validation: body.children.length should be ≤ `100`, instead was `" + strconv.Itoa(len(children)) + "`."
	}
	for i, ch := range children {
		typ, _ := ch["type"].(string)
		if typ == "" {
			if len(ch) == 1 || (len(ch) == 2 && ch["object"] == "block") {
				for k := range ch {
					if k != "object" {
						typ = k
					}
				}
			}
		}
		if typ == "" || ch[typ] == nil {
			return fmt.Sprintf("body failed validation: body.children[%d].type should be defined, instead was `undefined`.", i)
		}
	}
	return ""
}

// blockLocked stores a new block as Notion returns it: with an id, object,
// timestamps and authorship added.
func (s *Sim) blockLocked(ch map[string]any, c *call) map[string]any {
	typ, _ := ch["type"].(string)
	if typ == "" {
		for k := range ch {
			if k != "object" {
				typ = k
			}
		}
	}
	now := s.now().UTC().Format("2006-01-02T15:04:05.000Z")
	by := map[string]any{"object": "user", "id": c.bot.ID}
	return map[string]any{"object": "block", "id": s.newIDLocked("block"), "type": typ, typ: ch[typ], "created_time": now, "last_edited_time": now,
		"created_by": by, "last_edited_by": by, "has_children": false, "archived": false, "in_trash": false}
}

func (s *Sim) blocksAppend(w http.ResponseWriter, r *http.Request, c *call) {
	var body struct {
		Children []map[string]any `json:"children"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	if body.Children == nil {
		s.validation(w, "body failed validation: body.children should be defined, instead was `undefined`.")
		return
	}
	if err := validBlocks(body.Children); err != "" {
		s.validation(w, err)
		return
	}
	s.mu.Lock()
	o, ok := s.visibleLocked(c.bot, normID(r.PathValue("id")))
	var added []any
	if ok && o.Kind == "page" {
		for _, ch := range body.Children {
			b := s.blockLocked(ch, c)
			o.Children = append(o.Children, b)
			added = append(added, b)
		}
		o.Updated = s.now().UTC()
	}
	s.mu.Unlock()
	if !ok || o.Kind != "page" {
		s.notFound(w, c, "block", r.PathValue("id"))
		return
	}
	s.ok(w, list(added, "block"))
}

func (s *Sim) blocksList(w http.ResponseWriter, r *http.Request, c *call) {
	s.mu.Lock()
	o, ok := s.visibleLocked(c.bot, normID(r.PathValue("id")))
	var out []any
	if ok {
		for _, b := range o.Children {
			out = append(out, b)
		}
	}
	s.mu.Unlock()
	if !ok {
		s.notFound(w, c, "block", r.PathValue("id"))
		return
	}
	s.ok(w, list(out, "block"))
}
