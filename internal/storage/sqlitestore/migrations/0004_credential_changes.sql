-- 0004: the credential change feed (WatchCredentials). Every committed change
-- to a credential's version, lease holder or status, and every insert and
-- delete, appends the credential's id here in the same transaction, so the
-- log is in commit order and a rolled-back write leaves no row. Lease renewals
-- and last-used touches change none of those columns and stay out of the feed.
-- Watchers read rows past the last seq they saw and prune rows older than ten
-- minutes. at is microseconds since the Unix epoch, by the database's clock
-- (only pruning reads it).
CREATE TABLE credential_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    credential_id TEXT NOT NULL,
    at            INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
);

CREATE TRIGGER credential_changes_insert AFTER INSERT ON credentials
BEGIN INSERT INTO credential_changes (credential_id) VALUES (NEW.id); END;

CREATE TRIGGER credential_changes_delete AFTER DELETE ON credentials
BEGIN INSERT INTO credential_changes (credential_id) VALUES (OLD.id); END;

CREATE TRIGGER credential_changes_update AFTER UPDATE ON credentials
WHEN OLD.version IS NOT NEW.version OR OLD.lease_holder IS NOT NEW.lease_holder OR OLD.status IS NOT NEW.status
BEGIN INSERT INTO credential_changes (credential_id) VALUES (NEW.id); END;
