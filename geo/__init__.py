"""Administrative boundaries and the per-commune geo join (see docs/geo.md)."""
