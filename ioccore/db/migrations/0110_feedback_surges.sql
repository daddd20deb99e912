-- Surge rules over citizen reports (streams/feedback_surges.py) read, every tick, the
-- reports stored since their previous read: by stored_at, which had no index.
CREATE INDEX IF NOT EXISTS feedback_reports_stored ON feedback_reports (stored_at);
