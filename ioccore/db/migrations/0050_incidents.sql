-- Incidents: the unit of response (docs/incidents.md). An incident gathers alert
-- episodes, follows open -> acknowledged -> in_progress -> resolved -> closed, and may
-- reopen; each opening is a "response" (incident_responses), the row the response KPIs
-- read. Escalation timers are rows with a due time, fired exactly once under the
-- incident's row lock (alerts/incidents/timers.py).

CREATE TABLE IF NOT EXISTS incidents (
    id               bigserial PRIMARY KEY,
    title            text NOT NULL,
    rule_id          text,                    -- NULL: opened by an operator without a rule
    province_code    text,
    department       text NOT NULL,           -- the owner
    assignee         text,                    -- a named person, optional
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state            text NOT NULL
        CHECK (state IN ('open', 'acknowledged', 'in_progress', 'resolved', 'closed')),
    sop_id           text,
    cycle            integer NOT NULL DEFAULT 1,   -- 1 + number of reopenings
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL,
    opened_at        timestamptz NOT NULL,    -- start of the current cycle
    acknowledged_at  timestamptz,             -- of the current cycle
    resolved_at      timestamptz,             -- of the current cycle
    closed_at        timestamptz,
    ack_due_at       timestamptz NOT NULL,    -- SLA deadlines of the current cycle
    resolve_due_at   timestamptz NOT NULL,
    merged_into      bigint REFERENCES incidents (id),
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_active_idx ON incidents (rule_id, province_code)
    WHERE state IN ('open', 'acknowledged', 'in_progress');
CREATE INDEX IF NOT EXISTS incidents_board_idx ON incidents (department, state, updated_at DESC);
CREATE INDEX IF NOT EXISTS incidents_updated_idx ON incidents (updated_at DESC, id DESC);

-- One row per opening of an incident (its first opening and every reopening).
CREATE TABLE IF NOT EXISTS incident_responses (
    incident_id     bigint NOT NULL REFERENCES incidents (id),
    cycle           integer NOT NULL,
    opened_at       timestamptz NOT NULL,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    ack_due_at      timestamptz NOT NULL,
    resolve_due_at  timestamptz NOT NULL,
    PRIMARY KEY (incident_id, cycle)
);
CREATE INDEX IF NOT EXISTS incident_responses_opened_idx ON incident_responses (opened_at);

-- Alert episodes (fingerprint + the episode's started_at) attached to incidents. A
-- detached row stays: the intake never re-attaches an episode an operator detached.
CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id   bigint NOT NULL REFERENCES incidents (id),
    fingerprint   text NOT NULL,
    episode_start timestamptz NOT NULL,
    attached_at   timestamptz NOT NULL,
    attached_by   text NOT NULL,
    detached_at   timestamptz,
    detached_by   text,
    PRIMARY KEY (fingerprint, episode_start, incident_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS incident_alerts_one_owner_idx
    ON incident_alerts (fingerprint, episode_start) WHERE detached_at IS NULL;
CREATE INDEX IF NOT EXISTS incident_alerts_incident_idx
    ON incident_alerts (incident_id, attached_at, fingerprint);

-- The audit trail and timeline: who did what, when, with which note.
CREATE TABLE IF NOT EXISTS incident_events (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    from_state  text,
    to_state    text,
    note        text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS incident_events_incident_idx ON incident_events (incident_id, id);

-- The SOP checklist of an incident (copied from config/sops when it opens).
CREATE TABLE IF NOT EXISTS incident_steps (
    incident_id bigint NOT NULL REFERENCES incidents (id),
    step_id     text NOT NULL,
    position    integer NOT NULL,
    title_vi    text NOT NULL,
    title_en    text NOT NULL,
    department  text NOT NULL,
    requires    text NOT NULL CHECK (requires IN ('none', 'note', 'evidence')),
    due_at      timestamptz NOT NULL,
    done_at     timestamptz,
    done_by     text,
    note        text,
    evidence    text,
    PRIMARY KEY (incident_id, step_id)
);

-- Durable escalation timers: due rows not yet fired or cancelled.
CREATE TABLE IF NOT EXISTS incident_timers (
    id           bigserial PRIMARY KEY,
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    cycle        integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('ack', 'resolve')),
    level        integer NOT NULL CHECK (level BETWEEN 1 AND 3),
    due_at       timestamptz NOT NULL,
    fired_at     timestamptz,
    cancelled_at timestamptz,
    UNIQUE (incident_id, cycle, kind, level)
);
CREATE INDEX IF NOT EXISTS incident_timers_due_idx ON incident_timers (due_at)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- What each fired timer did: one row per timer at most (UNIQUE timer_id).
CREATE TABLE IF NOT EXISTS incident_escalations (
    id          bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    timer_id    bigint NOT NULL UNIQUE REFERENCES incident_timers (id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    level       integer NOT NULL,
    target_role text NOT NULL CHECK (target_role IN ('duty_officer', 'head', 'ioc_leader')),
    target_name text NOT NULL,
    department  text NOT NULL,
    fired_by    text NOT NULL              -- the runner (host:pid) that fired it
);
CREATE INDEX IF NOT EXISTS incident_escalations_incident_idx
    ON incident_escalations (incident_id, id);

-- A department-scoped human role: sees and acts on its department's incidents and
-- alerts; no ingest rights, no operator rights (ioc/api/auth.py).
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('department', 'responder', 'viewer', 'operator', 'admin'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_responder_department_check
    CHECK (role <> 'responder' OR department IS NOT NULL);
