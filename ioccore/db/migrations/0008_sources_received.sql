-- When a source was last *received* (wall clock), beside when its newest event happened
-- (last_seen, event time). Absence rules ("a feed silent for 15 minutes") are about the
-- wall clock: a replay of old events must not make a dead feed look alive, and events
-- simulated in the past must not make a live one look dead.
ALTER TABLE sources ADD COLUMN last_received_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX sources_feed_received ON sources (feed, last_received_at DESC);
