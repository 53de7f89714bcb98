-- 0010: durable work on River. River's own tables come from rivermigrate in
-- the same migration transaction; these are authgate's: a delivery that
-- exhausted its attempts is dead (kept, visible, pruned later), and MCP
-- write results are kept by idempotency key so a retried tool call on any
-- instance writes once. Times are INTEGER microseconds, as in 0001.
ALTER TABLE webhook_deliveries ADD COLUMN dead_at INTEGER;
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE delivered_at IS NOT NULL OR dead_at IS NOT NULL;

CREATE TABLE idempotent_results (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotent_results_created ON idempotent_results (created_at);
