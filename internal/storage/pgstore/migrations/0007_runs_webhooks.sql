-- 0007: the run ledger (runs, their timelines and steps) and webhooks
-- (endpoints with sealed secrets, deliveries stored before they are sent).
-- 0006 belongs to the connectors. Checkpoints, targets and payloads are TEXT
-- and BYTEA, not JSONB: they come back as the exact bytes given (a payload
-- is signed).
CREATE TABLE runs (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    user_id               TEXT NOT NULL,
    workflow              TEXT NOT NULL,
    bindings              JSONB NOT NULL DEFAULT '{}',
    actions               JSONB NOT NULL DEFAULT '[]',
    targets               TEXT NOT NULL DEFAULT '{}',
    state                 TEXT NOT NULL,
    blocked_binding       TEXT NOT NULL DEFAULT '',
    blocked_credential_id TEXT NOT NULL DEFAULT '',
    blocked_class         TEXT NOT NULL DEFAULT '',
    blocked_reason        TEXT NOT NULL DEFAULT '',
    blocked_reconnect_url TEXT NOT NULL DEFAULT '',
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX runs_tenant_id ON runs (tenant_id, id COLLATE "C");
CREATE INDEX runs_blocked_on ON runs (tenant_id, blocked_credential_id) WHERE state = 'blocked_on_auth';

CREATE TABLE run_entries (
    seq        BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    run_id     TEXT NOT NULL REFERENCES runs (id),
    at         TIMESTAMPTZ NOT NULL,
    kind       TEXT NOT NULL,
    from_state TEXT NOT NULL DEFAULT '',
    to_state   TEXT NOT NULL DEFAULT '',
    step_key   TEXT NOT NULL DEFAULT '',
    binding    TEXT NOT NULL DEFAULT '',
    class      TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    details    JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX run_entries_run_seq ON run_entries (run_id, seq);

-- A timeline is history, like credential_events (0001's function).
CREATE TRIGGER run_entries_no_update BEFORE UPDATE OR DELETE ON run_entries
    FOR EACH ROW EXECUTE FUNCTION credential_events_append_only();

CREATE TABLE run_steps (
    seq             BIGSERIAL PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    key             TEXT NOT NULL,
    actions         JSONB NOT NULL DEFAULT '[]',
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    credential_fps  JSONB NOT NULL DEFAULT '{}',
    error_class     TEXT NOT NULL DEFAULT '',
    output          TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    UNIQUE (run_id, key),
    UNIQUE (run_id, idempotency_key)
);

CREATE TABLE webhook_endpoints (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    url        TEXT NOT NULL,
    secret_kid TEXT NOT NULL,
    secret_ct  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);
