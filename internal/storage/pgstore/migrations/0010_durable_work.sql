-- 0010: durable work on River. River's own tables come from rivermigrate
-- right after authgate's migrations, under the same advisory lock; these
-- are authgate's: a delivery that exhausted its attempts is dead (kept,
-- visible, pruned later), and MCP write results are kept by idempotency key
-- so a retried tool call on any instance writes once.
ALTER TABLE webhook_deliveries ADD COLUMN dead_at TIMESTAMPTZ;
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, id COLLATE "C");
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE delivered_at IS NOT NULL OR dead_at IS NOT NULL;

CREATE TABLE idempotent_results (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotent_results_created ON idempotent_results (created_at);
