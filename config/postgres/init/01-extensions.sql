-- docker-compose.yml only: run once by the TimescaleDB image when its volume is new.
-- The local stack (`ioc stack up`) creates the same extensions itself.
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS postgis;
