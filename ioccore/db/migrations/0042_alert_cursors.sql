-- Where each singleton-rule scope (province rules) had evaluated to, written in the same
-- transaction as its transitions: a new lock holder resumes after that minute boundary
-- (docs/alerts.md, "singleton rules").
CREATE TABLE alert_cursors (
    fingerprint      text PRIMARY KEY,
    rule_id          text NOT NULL,
    evaluated_until  timestamptz NOT NULL
);
CREATE INDEX alert_cursors_rule ON alert_cursors (rule_id);
