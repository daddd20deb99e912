-- One row per dossier, folded from its raw service events (docs/kpis.md).
--
-- A row trigger on service_events fires only for rows the sink's insert actually added
-- (ON CONFLICT DO NOTHING skips replays and re-deliveries), late rows included. Each
-- column is a merge that does not depend on arrival order: the earliest event of a kind
-- by (time, source_id, event_id) wins, flags are OR-ed, the deadline is that of the
-- latest event. So the same events give the same row however batched, delayed,
-- reordered, duplicated (a second 'received' with another event_id) or replayed.
--
-- kpi_counts_daily holds each dossier's contribution to the KPIs per Vietnam-time day,
-- agency and commune: the fold removes the dossier's old contribution and adds its new
-- one in the same statement (a late 'received' event moves the dossier to another day;
-- a later 'digitised: true' turns its flag on). KPI queries then read days, not dossiers.

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

CREATE TABLE kpi_counts_daily (
    day                 date NOT NULL,     -- Vietnam time
    agency              text NOT NULL,
    province_code       text NOT NULL,     -- the dossier's (applicant's) province
    commune_code        text NOT NULL,
    received            bigint NOT NULL DEFAULT 0,
    received_online     bigint NOT NULL DEFAULT 0,
    received_digitised  bigint NOT NULL DEFAULT 0,
    resolved            bigint NOT NULL DEFAULT 0,
    resolved_online     bigint NOT NULL DEFAULT 0,
    resolved_with_due   bigint NOT NULL DEFAULT 0,
    resolved_on_time    bigint NOT NULL DEFAULT 0,
    paid_fee_bearing    bigint NOT NULL DEFAULT 0,
    paid_online         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, agency, province_code, commune_code)
);
CREATE INDEX kpi_counts_daily_province ON kpi_counts_daily (province_code, day);

-- The KPI facts of one dossier row (none for NULL): one row per counted moment. For
-- reading and checking; the fold itself moves counts with kpi_counts_move (plpgsql:
-- its statements' plans are cached, which SQL functions' are not).
CREATE FUNCTION dossier_facts(r dossiers)
RETURNS TABLE (day date, agency text, province_code text, commune_code text,
               received int, received_online int, received_digitised int, resolved int,
               resolved_online int, resolved_with_due int, resolved_on_time int,
               paid_fee_bearing int, paid_online int)
LANGUAGE sql STABLE AS $$
    SELECT (r.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, r.agency, r.province_code,
           r.commune_code, 1, (r.received_channel = 'online')::int, r.digitised::int,
           0, 0, 0, 0, 0, 0
    WHERE r.received_at IS NOT NULL
    UNION ALL
    SELECT (r.resolved_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, r.agency, r.province_code,
           r.commune_code, 0, 0, 0, 1, (r.resolved_channel = 'online')::int,
           (r.resolved_on_time IS NOT NULL)::int, coalesce(r.resolved_on_time, false)::int,
           0, 0
    WHERE r.resolved_at IS NOT NULL
    UNION ALL
    SELECT (r.paid_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, r.agency, r.province_code,
           r.commune_code, 0, 0, 0, 0, 0, 0, 0, 1, coalesce(r.paid_online, false)::int
    WHERE r.paid_at IS NOT NULL AND r.paid_fee_bearing
$$;

-- Deltas of the current transaction, applied once per statement (kpi_counts_flush): a
-- statement of 2,000 events touches a few hundred (day, agency, commune) keys, and
-- updating one counter row hundreds of times in one transaction grows a chain of row
-- versions that every later update walks (measured: 20x slower). Rows never outlive
-- their statement, so the table is UNLOGGED.
CREATE UNLOGGED TABLE kpi_counts_pending (
    txid           bigint NOT NULL,
    day            date NOT NULL,
    agency         text NOT NULL,
    province_code  text NOT NULL,
    commune_code   text NOT NULL,
    c              int[] NOT NULL
);
CREATE INDEX kpi_counts_pending_txid ON kpi_counts_pending (txid);

CREATE FUNCTION kpi_counts_flush() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    WITH d AS (
        DELETE FROM kpi_counts_pending WHERE txid = txid_current() RETURNING *
    )
    INSERT INTO kpi_counts_daily AS k (day, agency, province_code, commune_code, received,
        received_online, received_digitised, resolved, resolved_online, resolved_with_due,
        resolved_on_time, paid_fee_bearing, paid_online)
    SELECT day, agency, province_code, commune_code, sum(c[1]), sum(c[2]), sum(c[3]),
           sum(c[4]), sum(c[5]), sum(c[6]), sum(c[7]), sum(c[8]), sum(c[9])
    FROM d GROUP BY day, agency, province_code, commune_code
    ON CONFLICT (day, agency, province_code, commune_code) DO UPDATE SET
        received = k.received + EXCLUDED.received,
        received_online = k.received_online + EXCLUDED.received_online,
        received_digitised = k.received_digitised + EXCLUDED.received_digitised,
        resolved = k.resolved + EXCLUDED.resolved,
        resolved_online = k.resolved_online + EXCLUDED.resolved_online,
        resolved_with_due = k.resolved_with_due + EXCLUDED.resolved_with_due,
        resolved_on_time = k.resolved_on_time + EXCLUDED.resolved_on_time,
        paid_fee_bearing = k.paid_fee_bearing + EXCLUDED.paid_fee_bearing,
        paid_online = k.paid_online + EXCLUDED.paid_online;
END
$fn$;

-- Move a dossier's counts from its old version to its new one, kind by kind; a kind whose
-- fact (day, commune, flags) did not change costs nothing.
CREATE FUNCTION kpi_counts_move(o dossiers, n dossiers) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    vn constant text := 'Asia/Ho_Chi_Minh';
    tx constant bigint := txid_current();
    od date; nd date; oc int[]; nc int[];
BEGIN
    -- received: count, online, digitised
    od := (o.received_at AT TIME ZONE vn)::date;
    nd := (n.received_at AT TIME ZONE vn)::date;
    oc := ARRAY[1, (o.received_channel = 'online')::int, o.digitised::int, 0, 0, 0, 0, 0, 0];
    nc := ARRAY[1, (n.received_channel = 'online')::int, n.digitised::int, 0, 0, 0, 0, 0, 0];
    IF (od, o.province_code, o.commune_code, oc) IS DISTINCT FROM
       (nd, n.province_code, n.commune_code, nc) THEN
        IF od IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, od, o.agency, o.province_code, o.commune_code,
                ARRAY[-oc[1], -oc[2], -oc[3], -oc[4], -oc[5], -oc[6], -oc[7], -oc[8], -oc[9]]);
        END IF;
        IF nd IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, nd, n.agency, n.province_code, n.commune_code, nc);
        END IF;
    END IF;
    -- resolved: count, online, with a deadline, on time
    od := (o.resolved_at AT TIME ZONE vn)::date;
    nd := (n.resolved_at AT TIME ZONE vn)::date;
    oc := ARRAY[0, 0, 0, 1, (o.resolved_channel = 'online')::int,
                (o.resolved_on_time IS NOT NULL)::int, coalesce(o.resolved_on_time, false)::int,
                0, 0];
    nc := ARRAY[0, 0, 0, 1, (n.resolved_channel = 'online')::int,
                (n.resolved_on_time IS NOT NULL)::int, coalesce(n.resolved_on_time, false)::int,
                0, 0];
    IF (od, o.province_code, o.commune_code, oc) IS DISTINCT FROM
       (nd, n.province_code, n.commune_code, nc) THEN
        IF od IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, od, o.agency, o.province_code, o.commune_code,
                ARRAY[-oc[1], -oc[2], -oc[3], -oc[4], -oc[5], -oc[6], -oc[7], -oc[8], -oc[9]]);
        END IF;
        IF nd IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, nd, n.agency, n.province_code, n.commune_code, nc);
        END IF;
    END IF;
    -- paid (fee-bearing only): count, online
    od := CASE WHEN o.paid_fee_bearing THEN (o.paid_at AT TIME ZONE vn)::date END;
    nd := CASE WHEN n.paid_fee_bearing THEN (n.paid_at AT TIME ZONE vn)::date END;
    oc := ARRAY[0, 0, 0, 0, 0, 0, 0, 1, coalesce(o.paid_online, false)::int];
    nc := ARRAY[0, 0, 0, 0, 0, 0, 0, 1, coalesce(n.paid_online, false)::int];
    IF (od, o.province_code, o.commune_code, oc) IS DISTINCT FROM
       (nd, n.province_code, n.commune_code, nc) THEN
        IF od IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, od, o.agency, o.province_code, o.commune_code,
                ARRAY[-oc[1], -oc[2], -oc[3], -oc[4], -oc[5], -oc[6], -oc[7], -oc[8], -oc[9]]);
        END IF;
        IF nd IS NOT NULL THEN
            INSERT INTO kpi_counts_pending VALUES (tx, nd, n.agency, n.province_code, n.commune_code, nc);
        END IF;
    END IF;
END
$fn$;

CREATE FUNCTION dossier_fold(e service_events) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    k text := e.source_id || ' ' || e.event_id;
    st text := e.status;
    old_row dossiers;
    new_row dossiers;
BEGIN
    -- The old version, locked: two workers folding events of one dossier take turns, so
    -- each moves the counts from the version it replaced. A dossier seen for the first
    -- time by two transactions at once: the loser of the insert re-reads the winner's.
    SELECT * INTO old_row FROM dossiers
    WHERE agency = e.agency AND dossier_id = e.dossier_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO dossiers (agency, dossier_id, commune_code, province_code, procedure_code,
                              first_at, first_key, digitised, due_at, due_event_at, due_key,
                              events)
        VALUES (e.agency, e.dossier_id, e.commune_code, e.province_code, e.procedure_code,
                e.time, k, false, e.due_at, e.time, k, 0)
        ON CONFLICT (agency, dossier_id) DO NOTHING;
        SELECT * INTO old_row FROM dossiers
        WHERE agency = e.agency AND dossier_id = e.dossier_id FOR UPDATE;
        IF old_row.events = 0 THEN
            old_row := NULL;  -- the placeholder just inserted: nothing counted yet
        END IF;
    END IF;
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
        updated_at = clock_timestamp()
    RETURNING * INTO new_row;
    PERFORM kpi_counts_move(old_row, new_row);
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

-- After the row triggers of a statement: its deltas, summed per key, into the counts.
CREATE FUNCTION kpi_counts_flush_trigger() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM kpi_counts_flush();
    RETURN NULL;
END
$fn$;
CREATE TRIGGER service_events_kpi_counts AFTER INSERT ON service_events
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_counts_flush_trigger();

-- Rows stored before this migration are folded in the same way.
DO $$ BEGIN
    PERFORM dossier_fold(s) FROM service_events s;
    PERFORM kpi_counts_flush();
END $$;
