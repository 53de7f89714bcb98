-- 0010: durable work on River. River's own tables come from rivermigrate in
-- the same migration transaction; these are authgate's: a delivery that
-- exhausted its attempts is dead (kept, visible, pruned later), and MCP
-- write results are kept by idempotency key so a retried tool call on any
-- instance writes once. Times are INTEGER microseconds, as in 0001.
ALTER TABLE webhook_deliveries ADD COLUMN dead_at INTEGER;
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE delivered_at IS NOT NULL OR dead_at IS NOT NULL;

CREATE TABLE idempotent_results (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotent_results_created ON idempotent_results (created_at);

-- Which credentials the unfinished runs are bound to (kept by RunInsert and
-- RunUpdateCAS), so proactive refresh finds them with an index instead of
-- reading every run's bindings.
CREATE TABLE run_bindings (
    run_id        TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    PRIMARY KEY (run_id, credential_id)
);
CREATE INDEX run_bindings_credential ON run_bindings (credential_id);
INSERT OR IGNORE INTO run_bindings (run_id, tenant_id, credential_id)
    SELECT r.id, r.tenant_id, j.value FROM runs r, json_each(r.bindings) j
    WHERE r.state IN ('pending', 'running', 'blocked_on_auth');

-- When each credential's next health check is due (the sweep's schedule);
-- no row: never planned yet.
CREATE TABLE credential_checks (
    credential_id TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    next_check_at INTEGER NOT NULL
);
CREATE INDEX credentials_access_expiry ON credentials (access_token_expires_at) WHERE status = 'active';

-- The proactive-refresh planner's next free slot per provider: refreshes of
-- one provider are scheduled at least 1/rate apart across every instance.
CREATE TABLE refresh_slots (
    provider TEXT PRIMARY KEY,
    next_at  INTEGER NOT NULL
);

-- Which token (by its expiry) each credential's proactive refresh was
-- planned for, so a planning pass reads only what is not planned yet.
CREATE TABLE refresh_plans (
    credential_id TEXT PRIMARY KEY,
    expires_at    INTEGER NOT NULL
);
