-- Citizen reports (the feedback feed, issue 27): reports, their status events, the
-- reporters' contacts (apart, never readable by ioc_reader), ratings and dead letters.
-- Every write is idempotent: a replayed (source_id, event_id) is a no-op, so the state
-- and the KPIs, derived from the set of events, do not depend on order or duplicates.

ALTER TABLE departments DROP CONSTRAINT IF EXISTS departments_feeds_check;
ALTER TABLE departments ADD CONSTRAINT departments_feeds_check
    CHECK (feeds <@ ARRAY['sensor', 'traffic', 'service', 'feedback']);

CREATE TABLE feedback_reports (
    report_id     text PRIMARY KEY,
    source_id     text NOT NULL,
    event_id      text NOT NULL,
    service_code  text NOT NULL,
    description   text NOT NULL CHECK (length(description) <= 4000),
    lat           double precision,
    lon           double precision,
    address       text CHECK (length(address) <= 256),
    media_url     text CHECK (length(media_url) <= 1024 AND media_url LIKE 'https://%'),
    commune_code  text,
    province_code text,
    department    text NOT NULL,
    received_at   timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, event_id)
);
CREATE INDEX feedback_reports_received ON feedback_reports (received_at);
CREATE INDEX feedback_reports_commune ON feedback_reports (commune_code, service_code, received_at);
CREATE INDEX feedback_reports_department ON feedback_reports (department, received_at);

CREATE TABLE feedback_status_events (
    source_id   text NOT NULL,
    event_id    text NOT NULL,
    report_id   text NOT NULL REFERENCES feedback_reports (report_id) ON DELETE CASCADE,
    department  text NOT NULL,
    status      text NOT NULL CHECK (status IN ('received', 'assigned', 'in_progress',
                                                'resolved', 'rejected')),
    reason      text CHECK (reason IN ('duplicate', 'out_of_scope')),
    note        text CHECK (length(note) <= 1000),
    occurred_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, event_id),
    CHECK ((status = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX feedback_status_events_report ON feedback_status_events (report_id, occurred_at);

-- the latest rating wins (by occurred_at, then the higher rating): order-independent
CREATE TABLE feedback_ratings (
    report_id   text PRIMARY KEY REFERENCES feedback_reports (report_id) ON DELETE CASCADE,
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    occurred_at timestamptz NOT NULL
);

-- who reported: apart from the report, deleted after the retention (ioc feedback purge)
CREATE TABLE feedback_contacts (
    report_id   text PRIMARY KEY REFERENCES feedback_reports (report_id) ON DELETE CASCADE,
    email       text CHECK (length(email) <= 254),
    phone       text CHECK (length(phone) <= 32),
    first_name  text CHECK (length(first_name) <= 100),
    last_name   text CHECK (length(last_name) <= 100),
    device_id   text CHECK (length(device_id) <= 128),
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_contacts_stored ON feedback_contacts (stored_at);

CREATE TABLE feedback_dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    principal   text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    payload     text NOT NULL CHECK (length(payload) <= 8192)
);

-- a report's state from its events: the last event by (occurred_at, workflow rank,
-- event_id) decides the status; closed_at is that event's time when it closes it
CREATE VIEW feedback_state AS
SELECT r.report_id, r.service_code, r.commune_code, r.province_code, r.department,
       r.received_at, r.due_at,
       coalesce(last.status, 'received') AS status,
       last.reason,
       CASE WHEN last.status IN ('resolved', 'rejected') THEN last.occurred_at END AS closed_at,
       coalesce(last.occurred_at, r.received_at) AS updated_at,
       rt.rating
FROM feedback_reports r
LEFT JOIN LATERAL (
    SELECT e.status, e.reason, e.occurred_at
    FROM feedback_status_events e
    WHERE e.report_id = r.report_id
    ORDER BY e.occurred_at DESC,
             CASE e.status WHEN 'received' THEN 0 WHEN 'assigned' THEN 1
                           WHEN 'in_progress' THEN 2 ELSE 3 END DESC,
             e.status DESC, e.event_id DESC
    LIMIT 1) last ON true
LEFT JOIN feedback_ratings rt ON rt.report_id = r.report_id;

-- what public clients and viewers may read: never the contact table
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT SELECT ON feedback_reports, feedback_status_events, feedback_ratings,
                        feedback_state TO ioc_reader;
        REVOKE ALL ON feedback_contacts, feedback_dead_letters FROM ioc_reader;
    END IF;
END $$;
