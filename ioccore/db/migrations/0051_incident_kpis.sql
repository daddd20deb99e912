-- Response KPIs (definitions: docs/incidents.md "Response KPIs"). One fact per response
-- (an opening of an incident); merged-away incidents are not responses of their own.
-- Periods are Vietnam days, ISO weeks (Monday) and months (Asia/Ho_Chi_Minh, UTC+7).

CREATE OR REPLACE VIEW incident_response_facts AS
SELECT r.incident_id, r.cycle, i.department, i.province_code, i.severity,
       r.opened_at, r.acknowledged_at, r.resolved_at, r.ack_due_at, r.resolve_due_at,
       extract(epoch FROM r.acknowledged_at - r.opened_at)::float8 AS tta_s,
       extract(epoch FROM r.resolved_at - r.opened_at)::float8 AS ttr_s,
       CASE WHEN r.acknowledged_at IS NOT NULL THEN r.acknowledged_at <= r.ack_due_at
            WHEN now() > r.ack_due_at THEN false END AS ack_in_sla,
       CASE WHEN r.resolved_at IS NOT NULL THEN r.resolved_at <= r.resolve_due_at
            WHEN now() > r.resolve_due_at THEN false END AS resolve_in_sla
FROM incident_responses r JOIN incidents i ON i.id = r.incident_id
WHERE i.merged_into IS NULL;

CREATE OR REPLACE FUNCTION incident_kpis(period text, since timestamptz, until timestamptz)
RETURNS TABLE (bucket timestamptz, department text, province_code text,
               responses bigint, acknowledged bigint, resolved bigint,
               tta_median_s float8, tta_p90_s float8, ttr_median_s float8, ttr_p90_s float8,
               ack_within_sla float8, resolve_within_sla float8)
LANGUAGE sql STABLE AS $$
    SELECT date_trunc(period, f.opened_at AT TIME ZONE 'Asia/Ho_Chi_Minh')
               AT TIME ZONE 'Asia/Ho_Chi_Minh',
           f.department, f.province_code,
           count(*), count(f.acknowledged_at), count(f.resolved_at),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.tta_s),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY f.tta_s),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.ttr_s),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY f.ttr_s),
           avg(f.ack_in_sla::int)::float8, avg(f.resolve_in_sla::int)::float8
    FROM incident_response_facts f
    WHERE period IN ('day', 'week', 'month') AND f.opened_at >= since AND f.opened_at < until
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
$$;

-- Incidents past a deadline now: not acknowledged after the acknowledgement deadline,
-- or not resolved after the resolution deadline.
CREATE OR REPLACE VIEW incidents_overdue AS
SELECT i.id, i.department, i.province_code, i.severity, i.state, i.title,
       CASE WHEN i.acknowledged_at IS NULL AND now() > i.ack_due_at THEN 'acknowledge'
            ELSE 'resolve' END AS deadline,
       CASE WHEN i.acknowledged_at IS NULL AND now() > i.ack_due_at THEN i.ack_due_at
            ELSE i.resolve_due_at END AS due_at
FROM incidents i
WHERE i.state IN ('open', 'acknowledged', 'in_progress') AND i.merged_into IS NULL
  AND ((i.acknowledged_at IS NULL AND now() > i.ack_due_at) OR now() > i.resolve_due_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT SELECT ON incidents, incident_responses, incident_response_facts,
                        incidents_overdue TO ioc_reader;
    END IF;
END $$;
