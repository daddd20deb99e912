-- Scorecards and periodic reports (docs/kpis.md "Scorecards", docs/reports.md).
--
-- kpi_unit_targets: a KPI target for one unit (a commune, an agency or a province), with
-- validity dates like kpi_target_values ([valid_from, valid_to), Vietnam days). A unit
-- without its own row valid on the period's first day falls back to kpi_target():
-- commune and province to (its province, any tier), agency to (its province, its tier).
CREATE TABLE kpi_unit_targets (
    kpi         text NOT NULL REFERENCES kpi_targets (kpi),
    level       text NOT NULL CHECK (level IN ('commune', 'agency', 'province')),
    unit_code   text NOT NULL CHECK (length(unit_code) BETWEEN 1 AND 128),
    target      double precision NOT NULL CHECK (target >= 0 AND target <= 1),
    valid_from  date NOT NULL,
    valid_to    date,
    source      text NOT NULL DEFAULT 'manual',
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kpi, level, unit_code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- The unit's own target on a day, else the province/tier target (NULL: none).
CREATE FUNCTION kpi_unit_target(p_kpi text, p_level text, p_unit text, p_province text,
                                p_tier text, p_day date)
RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT target FROM kpi_unit_targets
         WHERE kpi = p_kpi AND level = p_level AND unit_code = p_unit
           AND valid_from <= p_day AND (valid_to IS NULL OR valid_to > p_day)
         ORDER BY valid_from DESC LIMIT 1),
        kpi_target(p_kpi, p_province, p_tier, p_day))
$$;

-- reports: one row per generated report. (scope, grain, period) is unique, so the
-- scheduled report of a month is claimed once however many processes run the
-- schedule: the claim is an INSERT ... ON CONFLICT DO NOTHING committed before the
-- work; a claim whose process died (state 'running' older than the lease) is taken
-- over by UPDATE ... WHERE claimed_at < now() - lease. On-demand reports get their own
-- rows (kind 'on_demand', no uniqueness).
CREATE TABLE reports (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('scheduled', 'on_demand')),
    scope        text NOT NULL CHECK (scope ~ '^(nation|[0-9]{2})$'),
    grain        text NOT NULL CHECK (grain IN ('month', 'week', 'day')),
    period       date NOT NULL,
    source       text NOT NULL CHECK (source IN ('kpi_daily', 'fed_kpi_daily')),
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    claimed_by   text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    requested_by text,
    cutoff       timestamptz,
    finished_at  timestamptz,
    error        text,
    xlsx         bytea,
    csv          bytea
);
CREATE UNIQUE INDEX reports_scheduled_once ON reports (scope, grain, period)
    WHERE kind = 'scheduled';
CREATE INDEX reports_recent ON reports (period DESC, scope);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT SELECT ON kpi_unit_targets TO ioc_reader;
        GRANT SELECT (id, kind, scope, grain, period, source, state, cutoff, finished_at)
            ON reports TO ioc_reader;
    END IF;
END $$;
