-- Event identity (docs/events.md): (source_id, event_id) identifies an event whatever its
-- occurred_at. The first stored wins; a re-send with another time is a duplicate. A
-- hypertable's unique index must contain its time column, so identity lives in one small
-- key table per feed, checked in the sink's insert statement (the same transaction).
-- Rows older than the feed's retention are deleted by maintenance with their raw chunks.
CREATE TABLE sensor_readings_keys (
    source_id  text NOT NULL,
    event_id   text NOT NULL,
    time       timestamptz NOT NULL,
    PRIMARY KEY (source_id, event_id)
);
CREATE TABLE traffic_observations_keys (LIKE sensor_readings_keys INCLUDING ALL);
CREATE TABLE service_events_keys (LIKE sensor_readings_keys INCLUDING ALL);

-- Existing rows: the earliest stored of each identity holds it.
INSERT INTO sensor_readings_keys
SELECT DISTINCT ON (source_id, event_id) source_id, event_id, time
FROM sensor_readings ORDER BY source_id, event_id, stored_at;
INSERT INTO traffic_observations_keys
SELECT DISTINCT ON (source_id, event_id) source_id, event_id, time
FROM traffic_observations ORDER BY source_id, event_id, stored_at;
INSERT INTO service_events_keys
SELECT DISTINCT ON (source_id, event_id) source_id, event_id, time
FROM service_events ORDER BY source_id, event_id, stored_at;

-- The key tables now hold identity; the raw tables' unique indexes (which contain time and
-- so could not) would only cost a second index insert per row. A source's events are
-- found through its key table (which leads with source_id and holds each event's time),
-- then by time in the hypertable.
DROP INDEX sensor_readings_event;
DROP INDEX traffic_observations_event;
DROP INDEX service_events_event;
