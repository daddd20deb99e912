-- The live alert stream pages alert_transitions by the key (recorded_at, fingerprint, seq)
-- (issue 15): one index serves its row comparison and its ORDER BY.
CREATE INDEX IF NOT EXISTS alert_transitions_stream_idx
    ON alert_transitions (recorded_at, fingerprint, seq);
