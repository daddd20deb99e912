-- Wake the incident loop when alerts change (alerts/incidents/runner.py LISTENs on
-- ioc_alerts_changed): one notification per statement that writes alerts, delivered at
-- COMMIT (so only once the rows are visible), identical ones of a transaction folded
-- into one by PostgreSQL. Without a listener it costs a queue entry that is dropped.
CREATE OR REPLACE FUNCTION ioc_alerts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ioc_alerts_changed', '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS alerts_changed_notify ON alerts;
CREATE TRIGGER alerts_changed_notify AFTER INSERT OR UPDATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION ioc_alerts_changed();
