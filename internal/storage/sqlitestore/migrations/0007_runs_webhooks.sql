-- 0007: the run ledger (runs, their timelines and steps) and webhooks
-- (endpoints with sealed secrets, deliveries stored before they are sent).
-- 0006 belongs to the connectors. Times are INTEGER microseconds, as in 0001.
-- Checkpoints, targets and payloads are kept as the exact bytes given.
CREATE TABLE runs (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    user_id               TEXT NOT NULL,
    workflow              TEXT NOT NULL,
    bindings              TEXT NOT NULL DEFAULT '{}',
    actions               TEXT NOT NULL DEFAULT '[]',
    targets               TEXT NOT NULL DEFAULT '{}',
    state                 TEXT NOT NULL,
    blocked_binding       TEXT NOT NULL DEFAULT '',
    blocked_credential_id TEXT NOT NULL DEFAULT '',
    blocked_class         TEXT NOT NULL DEFAULT '',
    blocked_reason        TEXT NOT NULL DEFAULT '',
    blocked_reconnect_url TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    version               INTEGER NOT NULL
);
CREATE INDEX runs_tenant_id ON runs (tenant_id, id);
CREATE INDEX runs_blocked_on ON runs (tenant_id, blocked_credential_id) WHERE state = 'blocked_on_auth';

CREATE TABLE run_entries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    run_id     TEXT NOT NULL REFERENCES runs (id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    from_state TEXT NOT NULL DEFAULT '',
    to_state   TEXT NOT NULL DEFAULT '',
    step_key   TEXT NOT NULL DEFAULT '',
    binding    TEXT NOT NULL DEFAULT '',
    class      TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX run_entries_run_seq ON run_entries (run_id, seq);

-- A timeline is history, like credential_events.
CREATE TRIGGER run_entries_no_update BEFORE UPDATE ON run_entries
BEGIN SELECT RAISE(ABORT, 'run_entries is append-only'); END;
CREATE TRIGGER run_entries_no_delete BEFORE DELETE ON run_entries
BEGIN SELECT RAISE(ABORT, 'run_entries is append-only'); END;

CREATE TABLE run_steps (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    key             TEXT NOT NULL,
    actions         TEXT NOT NULL DEFAULT '[]',
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    credential_fps  TEXT NOT NULL DEFAULT '{}',
    error_class     TEXT NOT NULL DEFAULT '',
    output          TEXT,
    started_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER,
    UNIQUE (run_id, key),
    UNIQUE (run_id, idempotency_key)
);

CREATE TABLE webhook_endpoints (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    url        TEXT NOT NULL,
    secret_kid TEXT NOT NULL,
    secret_ct  BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);
