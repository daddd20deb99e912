-- Administrative units (provinces and communes) with validity dates, and the
-- per-commune views the API and Grafana read. Owner: geo (docs/geo.md).
--
-- A boundary reload never rewrites history: the current row of a changed unit gets
-- valid_to = the new version's valid_from and a new row is inserted. A unit is valid
-- on [valid_from, valid_to) (valid_to NULL: still valid). Rows loaded from the bundled
-- reference have approximate = true (Voronoi polygons, not official boundaries).

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE admin_units (
    code         text NOT NULL,
    name         text NOT NULL,
    name_en      text,
    level        text NOT NULL CHECK (level IN ('province', 'commune')),
    type         text,
    parent_code  text,
    geom         geometry(MultiPolygon, 4326) NOT NULL,
    centroid     geometry(Point, 4326) NOT NULL,
    area_km2     double precision,
    approximate  boolean NOT NULL DEFAULT false,
    source       text NOT NULL,
    valid_from   date NOT NULL,
    valid_to     date,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from),
    CHECK ((level = 'commune') = (parent_code IS NOT NULL))
);
-- At most one open version per code.
CREATE UNIQUE INDEX admin_units_open ON admin_units (code) WHERE valid_to IS NULL;
CREATE INDEX admin_units_geom ON admin_units USING gist (geom);
CREATE INDEX admin_units_parent ON admin_units (parent_code, level);

COMMENT ON COLUMN admin_units.centroid IS
    'Official centre point when the source gives one, else ST_PointOnSurface(geom)';
COMMENT ON COLUMN admin_units.approximate IS
    'true when geom is derived (Voronoi cells of centroids), not an official boundary';

-- Units valid today (the session's current_date).
CREATE VIEW current_admin_units AS
SELECT *
FROM admin_units
WHERE valid_from <= current_date
  AND (valid_to IS NULL OR valid_to > current_date);

-- One row per current commune with its province: the join target for every
-- per-commune view, and a Grafana Geomap source (latitude/longitude columns).
CREATE VIEW current_communes AS
SELECT c.code            AS commune_code,
       c.name            AS commune_name,
       c.name_en         AS commune_name_en,
       c.type            AS commune_type,
       c.parent_code     AS province_code,
       p.name            AS province_name,
       c.area_km2,
       c.approximate,
       ST_Y(c.centroid)  AS latitude,
       ST_X(c.centroid)  AS longitude,
       c.geom,
       c.valid_from,
       c.source
FROM current_admin_units c
LEFT JOIN current_admin_units p ON p.code = c.parent_code AND p.level = 'province'
WHERE c.level = 'commune';

CREATE VIEW current_provinces AS
SELECT p.code            AS province_code,
       p.name            AS province_name,
       p.name_en         AS province_name_en,
       p.type            AS province_type,
       p.area_km2,
       p.approximate,
       ST_Y(p.centroid)  AS latitude,
       ST_X(p.centroid)  AS longitude,
       (SELECT count(*) FROM current_admin_units c
         WHERE c.level = 'commune' AND c.parent_code = p.code) AS communes,
       p.geom,
       p.valid_from,
       p.source
FROM current_admin_units p
WHERE p.level = 'province';
