package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// jsonMap encodes a map for a JSON column; nil becomes {}.
func jsonMap[V any](m map[string]V) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// jsonDoc validates a JSON document kept as the exact bytes given; empty
// stores def.
func jsonDoc(raw json.RawMessage, def, what string) (string, error) {
	if len(raw) == 0 {
		return def, nil
	}
	if !json.Valid(raw) {
		return "", fmt.Errorf("%s is not valid JSON", what)
	}
	return string(raw), nil
}

const runColumns = `id, tenant_id, user_id, workflow, bindings, actions, targets, state,
	blocked_binding, blocked_credential_id, blocked_class, blocked_reason, blocked_reconnect_url,
	created_at, updated_at, version`

func (q Queries) RunInsert(ctx context.Context, r *storage.Run) error {
	bindings, err := jsonMap(r.Bindings)
	if err != nil {
		return err
	}
	actions, err := jsonList(r.Actions)
	if err != nil {
		return err
	}
	targets, err := jsonDoc(r.Targets, "{}", "run targets")
	if err != nil {
		return err
	}
	b := r.Blocked
	_, err = q.W.Exec(ctx, `INSERT INTO runs (`+runColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.ID, r.TenantID, r.UserID, r.Workflow, bindings, actions, targets, r.State,
		b.Binding, b.CredentialID, b.Class, b.Reason, b.ReconnectURL, q.ts(r.CreatedAt), q.ts(r.UpdatedAt), r.Version)
	if err != nil || r.State.Terminal() {
		return q.mapErr(err)
	}
	seen := map[authgate.CredentialID]bool{}
	var rows [][]any
	for _, c := range r.Bindings {
		if !seen[c] {
			seen[c] = true
			rows = append(rows, []any{r.ID, r.TenantID, c})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return q.mapErr(q.W.ExecBatch(ctx, `INSERT INTO run_bindings (run_id, tenant_id, credential_id) VALUES ($1, $2, $3)`, rows))
}

func (q Queries) scanRun(s Row) (*storage.Run, error) {
	var r storage.Run
	var bindings, actions, targets []byte
	b := &r.Blocked
	err := s.Scan(&r.ID, &r.TenantID, &r.UserID, &r.Workflow, &bindings, &actions, &targets, &r.State,
		&b.Binding, &b.CredentialID, &b.Class, &b.Reason, &b.ReconnectURL, at(&r.CreatedAt), at(&r.UpdatedAt), &r.Version)
	if err != nil {
		return nil, q.mapErr(err)
	}
	if err := json.Unmarshal(bindings, &r.Bindings); err != nil {
		return nil, fmt.Errorf("run %s: bindings: %w", r.ID, err)
	}
	if err := json.Unmarshal(actions, &r.Actions); err != nil {
		return nil, fmt.Errorf("run %s: actions: %w", r.ID, err)
	}
	r.Targets = json.RawMessage(targets)
	return &r, nil
}

func (q Queries) RunGetByID(ctx context.Context, p storage.RunGetByIDParams) (*storage.Run, error) {
	return q.scanRun(q.R.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1 AND tenant_id = $2`+q.forUpdate(), p.ID, p.TenantID))
}

func (q Queries) RunList(ctx context.Context, p storage.RunListParams) ([]*storage.Run, error) {
	var w where
	w.add("tenant_id =", p.TenantID)
	if p.State != "" {
		w.add("state =", p.State)
	}
	if p.UserID != "" {
		w.add("user_id =", p.UserID)
	}
	if p.AfterID != "" {
		w.add("id"+q.D.ByteOrder+" >", p.AfterID)
	}
	query := `SELECT ` + runColumns + ` FROM runs` + w.String() + ` ORDER BY id` + q.D.ByteOrder
	query += w.limit(storage.ClampLimit(p.Limit, 100, 1000))
	return queryRows(ctx, q, q.R, q.scanRun, query, w.args...)
}

func (q Queries) RunListBlockedOn(ctx context.Context, p storage.RunListBlockedOnParams) ([]*storage.Run, error) {
	return queryRows(ctx, q, q.R, q.scanRun, `SELECT `+runColumns+` FROM runs
		WHERE tenant_id = $1 AND blocked_credential_id = $2 AND state = $3 AND id`+q.D.ByteOrder+` > $4
		ORDER BY id`+q.D.ByteOrder+` LIMIT $5`,
		p.TenantID, p.CredentialID, authgate.RunStateBlockedOnAuth, p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
}

func (q Queries) RunUpdateCAS(ctx context.Context, r *storage.Run) error {
	b := r.Blocked
	n, err := q.W.Exec(ctx, `UPDATE runs SET state = $1,
		blocked_binding = $2, blocked_credential_id = $3, blocked_class = $4, blocked_reason = $5, blocked_reconnect_url = $6,
		updated_at = $7, version = version + 1
		WHERE id = $8 AND tenant_id = $9 AND version = $10`,
		r.State, b.Binding, b.CredentialID, b.Class, b.Reason, b.ReconnectURL, q.ts(r.UpdatedAt), r.ID, r.TenantID, r.Version)
	if err = q.casResult(ctx, n, err, "runs", string(r.ID)); err != nil {
		return err
	}
	r.Version++
	if r.State.Terminal() {
		// A finished run needs no credential kept fresh.
		if _, err := q.W.Exec(ctx, `DELETE FROM run_bindings WHERE run_id = $1`, r.ID); err != nil {
			return q.mapErr(err)
		}
	}
	return nil
}

const runEntryColumns = `seq, tenant_id, run_id, at, kind, from_state, to_state, step_key, binding, class, reason, details`

func (q Queries) RunEntryInsert(ctx context.Context, e *storage.RunEntry) error {
	details, err := jsonObject(e.Details, "run entry details")
	if err != nil {
		return err
	}
	err = q.W.QueryRow(ctx, `INSERT INTO run_entries (tenant_id, run_id, at, kind, from_state, to_state, step_key, binding, class, reason, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
		e.TenantID, e.RunID, q.ts(e.At), e.Kind, e.FromState, e.ToState, e.StepKey, e.Binding, e.Class, e.Reason, details).Scan(&e.Seq)
	return q.mapErr(err)
}

func (q Queries) scanRunEntry(s Row) (storage.RunEntry, error) {
	var e storage.RunEntry
	var details []byte
	err := s.Scan(&e.Seq, &e.TenantID, &e.RunID, at(&e.At), &e.Kind, &e.FromState, &e.ToState, &e.StepKey, &e.Binding, &e.Class, &e.Reason, &details)
	if err != nil {
		return e, q.mapErr(err)
	}
	e.Details, err = compactJSON(details)
	return e, err
}

func (q Queries) RunEntryList(ctx context.Context, p storage.RunEntryListParams) ([]storage.RunEntry, error) {
	return queryRows(ctx, q, q.R, q.scanRunEntry, `SELECT `+runEntryColumns+` FROM run_entries
		WHERE tenant_id = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		p.TenantID, p.RunID, p.AfterSeq, storage.ClampLimit(p.Limit, 500, 5000))
}

const stepColumns = `tenant_id, run_id, key, actions, idempotency_key, status, attempts, credential_fps, error_class, output,
	started_at, updated_at, completed_at`

func (q Queries) scanStep(s Row) (*storage.Step, error) {
	var st storage.Step
	var actions, fps, output []byte
	err := s.Scan(&st.TenantID, &st.RunID, &st.Key, &actions, &st.IdempotencyKey, &st.Status, &st.Attempts, &fps, &st.ErrorClass, &output,
		at(&st.StartedAt), at(&st.UpdatedAt), at(&st.CompletedAt))
	if err != nil {
		return nil, q.mapErr(err)
	}
	if err := json.Unmarshal(actions, &st.Actions); err != nil {
		return nil, fmt.Errorf("step %s/%s: actions: %w", st.RunID, st.Key, err)
	}
	if err := json.Unmarshal(fps, &st.CredentialFingerprints); err != nil {
		return nil, fmt.Errorf("step %s/%s: credential_fps: %w", st.RunID, st.Key, err)
	}
	if output != nil {
		st.Output = json.RawMessage(output)
	}
	return &st, nil
}

func (q Queries) StepGet(ctx context.Context, p storage.StepGetParams) (*storage.Step, error) {
	return q.stepGet(ctx, q.R, p)
}

// stepGet reads a step on db: the writes that read back their own row read
// it on the write connection.
func (q Queries) stepGet(ctx context.Context, db DB, p storage.StepGetParams) (*storage.Step, error) {
	return q.scanStep(db.QueryRow(ctx, `SELECT `+stepColumns+` FROM run_steps WHERE tenant_id = $1 AND run_id = $2 AND key = $3`,
		p.TenantID, p.RunID, p.Key))
}

func (q Queries) StepList(ctx context.Context, p storage.StepListParams) ([]*storage.Step, error) {
	return queryRows(ctx, q, q.R, q.scanStep, `SELECT `+stepColumns+` FROM run_steps WHERE tenant_id = $1 AND run_id = $2 ORDER BY seq`,
		p.TenantID, p.RunID)
}

// stepKeyCheck turns a step whose idempotency key is not want into
// ErrConflict: one step, one idempotency key.
func stepKeyCheck(st *storage.Step, want string) (*storage.Step, error) {
	if st.IdempotencyKey != want {
		return nil, fmt.Errorf("%w: step %q has another idempotency key", storage.ErrConflict, st.Key)
	}
	return st, nil
}

func (q Queries) StepStart(ctx context.Context, p storage.StepStartParams) (*storage.Step, error) {
	actions, err := jsonList(p.Actions)
	if err != nil {
		return nil, err
	}
	fps, err := jsonMap(p.CredentialFingerprints)
	if err != nil {
		return nil, err
	}
	// A clash on (run, key) means a later gate of the same step; a clash on
	// (run, idempotency key) means another step claims the key: ErrConflict.
	n, err := q.W.Exec(ctx, `INSERT INTO run_steps (tenant_id, run_id, key, actions, idempotency_key, status, attempts, credential_fps, started_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $8) ON CONFLICT (run_id, key) DO NOTHING`,
		p.TenantID, p.RunID, p.Key, actions, p.IdempotencyKey, authgate.StepStatusStarted, fps, q.ts(p.At))
	if err != nil {
		return nil, q.mapErr(err)
	}
	if n == 0 {
		// A failed step may be retried; a completed one stays as it is.
		_, err = q.W.Exec(ctx, `UPDATE run_steps SET attempts = attempts + 1, status = $1, error_class = '', credential_fps = $2, updated_at = $3
			WHERE tenant_id = $4 AND run_id = $5 AND key = $6 AND idempotency_key = $7 AND status <> $8`,
			authgate.StepStatusStarted, fps, q.ts(p.At), p.TenantID, p.RunID, p.Key, p.IdempotencyKey, authgate.StepStatusCompleted)
		if err != nil {
			return nil, q.mapErr(err)
		}
	}
	st, err := q.stepGet(ctx, q.W, storage.StepGetParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key})
	if err != nil {
		return nil, err
	}
	return stepKeyCheck(st, p.IdempotencyKey)
}

func (q Queries) StepComplete(ctx context.Context, p storage.StepCompleteParams) (*storage.Step, bool, error) {
	output, err := jsonDoc(p.Output, "null", "step output")
	if err != nil {
		return nil, false, err
	}
	n, err := q.W.Exec(ctx, `UPDATE run_steps SET status = $1, output = $2, error_class = '', completed_at = $3, updated_at = $3
		WHERE tenant_id = $4 AND run_id = $5 AND key = $6 AND idempotency_key = $7 AND status <> $1`,
		authgate.StepStatusCompleted, output, q.ts(p.At), p.TenantID, p.RunID, p.Key, p.IdempotencyKey)
	if err != nil {
		return nil, false, q.mapErr(err)
	}
	st, err := q.stepGet(ctx, q.W, storage.StepGetParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key})
	if err != nil {
		return nil, false, err
	}
	st, err = stepKeyCheck(st, p.IdempotencyKey)
	return st, err == nil && n == 1, err
}

func (q Queries) StepFail(ctx context.Context, p storage.StepFailParams) (bool, error) {
	n, err := q.W.Exec(ctx, `UPDATE run_steps SET status = $1, error_class = $2, updated_at = $3
		WHERE tenant_id = $4 AND run_id = $5 AND key = $6 AND status <> $7`,
		authgate.StepStatusFailed, p.Class, q.ts(p.At), p.TenantID, p.RunID, p.Key, authgate.StepStatusCompleted)
	if err != nil {
		return false, q.mapErr(err)
	}
	if n == 1 {
		return true, nil
	}
	_, err = q.stepGet(ctx, q.W, storage.StepGetParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key})
	return false, err
}

func (q Queries) WebhookEndpointInsert(ctx context.Context, e *storage.WebhookEndpoint) error {
	if e.Secret.IsZero() {
		return errors.New("webhook endpoint: no sealed secret")
	}
	_, err := q.W.Exec(ctx, `INSERT INTO webhook_endpoints (id, tenant_id, url, secret_kid, secret_ct, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.TenantID, e.URL, e.Secret.KeyID, e.Secret.Data, q.ts(e.CreatedAt))
	return q.mapErr(err)
}

const endpointColumns = `id, tenant_id, url, secret_kid, secret_ct, created_at`

func (q Queries) scanEndpoint(s Row) (*storage.WebhookEndpoint, error) {
	var e storage.WebhookEndpoint
	if err := s.Scan(&e.ID, &e.TenantID, &e.URL, &e.Secret.KeyID, &e.Secret.Data, at(&e.CreatedAt)); err != nil {
		return nil, q.mapErr(err)
	}
	return &e, nil
}

func (q Queries) WebhookEndpointList(ctx context.Context, tenant authgate.TenantID) ([]*storage.WebhookEndpoint, error) {
	return queryRows(ctx, q, q.R, q.scanEndpoint, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id`, tenant)
}

func (q Queries) WebhookEndpointListSealedNotWith(ctx context.Context, p storage.WebhookEndpointListSealedNotWithParams) ([]*storage.WebhookEndpoint, error) {
	return queryRows(ctx, q, q.R, q.scanEndpoint, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE id`+q.D.ByteOrder+` > $1 AND secret_kid <> $2 ORDER BY id`+q.D.ByteOrder+` LIMIT $3`,
		p.AfterID, p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q Queries) WebhookEndpointReseal(ctx context.Context, p storage.WebhookEndpointResealParams) error {
	if p.Secret.IsZero() {
		return errors.New("webhook endpoint: no sealed secret")
	}
	n, err := q.W.Exec(ctx, `UPDATE webhook_endpoints SET secret_kid = $1, secret_ct = $2 WHERE id = $3 AND secret_kid = $4`,
		p.Secret.KeyID, p.Secret.Data, p.ID, p.OldKeyID)
	return q.casResult(ctx, n, err, "webhook_endpoints", string(p.ID))
}

func (q Queries) WebhookEndpointDelete(ctx context.Context, p storage.WebhookEndpointDeleteParams) error {
	n, err := q.W.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2`, p.ID, p.TenantID)
	return affectedOne(n, err, q.mapErr)
}

const deliveryColumns = `id, tenant_id, endpoint_id, event_type, payload, attempts, next_attempt_at, delivered_at, last_error, created_at, dead_at`

func (q Queries) WebhookDeliveryInsert(ctx context.Context, d *storage.WebhookDelivery) error {
	if !json.Valid(d.Payload) {
		return errors.New("webhook payload is not valid JSON")
	}
	_, err := q.W.Exec(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.ID, d.TenantID, d.EndpointID, d.EventType, []byte(d.Payload), d.Attempts, q.ts(d.NextAttemptAt), q.ts(d.DeliveredAt), d.LastError, q.ts(d.CreatedAt), q.ts(d.DeadAt))
	return q.mapErr(err)
}

func (q Queries) scanDelivery(s Row) (*storage.WebhookDelivery, error) {
	var d storage.WebhookDelivery
	var payload []byte
	err := s.Scan(&d.ID, &d.TenantID, &d.EndpointID, &d.EventType, &payload, &d.Attempts, at(&d.NextAttemptAt), at(&d.DeliveredAt), &d.LastError, at(&d.CreatedAt), at(&d.DeadAt))
	if err != nil {
		return nil, q.mapErr(err)
	}
	d.Payload = json.RawMessage(payload)
	return &d, nil
}

func (q Queries) WebhookDeliveryGet(ctx context.Context, id authgate.WebhookDeliveryID) (*storage.WebhookDelivery, error) {
	return q.scanDelivery(q.R.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
}

func (q Queries) WebhookDeliveryRecordAttempt(ctx context.Context, p storage.WebhookDeliveryRecordAttemptParams) error {
	var n int64
	var err error
	if p.Delivered {
		n, err = q.W.Exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = $1, last_error = ''
			WHERE id = $2 AND delivered_at IS NULL`, q.ts(p.At), p.ID)
	} else {
		var dead any
		if p.Dead {
			dead = q.ts(p.At)
		}
		n, err = q.W.Exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = COALESCE($2, next_attempt_at), dead_at = $3
			WHERE id = $4 AND delivered_at IS NULL`, p.LastError, q.ts(p.NextAttemptAt), dead, p.ID)
	}
	return affectedOne(n, err, q.mapErr)
}

func (q Queries) WebhookDeliveryList(ctx context.Context, p storage.WebhookDeliveryListParams) ([]*storage.WebhookDelivery, error) {
	where, args := `tenant_id = $1`, []any{p.TenantID}
	add := func(cond string, v any) {
		args = append(args, v)
		where += fmt.Sprintf(` AND `+cond, len(args))
	}
	if p.EndpointID != "" {
		add(`endpoint_id = $%d`, p.EndpointID)
	}
	if p.BeforeID != "" {
		add(`id`+q.D.ByteOrder+` < $%d`, p.BeforeID)
	}
	switch p.Status {
	case storage.WebhookDeliveryDelivered:
		where += ` AND delivered_at IS NOT NULL`
	case storage.WebhookDeliveryDead:
		where += ` AND dead_at IS NOT NULL AND delivered_at IS NULL`
	case storage.WebhookDeliveryPending:
		where += ` AND dead_at IS NULL AND delivered_at IS NULL`
	}
	args = append(args, storage.ClampLimit(p.Limit, 100, 1000))
	return queryRows(ctx, q, q.R, q.scanDelivery, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+where+
		` ORDER BY created_at DESC, id`+q.D.ByteOrder+` DESC LIMIT $`+fmt.Sprint(len(args)), args...)
}

func (q Queries) WebhookDeliveryDeleteFinished(ctx context.Context, p storage.WebhookDeliveryDeleteFinishedParams) (int64, error) {
	n, err := q.W.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
		WHERE (delivered_at IS NOT NULL OR dead_at IS NOT NULL) AND created_at < $1 LIMIT $2)`, q.ts(p.Before), storage.ClampLimit(p.Limit, 1000, 10000))
	return n, q.mapErr(err)
}

func (q Queries) IdempotentResultPut(ctx context.Context, p storage.IdempotentResultPutParams) ([]byte, bool, error) {
	n, err := q.W.Exec(ctx, `INSERT INTO idempotent_results (tenant_id, scope, key, result, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, scope, key) DO NOTHING`, p.TenantID, p.Scope, p.Key, p.Result, q.ts(p.At))
	if err != nil {
		return nil, false, q.mapErr(err)
	}
	if n == 1 {
		return p.Result, true, nil
	}
	// Read on the writer: the row another writer just committed.
	res, err := q.idempotentGet(ctx, q.W, storage.IdempotentResultGetParams{TenantID: p.TenantID, Scope: p.Scope, Key: p.Key})
	return res, false, err
}

func (q Queries) IdempotentResultGet(ctx context.Context, p storage.IdempotentResultGetParams) ([]byte, error) {
	return q.idempotentGet(ctx, q.R, p)
}

func (q Queries) idempotentGet(ctx context.Context, db DB, p storage.IdempotentResultGetParams) ([]byte, error) {
	var res []byte
	err := db.QueryRow(ctx, `SELECT result FROM idempotent_results WHERE tenant_id = $1 AND scope = $2 AND key = $3`, p.TenantID, p.Scope, p.Key).Scan(&res)
	return res, q.mapErr(err)
}

func (q Queries) IdempotentResultDeleteBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	n, err := q.W.Exec(ctx, `DELETE FROM idempotent_results WHERE (tenant_id, scope, key) IN (SELECT tenant_id, scope, key FROM idempotent_results
		WHERE created_at < $1 LIMIT $2)`, q.ts(before), storage.ClampLimit(limit, 1000, 10000))
	return n, q.mapErr(err)
}
