-- KPI views over the dossiers (docs/kpis.md has the exact definitions).
--
-- dossier_tiers: each dossier with the registry version of its agency valid on the
-- Vietnam-time day of its first event; an agency the registry does not know (then) has
-- tier 'unassigned'. The applicant's commune/province come from the events; when those
-- are 'unassigned' (no commune matched) the agency's seat/province stand in.
CREATE VIEW dossier_tiers AS
SELECT d.*,
       coalesce(a.tier, 'unassigned') AS tier,
       a.name AS agency_name,
       a.province_code AS agency_province,
       CASE WHEN d.commune_code = 'unassigned' AND a.seat_commune IS NOT NULL
            THEN a.seat_commune ELSE d.commune_code END AS kpi_commune,
       CASE WHEN d.province_code = 'unassigned' AND a.province_code IS NOT NULL
            THEN a.province_code ELSE d.province_code END AS kpi_province
FROM dossiers d
LEFT JOIN LATERAL (
    SELECT g.tier, g.name, g.province_code, g.seat_commune
    FROM agencies g
    WHERE g.code = d.agency
      AND g.valid_from <= (d.first_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
      AND (g.valid_to IS NULL OR g.valid_to > (d.first_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
    ORDER BY g.valid_from DESC LIMIT 1
) a ON true;

-- kpi_facts: one row per dossier and counted moment. kind 'received' (time =
-- the earliest received event), 'resolved' (the earliest resolved event), 'paid' (the
-- earliest paid event of a fee-bearing dossier). The flags are the numerators:
--   received: online (submitted online), digitised (records digitised)
--   resolved: online (resolved online), on_time (resolved_at <= due_at; NULL if no due_at)
--   paid:     online (paid online)
-- A UNION ALL so that a filter on time reaches each branch's index.
CREATE VIEW kpi_facts AS
SELECT received_at AS time, 'received'::text AS kind, agency, dossier_id, tier,
       kpi_commune AS commune_code, kpi_province AS province_code,
       received_channel = 'online' AS online, digitised, NULL::boolean AS on_time
FROM dossier_tiers WHERE received_at IS NOT NULL
UNION ALL
SELECT resolved_at, 'resolved', agency, dossier_id, tier, kpi_commune, kpi_province,
       resolved_channel = 'online', NULL, resolved_on_time
FROM dossier_tiers WHERE resolved_at IS NOT NULL
UNION ALL
SELECT paid_at, 'paid', agency, dossier_id, tier, kpi_commune, kpi_province,
       coalesce(paid_online, false), NULL, NULL
FROM dossier_tiers WHERE paid_at IS NOT NULL AND paid_fee_bearing;

-- kpi_daily: numerators and denominators per Vietnam-time day, commune and tier. Weeks
-- (ISO, from Monday) and months are sums of days: date_trunc('week'|'month', day).
CREATE VIEW kpi_daily AS
SELECT (time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, province_code, commune_code, tier,
       count(*) FILTER (WHERE kind = 'received') AS received,
       count(*) FILTER (WHERE kind = 'received' AND online) AS received_online,
       count(*) FILTER (WHERE kind = 'received' AND digitised) AS received_digitised,
       count(*) FILTER (WHERE kind = 'resolved') AS resolved,
       count(*) FILTER (WHERE kind = 'resolved' AND online) AS resolved_online,
       count(*) FILTER (WHERE kind = 'resolved' AND on_time IS NOT NULL) AS resolved_with_due,
       count(*) FILTER (WHERE kind = 'resolved' AND on_time) AS resolved_on_time,
       count(*) FILTER (WHERE kind = 'paid') AS paid_fee_bearing,
       count(*) FILTER (WHERE kind = 'paid' AND online) AS paid_online
FROM kpi_facts
GROUP BY 1, 2, 3, 4;

-- Dossiers open right now past their deadline: no resolved and no returned event, and
-- due_at (of the latest event) before now().
CREATE VIEW overdue_dossiers AS
SELECT agency, agency_name, tier, kpi_province AS province_code, kpi_commune AS commune_code,
       dossier_id, procedure_code, received_at, first_at, due_at, now() - due_at AS overdue_by
FROM dossier_tiers
WHERE resolved_at IS NULL AND returned_at IS NULL AND due_at < now();
