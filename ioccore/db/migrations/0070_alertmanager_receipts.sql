-- Notifications Alertmanager delivered to ioc's webhook receivers
-- (POST /v1/alertmanager/webhook/<receiver>, ioc/api/alertmanager_hook.py): one row per
-- notification, i.e. per (receiver, group) flush. It is the record of who was told what
-- and when (an incident's timeline, "notifications sent"); Alertmanager retries a
-- failed notification, so a receipt can repeat and readers count distinct group keys.
CREATE TABLE IF NOT EXISTS alertmanager_receipts (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    receiver      text NOT NULL,
    department    text,          -- the group's owner (common label `department`)
    status        text NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname     text,
    province_code text,
    group_key     text NOT NULL,
    truncated     integer NOT NULL DEFAULT 0,
    -- [{"fingerprint": <ioc's fingerprint annotation>, "status": ..., "labels": {...}}]
    alerts        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS alertmanager_receipts_receiver
    ON alertmanager_receipts (receiver, received_at DESC);
CREATE INDEX IF NOT EXISTS alertmanager_receipts_alerts
    ON alertmanager_receipts USING gin (alerts jsonb_path_ops);
