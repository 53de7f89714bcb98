-- 0002: refresh leases and clock skew on credentials; connect sessions.
ALTER TABLE credentials ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE credentials ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN clock_skew_at INTEGER;

CREATE TABLE connect_sessions (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    user_id          TEXT NOT NULL,
    provider         TEXT NOT NULL,
    credential_id    TEXT NOT NULL DEFAULT '',
    requested_scopes TEXT NOT NULL DEFAULT '[]',
    actions          TEXT NOT NULL DEFAULT '[]',
    login_hint       TEXT NOT NULL DEFAULT '',
    return_url       TEXT NOT NULL DEFAULT '',
    force_consent    INTEGER NOT NULL DEFAULT 0,
    state_hash       BLOB NOT NULL UNIQUE,
    verifier_kid     TEXT NOT NULL DEFAULT '',
    verifier_ct      BLOB,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
);
CREATE INDEX connect_sessions_tenant ON connect_sessions (tenant_id, created_at);
