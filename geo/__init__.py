"""Administrative boundaries and the per-commune geo join (see docs/geo.md).

The public surface is the modules in ``__all__``: ``index`` (``CommuneIndex``,
``index_for``), ``reference`` (the bundled registry), ``loader`` and ``store`` (a user's
boundary file into ``admin_units``), ``bundled`` and ``errors``. ``grid``, ``legacy``
and ``voronoi`` are internals of those; an import-linter contract (pyproject.toml)
keeps the other packages from reaching into them. Nothing is imported here eagerly:
``geo.errors`` must stay cheap for callers that never build an index (geopandas).
"""

__all__ = ["bundled", "errors", "index", "loader", "reference", "store"]
