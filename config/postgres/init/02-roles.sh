#!/bin/bash
# docker-compose.yml only, run once by the TimescaleDB image on a new volume, as the
# image's superuser. The same roles as the local stack (tools/iocdev/stack/postgres.py):
#   ioc          owns the database and schema; migrations run as it (no superuser)
#   ioc_app      the application (member of ioc_writer: rows only, grants in 0015)
#   ioc_grafana  Grafana (member of ioc_reader: SELECT on the dashboards' relations)
set -euo pipefail
# Passwords are read by psql from its environment (\getenv, psql 15), never from argv
# (/proc/*/cmdline); :'var' quotes them as SQL literals.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv owner_pw IOC_DB_OWNER_PASSWORD
\getenv app_pw IOC_DB_APP_PASSWORD
\getenv grafana_pw IOC_DB_GRAFANA_PASSWORD
CREATE ROLE ioc_writer NOLOGIN;
CREATE ROLE ioc_reader NOLOGIN;
CREATE ROLE ioc LOGIN NOSUPERUSER NOCREATEROLE PASSWORD :'owner_pw';
CREATE ROLE ioc_app LOGIN NOSUPERUSER NOCREATEROLE IN ROLE ioc_writer PASSWORD :'app_pw';
CREATE ROLE ioc_grafana LOGIN NOSUPERUSER NOCREATEROLE IN ROLE ioc_reader PASSWORD :'grafana_pw';
ALTER DATABASE ioc OWNER TO ioc;
REVOKE ALL ON DATABASE ioc FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE ioc TO ioc_app, ioc_grafana;
SQL
