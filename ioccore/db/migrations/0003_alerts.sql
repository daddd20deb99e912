-- Alerts: current state per fingerprint, every transition, silences, the delivery
-- outbox and the audit trail. Depends on no table outside this file.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE IF NOT EXISTS alerts (
    fingerprint      text PRIMARY KEY,
    rule_id          text NOT NULL,
    state            text NOT NULL
        CHECK (state IN ('inactive', 'pending', 'firing', 'acknowledged', 'resolved')),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    labels           jsonb NOT NULL,
    annotations      jsonb NOT NULL DEFAULT '{}'::jsonb,
    commune_code     text,
    province_code    text,
    seq              bigint NOT NULL,              -- seq of the last transition
    started_at       timestamptz,                  -- start of the current episode
    firing_at        timestamptz,
    clear_since      timestamptz,                  -- keep_firing_for bookkeeping
    last_notified_at timestamptz,
    escalated        boolean NOT NULL DEFAULT false,
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    resolved_at      timestamptz,
    last_value       double precision,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state_idx ON alerts (state, updated_at DESC);
CREATE INDEX IF NOT EXISTS alerts_commune_idx ON alerts (commune_code);
CREATE INDEX IF NOT EXISTS alerts_province_idx ON alerts (province_code);
CREATE INDEX IF NOT EXISTS alerts_rule_idx ON alerts (rule_id);

CREATE TABLE IF NOT EXISTS alert_transitions (
    at          timestamptz NOT NULL,
    fingerprint text NOT NULL,
    seq         bigint NOT NULL,
    rule_id     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('state', 'renotify', 'escalate')),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    severity    text NOT NULL,
    labels      jsonb NOT NULL,
    annotations jsonb NOT NULL DEFAULT '{}'::jsonb,
    value       double precision,
    actor       text NOT NULL,
    note        text,
    receiver    text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- a unique index on a hypertable must include the time column
    PRIMARY KEY (fingerprint, seq, at)
);
SELECT create_hypertable('alert_transitions', 'at', if_not_exists => TRUE,
                         chunk_time_interval => INTERVAL '7 days');
CREATE INDEX IF NOT EXISTS alert_transitions_fp_idx ON alert_transitions (fingerprint, seq);

CREATE TABLE IF NOT EXISTS silences (
    id         bigserial PRIMARY KEY,
    matchers   jsonb NOT NULL,        -- [{"name": ..., "op": "=|!=|=~|!~", "value": ...}]
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    comment    text NOT NULL DEFAULT '',
    expired_by text,
    expired_at timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS silences_ends_idx ON silences (ends_at);

CREATE TABLE IF NOT EXISTS alert_outbox (
    id              bigserial PRIMARY KEY,
    fingerprint     text NOT NULL,
    seq             bigint NOT NULL,
    receiver        text NOT NULL CHECK (receiver IN ('alertmanager', 'webhook')),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (fingerprint, seq, receiver)
);
CREATE INDEX IF NOT EXISTS alert_outbox_due_idx ON alert_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS alert_outbox_order_idx ON alert_outbox (fingerprint, receiver, id)
    WHERE delivered_at IS NULL;

CREATE TABLE IF NOT EXISTS audit_log (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at DESC);
