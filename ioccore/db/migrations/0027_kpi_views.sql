-- KPI views (docs/kpis.md has the exact definitions).
--
-- Tier: the registry version of the agency valid on the Vietnam-time day counted; an
-- agency the registry does not know (then) has tier 'unassigned'. Tier is joined here,
-- at query time, never stored: loading the registry later reassigns the past. The
-- applicant's commune/province come from the dossier's earliest event; when those are
-- 'unassigned' (no commune matched), the agency's seat commune/province stand in.
-- Registry versions of one agency never overlap (the loader closes the old one), so the
-- join finds at most one.

-- kpi_daily: numerators and denominators per day, commune, province and tier. Weeks
-- (ISO, from Monday) and months are sums of days: date_trunc('week'|'month', day).
CREATE VIEW kpi_daily AS
SELECT k.day,
       CASE WHEN k.province_code = 'unassigned' AND g.province_code IS NOT NULL
            THEN g.province_code ELSE k.province_code END AS province_code,
       CASE WHEN k.commune_code = 'unassigned' AND g.seat_commune IS NOT NULL
            THEN g.seat_commune ELSE k.commune_code END AS commune_code,
       coalesce(g.tier, 'unassigned') AS tier,
       k.agency,
       k.province_code AS applicant_province,  -- as stored: filters that use the indexes
       k.commune_code AS applicant_commune,
       k.received, k.received_online, k.received_digitised, k.resolved, k.resolved_online,
       k.resolved_with_due, k.resolved_on_time, k.paid_fee_bearing, k.paid_online
FROM kpi_counts_daily k
LEFT JOIN agencies g
  ON g.code = k.agency AND g.valid_from <= k.day AND (g.valid_to IS NULL OR g.valid_to > k.day);

-- dossier_tiers: each dossier with its agency's registry version valid today (what a
-- director chases now) and the same commune/province fallback.
CREATE VIEW dossier_tiers AS
SELECT d.*,
       coalesce(g.tier, 'unassigned') AS tier,
       g.name AS agency_name,
       CASE WHEN d.commune_code = 'unassigned' AND g.seat_commune IS NOT NULL
            THEN g.seat_commune ELSE d.commune_code END AS kpi_commune,
       CASE WHEN d.province_code = 'unassigned' AND g.province_code IS NOT NULL
            THEN g.province_code ELSE d.province_code END AS kpi_province
FROM dossiers d
LEFT JOIN agencies g
  ON g.code = d.agency
 AND g.valid_from <= (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
 AND (g.valid_to IS NULL OR g.valid_to > (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date);

-- kpi_facts: one row per dossier and counted moment, for drill-down (which dossiers make
-- a figure). kind 'received' (time = the earliest received event), 'resolved' (the
-- earliest resolved event), 'paid' (the earliest paid event of a fee-bearing dossier);
-- the flags are the numerators. Summed over a day it equals kpi_daily.
CREATE VIEW kpi_facts AS
SELECT f.time, f.kind, d.agency, d.dossier_id, coalesce(g.tier, 'unassigned') AS tier,
       CASE WHEN d.commune_code = 'unassigned' AND g.seat_commune IS NOT NULL
            THEN g.seat_commune ELSE d.commune_code END AS commune_code,
       CASE WHEN d.province_code = 'unassigned' AND g.province_code IS NOT NULL
            THEN g.province_code ELSE d.province_code END AS province_code,
       f.online, f.digitised, f.on_time
FROM dossiers d
CROSS JOIN LATERAL (VALUES
    ('received', d.received_at, d.received_channel = 'online', d.digitised, NULL::boolean),
    ('resolved', d.resolved_at, d.resolved_channel = 'online', NULL, d.resolved_on_time),
    ('paid', CASE WHEN d.paid_fee_bearing THEN d.paid_at END, coalesce(d.paid_online, false),
     NULL, NULL)
) AS f (kind, time, online, digitised, on_time)
LEFT JOIN agencies g
  ON g.code = d.agency
 AND g.valid_from <= (f.time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
 AND (g.valid_to IS NULL OR g.valid_to > (f.time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
WHERE f.time IS NOT NULL;

-- Dossiers open right now past their deadline: no resolved and no returned event, and
-- due_at (of the latest event) before now().
CREATE VIEW overdue_dossiers AS
SELECT agency, agency_name, tier, kpi_province AS province_code, kpi_commune AS commune_code,
       dossier_id, procedure_code, received_at, first_at, due_at, now() - due_at AS overdue_by
FROM dossier_tiers
WHERE resolved_at IS NULL AND returned_at IS NULL AND due_at < now();
