-- Drop the per-segment index on traffic_observations: no query reads raw traffic rows by
-- segment (the Grafana "segments with incidents" table filters by time, province and
-- commune and only groups by segment; rollups carry the traffic metrics), and every stored
-- observation paid a second btree insert for it (about 1 µs of PostgreSQL CPU per row,
-- benchmarks/bench_sink_cpu.py split). Raw rows stay readable by time (the hypertable's
-- index and chunk exclusion) and by source through traffic_observations_keys.
DROP INDEX IF EXISTS traffic_observations_segment;
