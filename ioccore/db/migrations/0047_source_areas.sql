-- Geographic scope of sources (issue 24, finding 5): a department, or one source, is
-- bound to an area, a list of province codes (2 digits) and commune codes (5 digits).
-- A reading whose commune lies outside its source's area is dead-lettered
-- `out_of_area`. NULL means unbound (the whole territory), the default, so existing
-- departments keep working until an operator binds them (`ioc sources area`).
ALTER TABLE departments ADD COLUMN IF NOT EXISTS area text[]
    CHECK (area IS NULL OR cardinality(area) BETWEEN 1 AND 10000);
COMMENT ON COLUMN departments.area IS
    'Province (2-digit) and commune (5-digit) codes its sources may report for; NULL: any';
ALTER TABLE sources ADD COLUMN IF NOT EXISTS area text[]
    CHECK (area IS NULL OR cardinality(area) BETWEEN 1 AND 10000);
COMMENT ON COLUMN sources.area IS
    'Narrower area of this one source (overrides its department''s); NULL: the department''s';
