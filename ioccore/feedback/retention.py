"""The reporters' contact retention: contacts are deleted ``contact_retention_days``
after they were stored (the reports stay, without anyone's name)."""

from __future__ import annotations

from typing import Any

import psycopg


def purge_contacts(conn: psycopg.Connection[Any], *, retention_days: int) -> int:
    """Delete contacts older than the retention; the number deleted."""
    cur = conn.execute("DELETE FROM feedback_contacts"
                       " WHERE stored_at < now() - make_interval(days => %s)",
                       (retention_days,))
    return cur.rowcount
