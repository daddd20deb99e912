-- Agency registry (docs/kpis.md): which agencies receive dossiers, at which tier.
-- `code` is what service events carry in body.agency. Loaded from a file like the
-- boundaries (`ioc agencies load`), keeping history: a changed agency's open row gets
-- valid_to = the new version's valid_from and a new row is inserted. A version is valid
-- on [valid_from, valid_to), dates in Vietnam time. An agency not in the registry is
-- not an error: its dossiers get tier 'unassigned' until the registry knows it, and a
-- later load reassigns them (tier is joined at query time, never stored per event).

CREATE TABLE agencies (
    code           text NOT NULL CHECK (length(code) BETWEEN 1 AND 128),
    name           text NOT NULL,
    tier           text NOT NULL CHECK (tier IN ('province', 'commune')),
    seat_commune   text,
    province_code  text NOT NULL,
    source         text NOT NULL,
    valid_from     date NOT NULL,
    valid_to       date,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE UNIQUE INDEX agencies_open ON agencies (code) WHERE valid_to IS NULL;
CREATE INDEX agencies_province ON agencies (province_code, tier);

COMMENT ON TABLE agencies IS
    'Agencies receiving dossiers with their tier (province|commune); docs/kpis.md';
