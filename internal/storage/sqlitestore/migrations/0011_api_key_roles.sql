-- 0011: API keys carry a role (admin, service, user) and, for a user key, the
-- one end user it acts as. Keys that existed before roles keep what they
-- could always do: admin.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
