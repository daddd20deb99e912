-- MQTT principals (docs/mqtt.md): Mosquitto's password and ACL files are rendered from
-- this table and `departments` by `ioc mqtt sync`. Only the PBKDF2-SHA512 hash in
-- Mosquitto's own format ($7$) is kept; the password is shown once when created.
CREATE TABLE mqtt_users (
    username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    role           text NOT NULL CHECK (role IN ('department', 'bridge')),
    department     text REFERENCES departments (code) ON DELETE CASCADE,
    password_hash  text NOT NULL CHECK (password_hash LIKE '$7$%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    rotated_at     timestamptz,
    CHECK ((role = 'department') = (department IS NOT NULL))
);
