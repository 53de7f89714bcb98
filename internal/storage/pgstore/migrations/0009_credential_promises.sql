-- 0009: how far each credential's current access token has been promised
-- (CredentialPromise). One row per credential, written rarely (the horizon
-- grows in chunks), never part of the change feed.
CREATE TABLE credential_promises (
    credential_id TEXT PRIMARY KEY REFERENCES credentials(id) ON DELETE CASCADE,
    access_fp     TEXT NOT NULL,
    cred_version  BIGINT NOT NULL,
    horizon       TIMESTAMPTZ NOT NULL,
    sealed        BOOLEAN NOT NULL DEFAULT FALSE
);
