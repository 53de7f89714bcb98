-- 0005: connect links bound to a browser and an expected account, their
-- outcome readable by the app, and indexes for reuse and pruning.
ALTER TABLE connect_sessions ADD COLUMN expected_account TEXT NOT NULL DEFAULT '';
ALTER TABLE connect_sessions ADD COLUMN browser_hash BYTEA;
ALTER TABLE connect_sessions ADD COLUMN opened_at TIMESTAMPTZ;
ALTER TABLE connect_sessions ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE connect_sessions ADD COLUMN outcome_credential_id TEXT NOT NULL DEFAULT '';
ALTER TABLE connect_sessions ADD COLUMN missing_scopes JSONB NOT NULL DEFAULT '[]';
ALTER TABLE connect_sessions ADD COLUMN error_class TEXT NOT NULL DEFAULT '';
ALTER TABLE connect_sessions ADD COLUMN error_code TEXT NOT NULL DEFAULT '';
CREATE INDEX connect_sessions_credential ON connect_sessions (tenant_id, credential_id, expires_at);
CREATE INDEX connect_sessions_expires_at ON connect_sessions (expires_at);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
