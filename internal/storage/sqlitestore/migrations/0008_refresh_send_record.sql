-- 0008: the in-doubt record of a refresh: written by the lease holder just
-- before it presents a refresh token (which token, by whom, when, and until
-- when that request may still land at the provider). A process that takes
-- the lease over never presents the same refresh token before the deadline.
-- Written without a version bump, like the lease.
ALTER TABLE credentials ADD COLUMN send_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN send_refresh_fp TEXT NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN send_at INTEGER;
ALTER TABLE credentials ADD COLUMN send_deadline INTEGER;
