-- Late events are counted (docs/architecture.md, "time model"): a late row corrects its
-- one-minute window in the same transaction as its raw insert. So that rollup_1h follows,
-- the sink marks every hour whose one-minute windows it changed; maintenance (Apache
-- edition) recomputes exactly those hours and clears the marks, and with the Community
-- edition it refreshes the continuous aggregate for marked hours outside the policy's
-- window. A plain table: one row per hour, inserted ON CONFLICT DO NOTHING.
CREATE TABLE rollup_1h_pending (
    hour       timestamptz PRIMARY KEY,
    marked_at  timestamptz NOT NULL DEFAULT now()
);
