-- Core schema: departments, API keys, sources, raw event hypertables, one-minute rollups.
-- Chunk intervals: one day for raw and rollups. Dashboards and rules read the last
-- hours to days per commune, so a day-sized chunk keeps the hot set small while a
-- week of sensor data at demo rates stays a handful of chunks (docs/architecture.md).

CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE departments (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    feeds       text[] NOT NULL CHECK (feeds <@ ARRAY['sensor', 'traffic', 'service']),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 of (pepper || key); only an 8-char prefix is kept in clear
-- so operators can tell keys apart. role 'department' publishes events; the others are
-- operator roles for the alert API.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    prefix      text NOT NULL UNIQUE,
    key_hash    text NOT NULL,
    role        text NOT NULL CHECK (role IN ('department', 'viewer', 'operator', 'admin')),
    department  text REFERENCES departments (code),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (role <> 'department' OR department IS NOT NULL)
);

-- Sources a department owns (sensors, cameras, counters, service desks). A department
-- may publish only for its own sources; sources are registered on first accepted event
-- when the department has 'auto_register' (the default for the demo) or up front.
CREATE TABLE sources (
    source_id     text PRIMARY KEY,
    department    text NOT NULL,
    feed          text NOT NULL CHECK (feed IN ('sensor', 'traffic', 'service')),
    commune_code  text,
    lat           double precision,
    lon           double precision,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sensor_readings (
    time           timestamptz NOT NULL,
    event_id       text NOT NULL,
    source_id      text NOT NULL,
    department     text NOT NULL,
    commune_code   text NOT NULL,
    province_code  text NOT NULL,
    metric         text NOT NULL,
    value          double precision NOT NULL,
    unit           text NOT NULL,
    lat            double precision,
    lon            double precision,
    geo            text NOT NULL,
    late           boolean NOT NULL DEFAULT false,
    received_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT create_hypertable('sensor_readings', 'time', chunk_time_interval => interval '1 day');
-- Idempotency: a replayed event inserts nothing. Unique indexes must include time.
CREATE UNIQUE INDEX sensor_readings_event ON sensor_readings (source_id, event_id, time);
CREATE INDEX sensor_readings_commune ON sensor_readings (commune_code, metric, time DESC);

CREATE TABLE traffic_observations (
    time           timestamptz NOT NULL,
    event_id       text NOT NULL,
    source_id      text NOT NULL,
    department     text NOT NULL,
    commune_code   text NOT NULL,
    province_code  text NOT NULL,
    segment_id     text NOT NULL,
    vehicle_count  integer NOT NULL,
    avg_speed_kmh  double precision NOT NULL,
    occupancy      double precision NOT NULL,
    incident       text,
    lat            double precision,
    lon            double precision,
    geo            text NOT NULL,
    late           boolean NOT NULL DEFAULT false,
    received_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT create_hypertable('traffic_observations', 'time', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX traffic_observations_event ON traffic_observations (source_id, event_id, time);
CREATE INDEX traffic_observations_commune ON traffic_observations (commune_code, time DESC);
CREATE INDEX traffic_observations_segment ON traffic_observations (segment_id, time DESC);

CREATE TABLE service_events (
    time            timestamptz NOT NULL,
    event_id        text NOT NULL,
    source_id       text NOT NULL,
    department      text NOT NULL,
    commune_code    text NOT NULL,
    province_code   text NOT NULL,
    dossier_id      text NOT NULL,
    procedure_code  text NOT NULL,
    agency          text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('online', 'offline')),
    status          text NOT NULL
                    CHECK (status IN ('received', 'in_progress', 'resolved', 'returned', 'paid')),
    due_at          timestamptz,
    resolved_at     timestamptz,
    fee_bearing     boolean,
    paid_online     boolean,
    digitised       boolean,
    lat             double precision,
    lon             double precision,
    geo             text NOT NULL,
    late            boolean NOT NULL DEFAULT false,
    received_at     timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT create_hypertable('service_events', 'time', chunk_time_interval => interval '7 days');
CREATE UNIQUE INDEX service_events_event ON service_events (source_id, event_id, time);
CREATE INDEX service_events_commune ON service_events (commune_code, time DESC);
CREATE INDEX service_events_dossier ON service_events (dossier_id, time DESC);

-- One-minute windows per (commune, metric): count, sum, min, max, last. Updated in the
-- same transaction as the raw insert, only from rows that insert actually added, so a
-- replay or a restarted worker never counts an event twice (docs/architecture.md).
CREATE TABLE rollup_1m (
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
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (commune_code, metric, bucket)
);
SELECT create_hypertable('rollup_1m', 'bucket', chunk_time_interval => interval '1 day');
CREATE INDEX rollup_1m_metric ON rollup_1m (metric, bucket DESC);
CREATE INDEX rollup_1m_province ON rollup_1m (province_code, metric, bucket DESC);
