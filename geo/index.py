"""The per-commune geo join: the hot path of stage 1.

:class:`CommuneIndex` resolves whole batches of points to commune codes, columnar:

1. **source cache** — a fixed sensor sends the same coordinates every time; a source
   id whose last point had exactly the same ``(lat, lon)`` reuses its commune
   (outcome ``cache``). A source that moved is looked up again.
2. **containment** — one shapely 2 ``STRtree.query(points, predicate="intersects")``
   over the batch (outcome ``contains``). A point on a shared edge or vertex touches
   several communes; the rule is **the lowest commune code wins**, so the answer is
   deterministic and independent of batch composition.
3. **nearest** — a point inside no polygon takes the commune whose polygon is nearest
   in metres (local equirectangular scale at the point's latitude), if within
   ``nearest_max_m`` (outcome ``nearest``; ties: lowest code).
4. otherwise ``unassigned`` (commune and province code ``"unassigned"``). Points are
   never dropped; non-finite or out-of-range coordinates are ``unassigned`` too.

Outcome counts are kept as plain ints in :attr:`CommuneIndex.counts` (see
:meth:`CommuneIndex.take_counts`); metric wiring belongs to the caller.

Events that carry a commune code instead of a location go through
:meth:`CommuneIndex.check_code`: current codes pass (``code``), pre-2025 codes are
mapped when unambiguous (``legacy_code``), anything else raises
:class:`geo.errors.CommuneCodeError` with a reason code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import shapely

from geo.errors import BoundaryFileError, CommuneCodeError
from geo.grid import CellGrid
from geo.legacy import UNKNOWN, LegacyCodes
from ioccore.events.record import UNASSIGNED, GeoOutcome

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

    from ioccore.settings import Settings

ObjArray = npt.NDArray[np.object_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

M_PER_DEG_LAT: Final = 110_574.0
M_PER_DEG_LON_EQUATOR: Final = 111_320.0

# Outcome ids of the spatial path; their names index OUTCOMES.
CACHE: Final = 0
CONTAINS: Final = 1
NEAREST: Final = 2
NONE: Final = 3
OUTCOMES: Final[tuple[GeoOutcome, ...]] = ("cache", "contains", "nearest", "unassigned")
_OUTCOME_ARRAY = np.array(OUTCOMES, dtype=object)
_ORIGIN = shapely.Point(0.0, 0.0)

DEFAULT_CACHE_MAX = 1_000_000


class CommuneIndex:
    """Point -> commune over a fixed set of commune polygons (EPSG:4326).

    Not thread-safe (one per worker process; a worker is single-threaded).
    """

    __slots__ = (
        "_cache_max",
        "_codes",
        "_codes_ext",
        "_geoms",
        "_grid",
        "_legacy",
        "_n",
        "_pos",
        "_prov_ext",
        "_province_of",
        "_slot",
        "_slot_idx",
        "_slot_lat",
        "_slot_lon",
        "_tree",
        "counts",
        "nearest_max_m",
    )

    def __init__(
        self,
        codes: Sequence[str],
        province_codes: Sequence[str],
        geometries: Sequence[Any] | ObjArray,
        *,
        nearest_max_m: float = 2000.0,
        legacy: LegacyCodes | None = None,
        cache_max: int = DEFAULT_CACHE_MAX,
        grid_deg: float | None = 0.005,
    ) -> None:
        """Build from parallel sequences: commune code, its province code, its polygon.

        ``legacy`` enables pre-2025 code mapping in :meth:`check_code`; ``cache_max``
        bounds the source cache (it is cleared when full); ``grid_deg`` is the cell of
        the raster accelerator (:mod:`geo.grid`), ``None`` to query the tree only.
        """
        if not (len(codes) == len(province_codes) == len(geometries)):
            raise ValueError("codes, province_codes and geometries differ in length")
        if len(codes) == 0:
            raise BoundaryFileError("empty", "no commune polygons to index")
        order = np.argsort(np.asarray(codes, dtype=str), kind="stable")
        self._codes: ObjArray = np.asarray(codes, dtype=object)[order]
        if len(set(self._codes.tolist())) != len(self._codes):
            raise BoundaryFileError("duplicate_codes", "commune codes are not unique")
        prov = np.asarray(province_codes, dtype=object)[order]
        self._geoms: ObjArray = np.asarray(geometries, dtype=object)[order]
        if not shapely.is_valid(self._geoms).all():
            self._geoms = np.asarray(shapely.make_valid(self._geoms), dtype=object)
        self._n = len(self._codes)
        # Index n is the "unassigned" slot, so results are one take() away.
        self._codes_ext: ObjArray = np.append(self._codes, np.array([UNASSIGNED], dtype=object))
        self._prov_ext: ObjArray = np.append(prov, np.array([UNASSIGNED], dtype=object))
        self._pos = {c: i for i, c in enumerate(self._codes.tolist())}
        self._province_of = dict(zip(self._codes.tolist(), prov.tolist(), strict=True))
        self._province_of[UNASSIGNED] = UNASSIGNED
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)
        self._grid = CellGrid(self._geoms, grid_deg) if grid_deg else None
        self._legacy = legacy
        # Source cache: source id -> slot in three parallel arrays (point, result).
        self._slot: dict[str, int] = {}
        self._slot_lat = np.empty(0, dtype=np.float64)
        self._slot_lon = np.empty(0, dtype=np.float64)
        self._slot_idx = np.empty(0, dtype=np.intp)
        self._cache_max = cache_max
        self.nearest_max_m = float(nearest_max_m)
        self.counts: dict[str, int] = dict.fromkeys((*OUTCOMES, "code", "legacy_code"), 0)

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_units(
        cls, units: pd.DataFrame, *, nearest_max_m: float = 2000.0,
        legacy: LegacyCodes | None = None,
    ) -> CommuneIndex:
        """From a frame of units (the reference, a loaded file): rows with
        ``level == "commune"``, columns ``code``, ``parent_code`` (or
        ``province_code``) and ``geometry``."""
        communes = units[units["level"] == "commune"]
        parent = "province_code" if "province_code" in communes.columns else "parent_code"
        return cls(
            communes["code"].astype(str).tolist(),
            communes[parent].astype(str).tolist(),
            np.asarray(communes["geometry"].to_numpy(), dtype=object),
            nearest_max_m=nearest_max_m, legacy=legacy,
        )

    # ------------------------------------------------------------------- lookup
    @property
    def codes(self) -> ObjArray:
        """Commune codes, sorted (a copy)."""
        return self._codes.copy()

    def __len__(self) -> int:
        return self._n

    def lookup(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, source_ids: Sequence[str] | None = None
    ) -> tuple[ObjArray, ObjArray]:
        """Commune codes and outcomes (object arrays, one per point, in input order)."""
        idx, outcome = self.lookup_indices(lat, lon, source_ids)
        return self._codes_ext[idx], _OUTCOME_ARRAY[outcome]

    def assign(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, source_ids: Sequence[str] | None = None
    ) -> tuple[ObjArray, ObjArray, ObjArray]:
        """Like :meth:`lookup`, plus the province codes: ``(communes, provinces, outcomes)``."""
        idx, outcome = self.lookup_indices(lat, lon, source_ids)
        return self._codes_ext[idx], self._prov_ext[idx], _OUTCOME_ARRAY[outcome]

    def lookup_indices(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, source_ids: Sequence[str] | None = None
    ) -> tuple[IntArray, npt.NDArray[np.int8]]:
        """Positions into the sorted codes (``len(self)`` = unassigned) and outcome ids."""
        lat_a = np.asarray(lat, dtype=np.float64).ravel()
        lon_a = np.asarray(lon, dtype=np.float64).ravel()
        n = len(lat_a)
        if len(lon_a) != n or (source_ids is not None and len(source_ids) != n):
            raise ValueError("lat, lon and source_ids differ in length")
        idx = np.full(n, self._n, dtype=np.intp)
        outcome = np.full(n, NONE, dtype=np.int8)
        todo: IntArray
        if source_ids is not None and self._slot:
            todo = self._from_cache(lat_a, lon_a, source_ids, idx, outcome)
        else:
            todo = np.arange(n, dtype=np.intp)
        if len(todo):
            t_lat = lat_a[todo]
            t_lon = lon_a[todo]
            ok = (np.abs(t_lat) <= 90.0) & (np.abs(t_lon) <= 180.0)  # False for NaN
            if not ok.all():
                todo, t_lat, t_lon = todo[ok], t_lat[ok], t_lon[ok]
            found, how = self._spatial(t_lat, t_lon)
            idx[todo] = found
            outcome[todo] = how
            if source_ids is not None:
                self._remember(todo, t_lat, t_lon, found, source_ids)
        counts = np.bincount(outcome, minlength=len(OUTCOMES))
        for i, name in enumerate(OUTCOMES):
            self.counts[name] += int(counts[i])
        return idx, outcome

    def _from_cache(
        self, lat: FloatArray, lon: FloatArray, source_ids: Sequence[str],
        idx: IntArray, outcome: npt.NDArray[np.int8],
    ) -> IntArray:
        slots = np.fromiter(map(self._slot.get, source_ids, repeat(-1, len(source_ids))),
                            dtype=np.intp, count=len(source_ids))
        known = slots >= 0
        s = slots[known]
        hit = np.zeros(len(slots), dtype=bool)
        # Exact equality: a source that moved (or sent NaN) is looked up again.
        hit[known] = (self._slot_lat[s] == lat[known]) & (self._slot_lon[s] == lon[known])
        idx[hit] = self._slot_idx[slots[hit]]
        outcome[hit] = CACHE
        return np.flatnonzero(~hit)

    def _remember(
        self, pos: IntArray, lat: FloatArray, lon: FloatArray, found: IntArray,
        source_ids: Sequence[str],
    ) -> None:
        slot = self._slot
        if len(slot) + len(pos) > self._cache_max:
            self.invalidate()
        free = len(slot)
        slots = np.empty(len(pos), dtype=np.intp)
        for j, p in enumerate(pos.tolist()):
            sid = source_ids[p]
            k = slot.get(sid)
            if k is None:
                k = slot[sid] = free
                free += 1
            slots[j] = k
        if free > len(self._slot_lat):
            self._grow(free)
        self._slot_lat[slots] = lat
        self._slot_lon[slots] = lon
        self._slot_idx[slots] = found

    def _grow(self, need: int) -> None:
        size = max(need, 2 * len(self._slot_lat), 1024)
        for name in ("_slot_lat", "_slot_lon", "_slot_idx"):
            old = getattr(self, name)
            new = np.empty(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _spatial(self, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, npt.NDArray[np.int8]]:
        n = len(lat)
        found = np.full(n, self._n, dtype=np.intp)
        how = np.full(n, NONE, dtype=np.int8)
        if n == 0:
            return found, how
        if self._grid is not None:
            cell = self._grid.lookup(lat, lon)
            hit = cell >= 0
            found[hit] = cell[hit]
            how[hit] = CONTAINS
            exact = np.flatnonzero(~hit)
        else:
            exact = np.arange(n, dtype=np.intp)
        if len(exact):
            points = shapely.points(lon[exact], lat[exact])
            pt, geom = self._tree.query(points, predicate="intersects")
            if len(pt):
                # Tree positions follow the sorted codes: the minimum is the lowest code.
                sub = np.full(len(exact), self._n, dtype=np.intp)
                np.minimum.at(sub, pt, geom)
                found[exact] = sub
                how[exact[pt]] = CONTAINS
        miss = np.flatnonzero(found == self._n)
        if len(miss) and self.nearest_max_m > 0:
            near, dist_ok = self._nearest(lat[miss], lon[miss])
            found[miss[dist_ok]] = near[dist_ok]
            how[miss[dist_ok]] = NEAREST
        return found, how

    def _nearest(self, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Nearest commune within ``nearest_max_m`` metres, per point."""
        n = len(lat)
        best = np.full(n, self._n, dtype=np.intp)
        max_m = self.nearest_max_m
        kx = M_PER_DEG_LON_EQUATOR * np.maximum(np.cos(np.radians(lat)), 1e-6)
        dlat = max_m / M_PER_DEG_LAT
        dlon = max_m / kx
        boxes = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        pt, geom = self._tree.query(boxes)
        if len(pt) == 0:
            return best, np.zeros(n, dtype=bool)
        cands = self._geoms[geom]
        per = shapely.get_num_coordinates(cands)
        ox = np.repeat(lon[pt], per)
        oy = np.repeat(lat[pt], per)
        sx = np.repeat(kx[pt], per)

        def to_metres(xy: FloatArray) -> FloatArray:
            return np.column_stack(((xy[:, 0] - ox) * sx, (xy[:, 1] - oy) * M_PER_DEG_LAT))

        dist = shapely.distance(shapely.transform(cands, to_metres), _ORIGIN)
        keep = dist <= max_m
        pt, geom, dist = pt[keep], geom[keep], dist[keep]
        if len(pt) == 0:
            return best, np.zeros(n, dtype=bool)
        order = np.lexsort((geom, dist, pt))
        first = np.unique(pt[order], return_index=True)[1]
        chosen = order[first]
        best[pt[chosen]] = geom[chosen]
        return best, best != self._n

    def province_of(self, commune_codes: Iterable[str]) -> ObjArray:
        """Province codes for commune codes (``unassigned`` for unknown ones)."""
        get = self._province_of.get
        codes = list(commune_codes)
        return np.array([get(c, UNASSIGNED) for c in codes], dtype=object)

    def check_code(self, code: str) -> tuple[str, GeoOutcome]:
        """Validate an event's commune code: ``(current_code, "code" | "legacy_code")``.

        Raises :class:`CommuneCodeError` (``unknown_commune_code`` or
        ``ambiguous_legacy_code``).
        """
        if code in self._pos:
            self.counts["code"] += 1
            return code, "code"
        if self._legacy is None:
            raise CommuneCodeError(UNKNOWN, code, f"{code!r} is not a current commune code")
        new = self._legacy.resolve(code)
        if new not in self._pos:
            raise CommuneCodeError(
                UNKNOWN, code, f"pre-2025 code {code!r} maps to {new!r}, which is not loaded")
        self.counts["legacy_code"] += 1
        return new, "legacy_code"

    def invalidate(self) -> None:
        """Forget the source cache (boundaries reloaded)."""
        self._slot.clear()
        self._slot_lat = np.empty(0, dtype=np.float64)
        self._slot_lon = np.empty(0, dtype=np.float64)
        self._slot_idx = np.empty(0, dtype=np.intp)

    def take_counts(self) -> dict[str, int]:
        """Outcome counts since the last call, then reset to zero."""
        out = dict(self.counts)
        for k in self.counts:
            self.counts[k] = 0
        return out

    def geometry_of(self, code: str) -> Any:
        """The polygon indexed for ``code`` (KeyError if unknown)."""
        return self._geoms[self._pos[code]]


# --------------------------------------------------------------------- builders
def index_from_reference(
    path: Path | None = None, *, nearest_max_m: float = 2000.0, legacy: bool = True
) -> CommuneIndex:
    """The index over the bundled reference (about half a second; read without pandas)."""
    from geo.bundled import REFERENCE_FILE, communes_for_index

    codes, provinces, geoms = communes_for_index(path or REFERENCE_FILE)
    return CommuneIndex(codes, provinces, np.asarray(geoms, dtype=object),
                        nearest_max_m=nearest_max_m,
                        legacy=LegacyCodes.from_file() if legacy else None)


def index_from_database(
    conninfo: str, *, nearest_max_m: float = 2000.0, legacy: bool = True
) -> CommuneIndex:
    """The index over ``current_admin_units`` (communes valid today)."""
    from ioccore.db.connections import connect

    with connect(conninfo, purpose="geo") as conn:
        rows = conn.execute(
            "SELECT code, parent_code, ST_AsBinary(geom) FROM current_admin_units "
            "WHERE level = 'commune' ORDER BY code"
        ).fetchall()
    if not rows:
        raise BoundaryFileError("empty", "current_admin_units has no communes: run `ioc geo load`")
    codes, parents, wkb = zip(*rows, strict=True)
    geoms = shapely.from_wkb([bytes(w) for w in wkb])
    return CommuneIndex(
        list(codes), [p or UNASSIGNED for p in parents], np.asarray(geoms, dtype=object),
        nearest_max_m=nearest_max_m, legacy=LegacyCodes.from_file() if legacy else None,
    )


def index_for(settings: Settings, *, source: str = "reference") -> CommuneIndex:
    """The index a worker uses: ``source`` is ``"reference"`` or ``"database"``."""
    geo = settings.geo
    if source == "database":
        return index_from_database(settings.database.conninfo(),
                                   nearest_max_m=geo.nearest_max_m)
    return index_from_reference(settings.resolve(geo.reference),
                                nearest_max_m=geo.nearest_max_m)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) at ``lat``; the local scale used."""
    return M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat)), M_PER_DEG_LAT
