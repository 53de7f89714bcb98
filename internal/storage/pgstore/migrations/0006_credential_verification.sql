-- 0006: the last live verification of a credential (POST
-- /v1/credentials/{id}/verify): when, its verdict, and the whole result as
-- JSON (checks, identity, scope diff; never a token). Written without a
-- version bump: verifying changes no token and must not make a concurrent
-- refresh lose its compare-and-swap.
ALTER TABLE credentials ADD COLUMN last_verified_at TIMESTAMPTZ;
ALTER TABLE credentials ADD COLUMN last_verdict TEXT NOT NULL DEFAULT '';
ALTER TABLE credentials ADD COLUMN last_verification JSONB;
