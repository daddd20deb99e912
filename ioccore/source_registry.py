"""The source registry: which department publishes which feeds from which sources.

One registry serves the HTTP gateway and stage 1 (events a department wrote to its own
Kafka topics). A row of ``sources`` is a registration. Sources are registered

* explicitly (``ioc sources register``), or
* automatically on first use, but only up to the department's ``source_quota``
  (``departments.source_quota``, 0 = explicit only); the department row is locked while
  counting, so concurrent first uses cannot exceed the quota and exactly one department
  gets a contested id.

:func:`authorise` answers for a batch of (source, feed) claims in one transaction and
returns the refusals with their reason codes (:class:`ioccore.events.reasons.Reason`).

A department, or a single source, may be bound to an :class:`Area` (province and
commune codes, migration 0047); :func:`areas` reads the area in effect for sources and
:meth:`Area.refusal` says whether a reading's commune lies outside it (``out_of_area``).
Stage 1 (``streams/area_scope.py``) and the gateway apply it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from ioccore.events.reasons import Reason

FEEDS = ("sensor", "traffic", "service")


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Location:
    """Where a source is, recorded on registration (optional)."""

    commune_code: str | None = None
    lat: float | None = None
    lon: float | None = None


AREA_MAX_CODES: Final = 10_000
"""Most codes one area lists (the province has far fewer communes)."""
_AREA_CODE: Final = re.compile(r"\d{2}|\d{5}")


@dataclass(frozen=True, slots=True)
class Area:
    """Where a source may report: province codes (2 digits) and commune codes (5)."""

    provinces: frozenset[str]
    communes: frozenset[str]

    @classmethod
    def of(cls, codes: Iterable[str]) -> Area:
        """``ValueError`` for a code that is neither a province's nor a commune's."""
        provinces: set[str] = set()
        communes: set[str] = set()
        for code in codes:
            code = code.strip()
            if not _AREA_CODE.fullmatch(code):
                raise ValueError(f"not a province (2 digits) or commune (5 digits) code: "
                                 f"{code[:20]!r}")
            (provinces if len(code) == 2 else communes).add(code)
        if not provinces and not communes:
            raise ValueError("an area lists at least one code")
        if len(provinces) + len(communes) > AREA_MAX_CODES:
            raise ValueError(f"an area lists at most {AREA_MAX_CODES} codes")
        return cls(frozenset(provinces), frozenset(communes))

    def contains(self, commune_code: str, province_code: str) -> bool:
        return commune_code in self.communes or province_code in self.provinces

    def refusal(self, source_id: str, commune_code: str, province_code: str
                ) -> Refusal | None:
        """None when the reading lies inside; a reading of unknown place (commune
        ``unassigned``) is outside every bound area: it cannot show it is inside."""
        if self.contains(commune_code, province_code):
            return None
        return Refusal(Reason.OUT_OF_AREA, f"source {source_id!r} may not report for "
                       f"commune {commune_code} (outside its registered area)")

    def codes(self) -> list[str]:
        return sorted(self.provinces | self.communes)


_AREAS = ("SELECT s.source_id, coalesce(s.area, d.area) FROM sources s "
          "LEFT JOIN departments d ON d.code = s.department WHERE s.source_id = ANY(%s)")


async def areas(conn: psycopg.AsyncConnection[Any], source_ids: Sequence[str]
                ) -> dict[str, Area | None]:
    """The area in effect for each registered source (its own, else its department's;
    None: unbound). Sources not in the registry are absent from the answer."""
    if not source_ids:
        return {}
    cur = await conn.execute(_AREAS, (list(source_ids),))
    return {str(r[0]): (Area.of(r[1]) if r[1] else None) for r in await cur.fetchall()}


_OWNERS = ("SELECT source_id, department, feed FROM sources WHERE source_id = ANY(%s)")
_AUTO = """
INSERT INTO sources (source_id, department, feed, commune_code, lat, lon, registration,
                     registered_by)
SELECT s, %s, f, c, la, lo, 'auto', %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[])
     AS t(s, f, c, la, lo)
ON CONFLICT (source_id) DO NOTHING
RETURNING source_id
"""


async def authorise(conn: psycopg.AsyncConnection[Any], department: str,
                    claims: Mapping[str, str], *, actor: str,
                    locations: Mapping[str, Location] | None = None
                    ) -> dict[str, Refusal]:
    """Refusals per source id for ``department`` publishing ``claims`` (source -> feed).

    A source missing from the registry is registered to the department while its quota
    allows (``actor`` is recorded), otherwise refused ``unregistered_source``.
    """
    if not claims:
        return {}
    refused: dict[str, Refusal] = {}
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT feeds, source_quota FROM departments WHERE code = %s", (department,))
        row = await cur.fetchone()
        feeds: list[str] = list(row[0]) if row else []
        for source, feed in claims.items():
            if feed not in feeds:
                refused[source] = Refusal(Reason.FORBIDDEN_FEED, (
                    f"department {department} does not publish the {feed} feed"
                    if row else f"department {department} is not registered"))
        wanted = {s: f for s, f in claims.items() if s not in refused}
        if not wanted:
            return refused
        owners = {str(r[0]): (str(r[1]), str(r[2])) for r in await (
            await conn.execute(_OWNERS, (list(wanted),))).fetchall()}
        missing = [s for s in wanted if s not in owners]
        if missing and row is not None and int(row[1]) > 0:
            await conn.execute("SELECT 1 FROM departments WHERE code = %s FOR UPDATE",
                               (department,))
            used_row = await (await conn.execute(
                "SELECT count(*) FROM sources WHERE department = %s AND registration = 'auto'",
                (department,))).fetchone()
            room = max(0, int(row[1]) - int(used_row[0] if used_row else 0))
            take = sorted(missing)[:room]
            locs = locations or {}
            if take:
                await conn.execute(_AUTO, (
                    department, actor, take, [wanted[s] for s in take],
                    [locs.get(s, Location()).commune_code for s in take],
                    [locs.get(s, Location()).lat for s in take],
                    [locs.get(s, Location()).lon for s in take]))
                owners.update({str(r[0]): (str(r[1]), str(r[2])) for r in await (
                    await conn.execute(_OWNERS, (take,))).fetchall()})
        for source, feed in wanted.items():
            owner = owners.get(source)
            if owner is None:
                refused[source] = Refusal(Reason.UNREGISTERED_SOURCE, (
                    f"source {source!r} is not registered to {department} and its "
                    "automatic registration quota is used up (ioc sources register)"))
            elif owner[0] != department:
                refused[source] = Refusal(Reason.FORBIDDEN_SOURCE,
                                          f"source {source!r} belongs to another department")
            elif owner[1] != feed:
                refused[source] = Refusal(Reason.FORBIDDEN_SOURCE,
                                          f"source {source!r} is registered for the "
                                          f"{owner[1]} feed, not {feed}")
    return refused


# ------------------------------------------------------------------ explicit acts (CLI)
class RegistryError(Exception):
    """A registration that would take a source from another department, or similar."""


def register(conn: psycopg.Connection[Any], department: str, feed: str,
             source_ids: Sequence[str], *, actor: str,
             location: Location | None = None) -> list[str]:
    """Register sources to a department explicitly; returns the newly registered ids.

    A source already registered to the same department and feed is kept (idempotent);
    one owned by another department, or by another feed, is an error (nothing changes).
    """
    loc = location or Location()
    with conn.transaction():
        row = conn.execute("SELECT feeds FROM departments WHERE code = %s",
                           (department,)).fetchone()
        if row is None:
            raise RegistryError(f"department {department} does not exist")
        if feed not in row[0]:
            raise RegistryError(f"department {department} does not publish {feed}")
        clash = conn.execute(
            "SELECT source_id, department, feed FROM sources WHERE source_id = ANY(%s) "
            "AND (department <> %s OR feed <> %s)",
            (list(source_ids), department, feed)).fetchall()
        if clash:
            raise RegistryError("already registered elsewhere: " + ", ".join(
                f"{r[0]} ({r[1]}/{r[2]})" for r in clash))
        new = conn.execute(
            "INSERT INTO sources (source_id, department, feed, commune_code, lat, lon, "
            "registration, registered_by) SELECT s, %s, %s, %s, %s, %s, 'explicit', %s "
            "FROM unnest(%s::text[]) AS s ON CONFLICT (source_id) DO UPDATE SET "
            "registration = 'explicit', registered_by = EXCLUDED.registered_by "
            "RETURNING source_id, (xmax = 0)",
            (department, feed, loc.commune_code, loc.lat, loc.lon, actor,
             list(source_ids))).fetchall()
    return [str(r[0]) for r in new if r[1]]


def unregister(conn: psycopg.Connection[Any], department: str,
               source_ids: Sequence[str]) -> list[str]:
    """Remove registrations of the department's sources (their stored events stay)."""
    with conn.transaction():
        rows = conn.execute("DELETE FROM sources WHERE department = %s AND source_id = ANY(%s)"
                            " RETURNING source_id", (department, list(source_ids))).fetchall()
    return [str(r[0]) for r in rows]


def set_quota(conn: psycopg.Connection[Any], department: str, quota: int) -> bool:
    if quota < 0:
        raise RegistryError("the quota cannot be negative")
    cur = conn.execute("UPDATE departments SET source_quota = %s WHERE code = %s",
                       (quota, department))
    return cur.rowcount == 1


def set_area(conn: psycopg.Connection[Any], department: str, codes: Sequence[str] | None,
             *, source_ids: Sequence[str] = ()) -> int:
    """Bind the department (or only ``source_ids`` of it) to an area; ``codes`` None
    unbinds. Returns the rows changed (0: no such department or sources)."""
    area = Area.of(codes).codes() if codes is not None else None
    if source_ids:
        cur = conn.execute("UPDATE sources SET area = %s WHERE department = %s "
                           "AND source_id = ANY(%s)", (area, department, list(source_ids)))
    else:
        cur = conn.execute("UPDATE departments SET area = %s WHERE code = %s",
                           (area, department))
    return cur.rowcount


def list_sources(conn: psycopg.Connection[Any], department: str | None = None
                 ) -> list[tuple[str, str, str, str, str | None]]:
    rows = conn.execute(
        "SELECT source_id, department, feed, registration, registered_by FROM sources "
        "WHERE %(d)s::text IS NULL OR department = %(d)s ORDER BY department, source_id",
        {"d": department}).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4]) for r in rows]
