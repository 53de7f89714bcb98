-- 0001: tenants, API keys, credentials and their append-only lifecycle events
-- (PostgreSQL dialect; the numbers match sqlitestore's migrations).
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    hash       BYTEA NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE credentials (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id),
    user_id                 TEXT NOT NULL,
    provider                TEXT NOT NULL,
    workspace_id            TEXT NOT NULL DEFAULT '',
    subject                 TEXT NOT NULL,
    email                   TEXT NOT NULL DEFAULT '',
    account_type            TEXT NOT NULL DEFAULT '',
    domain                  TEXT NOT NULL DEFAULT '',
    granted_scopes          JSONB NOT NULL DEFAULT '[]',
    requested_scopes        JSONB NOT NULL DEFAULT '[]',
    token_type              TEXT NOT NULL DEFAULT '',
    access_token_kid        TEXT NOT NULL DEFAULT '',
    access_token_ct         BYTEA,
    access_token_fp         TEXT NOT NULL DEFAULT '',
    access_token_expires_at TIMESTAMPTZ,
    refresh_token_kid       TEXT NOT NULL DEFAULT '',
    refresh_token_ct        BYTEA,
    refresh_token_fp        TEXT NOT NULL DEFAULT '',
    status                  TEXT NOT NULL,
    status_reason           TEXT NOT NULL DEFAULT '',
    version                 BIGINT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    last_used_at            TIMESTAMPTZ,
    last_refreshed_at       TIMESTAMPTZ,
    UNIQUE (tenant_id, user_id, provider, workspace_id, subject)
);
CREATE INDEX credentials_tenant_id_id ON credentials (tenant_id, id);
CREATE INDEX credentials_access_token_kid ON credentials (access_token_kid);
CREATE INDEX credentials_refresh_token_kid ON credentials (refresh_token_kid);

CREATE TABLE credential_events (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    type          TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    actor         TEXT NOT NULL,
    details       JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX credential_events_credential_id_id ON credential_events (credential_id, id);

-- Events are history: the database itself refuses to rewrite it.
CREATE FUNCTION credential_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credential_events is append-only';
END;
$$;
CREATE TRIGGER credential_events_no_update BEFORE UPDATE OR DELETE ON credential_events
    FOR EACH ROW EXECUTE FUNCTION credential_events_append_only();
