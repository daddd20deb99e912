-- Hourly rollups, service KPIs and the per-commune views Grafana reads.
-- rollup_1h is a continuous aggregate with the Community edition and a plain hypertable
-- refreshed by the application (ioc.db.maintenance) with the Apache edition; both have
-- the same columns, so every query reads the same answers.

DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        EXECUTE $v$
            CREATE MATERIALIZED VIEW rollup_1h WITH (timescaledb.continuous) AS
            SELECT time_bucket('1 hour', bucket) AS bucket, commune_code, metric,
                   min(province_code) AS province_code, sum(count)::bigint AS count,
                   sum(sum) AS sum, min(min) AS min, max(max) AS max,
                   last(last, last_at) AS last, max(last_at) AS last_at
            FROM rollup_1m GROUP BY 1, 2, 3 WITH NO DATA $v$;
        PERFORM add_continuous_aggregate_policy('rollup_1h',
            start_offset => interval '3 days', end_offset => interval '1 minute',
            schedule_interval => interval '5 minutes');
        EXECUTE 'ALTER TABLE rollup_1m SET (timescaledb.compress,
                 timescaledb.compress_segmentby = ''commune_code, metric'')';
        PERFORM add_compression_policy('rollup_1m', interval '7 days');
        PERFORM add_retention_policy('sensor_readings', interval '90 days');
        PERFORM add_retention_policy('traffic_observations', interval '90 days');
        PERFORM add_retention_policy('service_events', interval '730 days');
        PERFORM add_retention_policy('rollup_1m', interval '400 days');
    ELSE
        CREATE TABLE rollup_1h (
            bucket         timestamptz NOT NULL,
            commune_code   text NOT NULL,
            metric         text NOT NULL,
            province_code  text NOT NULL,
            count          bigint NOT NULL,
            sum            double precision NOT NULL,
            min            double precision NOT NULL,
            max            double precision NOT NULL,
            last           double precision NOT NULL,
            last_at        timestamptz NOT NULL,
            PRIMARY KEY (commune_code, metric, bucket)
        );
        PERFORM create_hypertable('rollup_1h', 'bucket', chunk_time_interval => interval '30 days');
    END IF;
END $$;

-- Retention the application applies with the Apache edition (ioc.db.maintenance).
CREATE TABLE retention (
    hypertable  text PRIMARY KEY,
    keep        interval NOT NULL
);
INSERT INTO retention VALUES
    ('sensor_readings', '90 days'), ('traffic_observations', '90 days'),
    ('service_events', '730 days'), ('rollup_1m', '400 days');

-- KPI targets the provinces report against (editable by operators).
CREATE TABLE kpi_targets (
    kpi          text PRIMARY KEY,
    target       double precision NOT NULL,
    description  text NOT NULL
);
INSERT INTO kpi_targets VALUES
    ('online_share', 0.80, 'Share of dossiers submitted online'),
    ('on_time_share', 0.95, 'Share of dossiers resolved on time'),
    ('paid_online_share', 0.80, 'Share of fee-bearing dossiers paid online'),
    ('digitised_share', 1.00, 'Share of dossier records digitised'),
    ('resolved_online_share', 0.80, 'Share of dossiers resolved online');

-- Per-commune daily service KPIs, days in Vietnam time (UTC+7).
CREATE VIEW service_kpi_daily AS
SELECT (bucket AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day,
       commune_code,
       min(province_code) AS province_code,
       sum(count) FILTER (WHERE metric = 'service.received') AS dossiers_received,
       sum(count) FILTER (WHERE metric = 'service.resolved') AS dossiers_resolved,
       sum(count) FILTER (WHERE metric = 'service.paid') AS dossiers_paid,
       sum(sum) FILTER (WHERE metric = 'service.received.online')
         / nullif(sum(count) FILTER (WHERE metric = 'service.received.online'), 0)
         AS online_share,
       sum(sum) FILTER (WHERE metric = 'service.resolved.on_time')
         / nullif(sum(count) FILTER (WHERE metric = 'service.resolved.on_time'), 0)
         AS on_time_share,
       sum(sum) FILTER (WHERE metric = 'service.resolved.online')
         / nullif(sum(count) FILTER (WHERE metric = 'service.resolved.online'), 0)
         AS resolved_online_share,
       sum(sum) FILTER (WHERE metric = 'service.paid.online')
         / nullif(sum(count) FILTER (WHERE metric = 'service.paid.online'), 0)
         AS paid_online_share,
       sum(sum) FILTER (WHERE metric = 'service.received.digitised')
         / nullif(sum(count) FILTER (WHERE metric = 'service.received.digitised'), 0)
         AS digitised_share
FROM rollup_1m
WHERE metric LIKE 'service.%'
GROUP BY 1, 2;
