-- HTTP API: indexes the API's queries need on tables other migrations own.
-- The live alert stream polls alert_transitions by recorded_at (commit-side time).
CREATE INDEX IF NOT EXISTS alert_transitions_recorded_idx ON alert_transitions (recorded_at);
-- The gateway checks source ownership per department.
CREATE INDEX IF NOT EXISTS sources_department_idx ON sources (department);
