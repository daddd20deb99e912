-- Federation (docs/federation.md): a province publishes summaries, the nation stores them.
--
-- Every database gets both halves; `federation.role` decides which one a process uses.
--
-- Province half. The publisher (streams/federation/publisher.py) sends each KPI day row
-- of kpi_daily as an absolute value under its storage key. Which keys to send is kept
-- here, by triggers, so that nothing the dossier fold changes is missed: a statement
-- that writes kpi_counts_daily appends its keys to federation_dirty, and a registry load
-- that changes an agency appends that agency's keys (its tier is joined at query time,
-- so a reload changes published rows).
--
-- The queue is append-only on purpose. A publisher claims rows (DELETE ... SKIP LOCKED)
-- and then reads the keys' current values; a change committed after its claim has
-- appended a row the claim could not see, so it is sent next round. With one row per
-- key and ON CONFLICT DO NOTHING, a change committing between the claim and the read
-- would find the old row still there, add nothing, and be lost; with ON CONFLICT DO
-- UPDATE the fold would wait on the publisher's Kafka round trip. Appending never
-- waits and never loses a change; the publisher sends each claimed key once.
--
-- The queue is written only while a publisher has switched federation_publishing on,
-- so a province that does not federate pays one empty-table lookup per statement and
-- keeps no growing queue.
CREATE TABLE federation_publishing (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    since      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE federation_dirty (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    day                date NOT NULL,
    agency             text NOT NULL,
    province_code      text NOT NULL,
    commune_code       text NOT NULL
);

CREATE FUNCTION federation_queue_kpi() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM federation_publishing) THEN
        INSERT INTO federation_dirty (day, agency, province_code, commune_code)
        SELECT DISTINCT day, agency, province_code, commune_code FROM changed;
    END IF;
    RETURN NULL;
END $fn$;

CREATE TRIGGER kpi_counts_daily_federation_ins AFTER INSERT ON kpi_counts_daily
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION federation_queue_kpi();
CREATE TRIGGER kpi_counts_daily_federation_upd AFTER UPDATE ON kpi_counts_daily
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION federation_queue_kpi();

CREATE FUNCTION federation_queue_agencies() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM federation_publishing) THEN
        INSERT INTO federation_dirty (day, agency, province_code, commune_code)
        SELECT k.day, k.agency, k.province_code, k.commune_code
        FROM kpi_counts_daily k
        WHERE k.agency IN (SELECT code FROM changed);
    END IF;
    RETURN NULL;
END $fn$;

CREATE TRIGGER agencies_federation_ins AFTER INSERT ON agencies
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION federation_queue_agencies();
CREATE TRIGGER agencies_federation_upd AFTER UPDATE ON agencies
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION federation_queue_agencies();
CREATE TRIGGER agencies_federation_del AFTER DELETE ON agencies
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION federation_queue_agencies();

-- National half. One row per (origin province, storage key): the absolute values the
-- province sent last, kept only when newer (as_of, the province's clock at reading) than
-- what is stored, so a replayed, duplicated or reordered record changes nothing. Two
-- records of one key with the same as_of (two publishers in one microsecond) are ordered
-- by `digest` (SHA-256 of the encoded values), so even a tie ends the same way in any
-- order of arrival.
CREATE TABLE fed_kpi_counts (
    origin              text NOT NULL,     -- the province that published (its topic)
    day                 date NOT NULL,
    agency              text NOT NULL,
    applicant_province  text NOT NULL,
    applicant_commune   text NOT NULL,
    province_code       text NOT NULL,     -- as the province resolved them (kpi_daily)
    commune_code        text NOT NULL,
    tier                text NOT NULL,
    received            bigint NOT NULL,
    received_online     bigint NOT NULL,
    received_digitised  bigint NOT NULL,
    resolved            bigint NOT NULL,
    resolved_online     bigint NOT NULL,
    resolved_with_due   bigint NOT NULL,
    resolved_on_time    bigint NOT NULL,
    paid_fee_bearing    bigint NOT NULL,
    paid_online         bigint NOT NULL,
    as_of               timestamptz NOT NULL,
    digest              bytea NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, day, agency, applicant_province, applicant_commune)
);
CREATE INDEX fed_kpi_counts_day ON fed_kpi_counts (day, province_code);

-- The same columns as kpi_daily, so the KPI queries read either (ioccore/kpis.py).
CREATE VIEW fed_kpi_daily AS
SELECT day, province_code, commune_code, tier, agency, applicant_province,
       applicant_commune, received, received_online, received_digitised, resolved,
       resolved_online, resolved_with_due, resolved_on_time, paid_fee_bearing, paid_online
FROM fed_kpi_counts;

-- Snapshots (alert summary, feed health): the whole of one kind per province, replaced
-- by a newer one.
CREATE TABLE fed_snapshots (
    origin      text NOT NULL,
    kind        text NOT NULL,
    body        jsonb NOT NULL,
    as_of       timestamptz NOT NULL,
    digest      bytea NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, kind)
);

-- Per province: the newest record received, for "how fresh is each province".
CREATE TABLE fed_origins (
    origin        text PRIMARY KEY,
    last_as_of    timestamptz NOT NULL,
    last_stored   timestamptz NOT NULL,
    records       bigint NOT NULL DEFAULT 0
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT SELECT ON fed_kpi_counts, fed_kpi_daily, fed_snapshots, fed_origins
            TO ioc_reader;
    END IF;
END $$;
