-- Transitions that were already in the past when evaluated (an episode that opened and
-- closed inside a backlog): stored with their event times, sent to the webhook marked
-- backfilled, never paged to Alertmanager (docs/alerts.md, "backfill").
ALTER TABLE alert_transitions ADD COLUMN backfilled boolean NOT NULL DEFAULT false;
