-- KPI targets per province and tier with validity dates (docs/kpis.md). kpi_targets
-- (0004) stays the catalogue of KPIs and their national default. province_code and tier
-- '*' mean "any"; the most specific valid row wins: province+tier, then province, then
-- tier, then '*'/'*'. Dates are Vietnam-time days; a row is valid on [valid_from, valid_to).
CREATE TABLE kpi_target_values (
    kpi            text NOT NULL REFERENCES kpi_targets (kpi),
    province_code  text NOT NULL DEFAULT '*',
    tier           text NOT NULL DEFAULT '*'
                   CHECK (tier IN ('*', 'province', 'commune', 'unassigned')),
    target         double precision NOT NULL CHECK (target >= 0 AND target <= 1),
    valid_from     date NOT NULL,
    valid_to       date,
    source         text NOT NULL DEFAULT 'manual',
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kpi, province_code, tier, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

INSERT INTO kpi_target_values (kpi, target, valid_from, source)
SELECT kpi, target, date '2025-07-01', 'kpi_targets' FROM kpi_targets;

-- The target in effect for a KPI, province and tier on a day (NULL: none).
CREATE FUNCTION kpi_target(p_kpi text, p_province text, p_tier text, p_day date)
RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT target FROM kpi_target_values
    WHERE kpi = p_kpi AND province_code IN (coalesce(p_province, '*'), '*')
      AND tier IN (coalesce(p_tier, '*'), '*')
      AND valid_from <= p_day AND (valid_to IS NULL OR valid_to > p_day)
    ORDER BY (province_code <> '*') DESC, (tier <> '*') DESC, valid_from DESC
    LIMIT 1
$$;
