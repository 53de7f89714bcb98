-- 0012: the web console's one-time login links and sessions, each kept only
-- as the SHA-256 hash of its bearer value (a database leak signs nobody in).
CREATE TABLE console_login_links (
    hash       BYTEA PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX console_login_links_expires ON console_login_links (expires_at);

CREATE TABLE console_sessions (
    hash       BYTEA PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- No index for the Webhooks page's "latest deliveries of a tenant": the
-- delivery table is moving onto the job queue (issue 17), and a migration
-- here must not depend on a table another one may replace.
