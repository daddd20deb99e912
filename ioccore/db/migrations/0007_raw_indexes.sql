-- Raw hypertables: drop the per-commune indexes.
-- Measured (docs/architecture.md): the third index on sensor_readings cost about 30 % of
-- the sink's insert rate. Per-commune reads go to rollup_1m (keyed by commune); raw rows
-- are read by time range (the hypertable's time index and chunk exclusion) or by source
-- (the unique index leads with source_id). service_events keeps its commune index: low
-- volume, and the KPI drill-down lists a commune's dossiers.
DROP INDEX IF EXISTS sensor_readings_commune;
DROP INDEX IF EXISTS traffic_observations_commune;
