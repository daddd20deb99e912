"""Which TimescaleDB edition the database runs: decides who does rollups and retention.

``apache`` (built here from Debian's source): hypertables, time_bucket, drop_chunks, but
no continuous aggregates, compression or policies, so the application refreshes hourly
rollups and drops old chunks itself. ``timescale`` (Community, e.g. the Docker image):
continuous aggregates and policies do that work inside the database.
"""

from __future__ import annotations

from typing import Literal

from ioccore.db.connections import connect

Edition = Literal["apache", "timescale"]


def timescale_edition(conninfo: str) -> Edition:
    with connect(conninfo, purpose="edition") as conn:
        row = conn.execute("SHOW timescaledb.license").fetchone()
    license_ = str(row[0]) if row else "apache"
    return "timescale" if license_ == "timescale" else "apache"
