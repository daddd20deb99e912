-- The sink queues its service rows for the dossier fold in its own statement.
--
-- Migration 0026 queued every inserted service row for the statement-level fold with a
-- PL/pgSQL row trigger: one function call and one single-row INSERT per row, about half of
-- a service row's PostgreSQL CPU (BENCHMARKS.md, "What limits it now"). The sink's
-- insert-and-roll-up statement for service rows now inserts the rows it stored into
-- dossier_events_pending itself (one set-based INSERT, streams/sinks/statements.py), and
-- says so for its transaction with `set_config('ioc.dossier_queue', 'statement', true)`
-- right before it. The row trigger stays for every other writer (tests, replays, tools):
-- it fires unless the transaction has said that. The statement-level fold trigger is
-- unchanged; it runs after the whole statement, so it sees the rows the statement queued.
DROP TRIGGER service_events_dossier_queue ON service_events;
CREATE TRIGGER service_events_dossier_queue AFTER INSERT ON service_events
    FOR EACH ROW
    WHEN (current_setting('ioc.dossier_queue', true) IS DISTINCT FROM 'statement')
    EXECUTE FUNCTION dossier_events_queue();
