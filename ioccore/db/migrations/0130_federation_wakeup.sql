-- Wake the federation publisher when keys are queued (streams/federation/publisher.py
-- LISTENs on ioc_federation_dirty): one notification per statement that queues keys,
-- delivered at COMMIT (so only once the rows are visible), identical ones of a
-- transaction folded into one by PostgreSQL. The publisher then sends a change within
-- a round's time instead of waiting for its next poll (`federation.publish_every_s`,
-- now only the fallback). Without a listener it costs a queue entry that is dropped;
-- a province that does not federate (federation_publishing empty) notifies nothing.
CREATE OR REPLACE FUNCTION federation_queue_kpi() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM federation_publishing) THEN
        INSERT INTO federation_dirty (day, agency, province_code, commune_code)
        SELECT DISTINCT day, agency, province_code, commune_code FROM changed;
        PERFORM pg_notify('ioc_federation_dirty', '');
    END IF;
    RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION federation_queue_agencies() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM federation_publishing) THEN
        INSERT INTO federation_dirty (day, agency, province_code, commune_code)
        SELECT k.day, k.agency, k.province_code, k.commune_code
        FROM kpi_counts_daily k
        WHERE k.agency IN (SELECT code FROM changed);
        PERFORM pg_notify('ioc_federation_dirty', '');
    END IF;
    RETURN NULL;
END $fn$;
