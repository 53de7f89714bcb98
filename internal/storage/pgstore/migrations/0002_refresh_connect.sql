-- 0002: refresh leases and clock skew on credentials; connect sessions.
ALTER TABLE credentials ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN lease_expires_at TIMESTAMPTZ;
ALTER TABLE credentials ADD COLUMN clock_skew_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN clock_skew_at TIMESTAMPTZ;

CREATE TABLE connect_sessions (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    user_id          TEXT NOT NULL,
    provider         TEXT NOT NULL,
    credential_id    TEXT NOT NULL DEFAULT '',
    requested_scopes JSONB NOT NULL DEFAULT '[]',
    actions          JSONB NOT NULL DEFAULT '[]',
    login_hint       TEXT NOT NULL DEFAULT '',
    return_url       TEXT NOT NULL DEFAULT '',
    force_consent    BOOLEAN NOT NULL DEFAULT FALSE,
    state_hash       BYTEA NOT NULL UNIQUE,
    verifier_kid     TEXT NOT NULL DEFAULT '',
    verifier_ct      BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ
);
CREATE INDEX connect_sessions_tenant ON connect_sessions (tenant_id, created_at);
