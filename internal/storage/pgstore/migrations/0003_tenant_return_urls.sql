-- 0003: each tenant's allow-list of URL prefixes connect sessions may return to.
ALTER TABLE tenants ADD COLUMN return_url_allowlist JSONB NOT NULL DEFAULT '[]';
