-- Least privilege (docs/security.md) and the source registry.
--
-- Roles are cluster-wide and created by whoever installs the database (the local stack,
-- config/postgres/init for compose), never here: the owner running migrations has no
-- CREATEROLE. Here, the owner grants on its own objects to two group roles, when they
-- exist: ioc_writer (the application) and ioc_reader (Grafana).

-- The registry: a source row is a registration (explicit, or automatic within the
-- department's quota); stage 2's activity upsert only ever touches registered sources.
ALTER TABLE departments ADD COLUMN source_quota integer NOT NULL DEFAULT 50
    CHECK (source_quota >= 0);
COMMENT ON COLUMN departments.source_quota IS
    'How many sources may be registered automatically on first use (0: explicit only)';
ALTER TABLE sources ADD COLUMN registration text NOT NULL DEFAULT 'observed'
    CHECK (registration IN ('explicit', 'auto', 'observed'));
ALTER TABLE sources ADD COLUMN registered_by text;
CREATE INDEX IF NOT EXISTS sources_department_registration_idx
    ON sources (department, registration);

-- Retention for a role that does not own the hypertables: drop_chunks needs the owner,
-- so the owner offers exactly that, limited to the tables with a retention row.
CREATE OR REPLACE FUNCTION ioc_drop_chunks(rel regclass, keep interval)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retention r WHERE r.hypertable::regclass = rel) THEN
        RAISE EXCEPTION 'no retention configured for %', rel;
    END IF;
    RETURN QUERY SELECT drop_chunks(rel, older_than => keep)::text;
END $$;
REVOKE ALL ON FUNCTION ioc_drop_chunks(regclass, interval) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_writer') THEN
        GRANT USAGE ON SCHEMA public TO ioc_writer;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ioc_writer;
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ioc_writer;
        GRANT EXECUTE ON FUNCTION ioc_drop_chunks(regclass, interval) TO ioc_writer;
        -- Tables and sequences of later migrations (created by this same owner).
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ioc_writer;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ioc_writer;
        -- The migration bookkeeping is the owner's alone.
        REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ioc_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        -- Only what the dashboards read (config/grafana/dashboards); nothing else,
        -- never api_keys. A new dashboard relation needs a grant in a new migration.
        GRANT USAGE ON SCHEMA public TO ioc_reader;
        GRANT SELECT ON rollup_1m, alerts, current_communes, current_provinces,
                        sensor_readings, traffic_observations, service_events,
                        kpi_targets, service_kpi_daily
            TO ioc_reader;
    END IF;
END $$;
