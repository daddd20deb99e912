-- What the KPI dashboards read (config/grafana/dashboards/ioc-kpi-national.json and the
-- KPI panels of ioc-services), for the read-only dashboard role when it exists (the
-- security engineer's roles: ioc_reader; ioc_writer gets later tables by default
-- privileges). kpi_target() reads kpi_target_values as the caller (SECURITY INVOKER).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT SELECT ON agencies, dossiers, dossier_tiers, kpi_facts, kpi_daily,
                        overdue_dossiers, kpi_target_values, kpi_targets, current_provinces
            TO ioc_reader;
    END IF;
END $$;
