-- One row per dossier, folded from its raw service events (docs/kpis.md).
--
-- A row trigger on service_events fires only for rows the sink's insert actually added
-- (ON CONFLICT DO NOTHING skips replays and re-deliveries), late rows included. Each
-- column is a merge that does not depend on arrival order: the earliest event of a kind
-- by (time, source_id, event_id) wins, flags are OR-ed, the deadline is that of the
-- latest event. So the same events give the same row however batched, delayed,
-- reordered, duplicated (a second 'received' with another event_id) or replayed.

CREATE TABLE dossiers (
    agency            text NOT NULL,
    dossier_id        text NOT NULL,
    commune_code      text NOT NULL,   -- of the earliest event (the applicant's commune)
    province_code     text NOT NULL,
    procedure_code    text NOT NULL,
    first_at          timestamptz NOT NULL,
    first_key         text NOT NULL,   -- source_id || ' ' || event_id (tie-break)
    digitised         boolean NOT NULL,  -- some event says the records are digitised
    received_at       timestamptz,     -- earliest 'received' event (occurred_at)
    received_key      text,
    received_channel  text,
    resolved_at       timestamptz,     -- earliest 'resolved' event (occurred_at)
    resolved_key      text,
    resolved_channel  text,
    resolved_on_time  boolean,         -- its body: resolved_at <= due_at
    returned_at       timestamptz,     -- earliest 'returned' event
    paid_at           timestamptz,     -- earliest 'paid' event
    paid_key          text,
    paid_fee_bearing  boolean,
    paid_online       boolean,
    due_at            timestamptz,     -- due_at of the latest event (deadline extensions)
    due_event_at      timestamptz NOT NULL,
    due_key           text NOT NULL,
    events            bigint NOT NULL, -- raw rows folded in
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (agency, dossier_id)
);
CREATE INDEX dossiers_received ON dossiers (received_at) WHERE received_at IS NOT NULL;
CREATE INDEX dossiers_resolved ON dossiers (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX dossiers_paid ON dossiers (paid_at) WHERE paid_at IS NOT NULL;
CREATE INDEX dossiers_open_due ON dossiers (agency, due_at)
    WHERE resolved_at IS NULL AND returned_at IS NULL;

CREATE FUNCTION dossier_fold(e service_events) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    k text := e.source_id || ' ' || e.event_id;
    st text := e.status;
BEGIN
    INSERT INTO dossiers AS d (
        agency, dossier_id, commune_code, province_code, procedure_code, first_at, first_key,
        digitised, received_at, received_key, received_channel,
        resolved_at, resolved_key, resolved_channel, resolved_on_time, returned_at,
        paid_at, paid_key, paid_fee_bearing, paid_online, due_at, due_event_at, due_key, events)
    VALUES (
        e.agency, e.dossier_id, e.commune_code, e.province_code, e.procedure_code,
        e.time, k, coalesce(e.digitised, false),
        CASE WHEN st = 'received' THEN e.time END,
        CASE WHEN st = 'received' THEN k END,
        CASE WHEN st = 'received' THEN e.channel END,
        CASE WHEN st = 'resolved' THEN e.time END,
        CASE WHEN st = 'resolved' THEN k END,
        CASE WHEN st = 'resolved' THEN e.channel END,
        CASE WHEN st = 'resolved' THEN e.resolved_at <= e.due_at END,
        CASE WHEN st = 'returned' THEN e.time END,
        CASE WHEN st = 'paid' THEN e.time END,
        CASE WHEN st = 'paid' THEN k END,
        CASE WHEN st = 'paid' THEN coalesce(e.fee_bearing, false) END,
        CASE WHEN st = 'paid' THEN e.paid_online END,
        e.due_at, e.time, k, 1)
    ON CONFLICT (agency, dossier_id) DO UPDATE SET
        commune_code = CASE WHEN (EXCLUDED.first_at, EXCLUDED.first_key) < (d.first_at, d.first_key)
                            THEN EXCLUDED.commune_code ELSE d.commune_code END,
        province_code = CASE WHEN (EXCLUDED.first_at, EXCLUDED.first_key) < (d.first_at, d.first_key)
                             THEN EXCLUDED.province_code ELSE d.province_code END,
        procedure_code = CASE WHEN (EXCLUDED.first_at, EXCLUDED.first_key) < (d.first_at, d.first_key)
                              THEN EXCLUDED.procedure_code ELSE d.procedure_code END,
        first_key = CASE WHEN (EXCLUDED.first_at, EXCLUDED.first_key) < (d.first_at, d.first_key)
                         THEN EXCLUDED.first_key ELSE d.first_key END,
        first_at = LEAST(d.first_at, EXCLUDED.first_at),
        digitised = d.digitised OR EXCLUDED.digitised,
        received_channel = CASE WHEN EXCLUDED.received_at IS NOT NULL AND (d.received_at IS NULL
                                 OR (EXCLUDED.received_at, EXCLUDED.received_key) < (d.received_at, d.received_key))
                                THEN EXCLUDED.received_channel ELSE d.received_channel END,
        received_key = CASE WHEN EXCLUDED.received_at IS NOT NULL AND (d.received_at IS NULL
                             OR (EXCLUDED.received_at, EXCLUDED.received_key) < (d.received_at, d.received_key))
                            THEN EXCLUDED.received_key ELSE d.received_key END,
        received_at = LEAST(d.received_at, EXCLUDED.received_at),
        resolved_channel = CASE WHEN EXCLUDED.resolved_at IS NOT NULL AND (d.resolved_at IS NULL
                                 OR (EXCLUDED.resolved_at, EXCLUDED.resolved_key) < (d.resolved_at, d.resolved_key))
                                THEN EXCLUDED.resolved_channel ELSE d.resolved_channel END,
        resolved_on_time = CASE WHEN EXCLUDED.resolved_at IS NOT NULL AND (d.resolved_at IS NULL
                                 OR (EXCLUDED.resolved_at, EXCLUDED.resolved_key) < (d.resolved_at, d.resolved_key))
                                THEN EXCLUDED.resolved_on_time ELSE d.resolved_on_time END,
        resolved_key = CASE WHEN EXCLUDED.resolved_at IS NOT NULL AND (d.resolved_at IS NULL
                             OR (EXCLUDED.resolved_at, EXCLUDED.resolved_key) < (d.resolved_at, d.resolved_key))
                            THEN EXCLUDED.resolved_key ELSE d.resolved_key END,
        resolved_at = LEAST(d.resolved_at, EXCLUDED.resolved_at),
        returned_at = LEAST(d.returned_at, EXCLUDED.returned_at),
        paid_fee_bearing = CASE WHEN EXCLUDED.paid_at IS NOT NULL AND (d.paid_at IS NULL
                                 OR (EXCLUDED.paid_at, EXCLUDED.paid_key) < (d.paid_at, d.paid_key))
                                THEN EXCLUDED.paid_fee_bearing ELSE d.paid_fee_bearing END,
        paid_online = CASE WHEN EXCLUDED.paid_at IS NOT NULL AND (d.paid_at IS NULL
                            OR (EXCLUDED.paid_at, EXCLUDED.paid_key) < (d.paid_at, d.paid_key))
                           THEN EXCLUDED.paid_online ELSE d.paid_online END,
        paid_key = CASE WHEN EXCLUDED.paid_at IS NOT NULL AND (d.paid_at IS NULL
                         OR (EXCLUDED.paid_at, EXCLUDED.paid_key) < (d.paid_at, d.paid_key))
                        THEN EXCLUDED.paid_key ELSE d.paid_key END,
        paid_at = LEAST(d.paid_at, EXCLUDED.paid_at),
        due_at = CASE WHEN (EXCLUDED.due_event_at, EXCLUDED.due_key) > (d.due_event_at, d.due_key)
                      THEN EXCLUDED.due_at ELSE d.due_at END,
        due_key = CASE WHEN (EXCLUDED.due_event_at, EXCLUDED.due_key) > (d.due_event_at, d.due_key)
                       THEN EXCLUDED.due_key ELSE d.due_key END,
        due_event_at = GREATEST(d.due_event_at, EXCLUDED.due_event_at),
        events = d.events + 1,
        updated_at = clock_timestamp();
END
$fn$;

CREATE FUNCTION dossiers_fold() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM dossier_fold(NEW);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER service_events_dossiers AFTER INSERT ON service_events
    FOR EACH ROW EXECUTE FUNCTION dossiers_fold();

-- Rows stored before this migration are folded in the same way.
DO $$ BEGIN PERFORM dossier_fold(s) FROM service_events s; END $$;
