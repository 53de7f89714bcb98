-- 0009: how far each credential's current access token has been promised
-- (CredentialPromise). One row per credential, written rarely (the horizon
-- grows in chunks), never part of the change feed. horizon is microseconds
-- since the Unix epoch; sealed is 0 or 1.
CREATE TABLE credential_promises (
    credential_id TEXT PRIMARY KEY REFERENCES credentials(id) ON DELETE CASCADE,
    access_fp     TEXT NOT NULL,
    cred_version  INTEGER NOT NULL,
    horizon       INTEGER NOT NULL,
    sealed        INTEGER NOT NULL DEFAULT 0
);
