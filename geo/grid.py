"""A raster accelerator in front of the STRtree.

The polygons' bounding box is cut into square cells of ``cell_deg`` degrees. A cell
whose closed box lies inside exactly one polygon's interior stores that polygon's
position; every other cell (near a boundary, outside all polygons) stores ``-1`` and
its points go to the exact STRtree path. A grid answer is therefore always the answer
the STRtree would give, only cheaper (one array read per point).

Building: polygon boundaries are densified to half a cell and the cells of those
samples, dilated by one cell, are marked "boundary" (an edge crossing a cell always
passes within one cell of a sample). The remaining cells are classified by their
centre with ``shapely.contains_xy`` per polygon over its bounding box. Where polygons
overlap, the lowest position (lowest code) is written last and wins, as in the tree.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely

MAX_CELLS = 20_000_000
"""Upper bound of the raster size; the cell grows until the raster fits."""


class CellGrid:
    """Point -> polygon position for cells fully inside one polygon, ``-1`` otherwise."""

    __slots__ = ("cell", "grid", "height", "width", "x0", "y0")

    def __init__(self, geoms: npt.NDArray[np.object_], cell_deg: float = 0.005) -> None:
        xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
        cell = cell_deg
        while math.ceil((xmax - xmin) / cell + 2) * math.ceil((ymax - ymin) / cell + 2) > MAX_CELLS:
            cell *= 2
        self.cell = cell
        self.x0 = xmin - cell
        self.y0 = ymin - cell
        self.width = math.ceil((xmax - self.x0) / cell) + 2
        self.height = math.ceil((ymax - self.y0) / cell) + 2
        dtype = np.int16 if len(geoms) < 32_000 else np.int32
        grid = np.full((self.height, self.width), -1, dtype=dtype)
        boundary = self._boundary_mask(geoms)
        bounds = shapely.bounds(geoms)
        for pos in range(len(geoms) - 1, -1, -1):
            bx0, by0, bx1, by1 = bounds[pos]
            c0, r0 = self._cell_of(bx0, by0)
            c1, r1 = self._cell_of(bx1, by1)
            cols = np.arange(c0, c1 + 1)
            rows = np.arange(r0, r1 + 1)
            cx = self.x0 + (cols + 0.5) * cell
            cy = self.y0 + (rows + 0.5) * cell
            inside = shapely.contains_xy(geoms[pos], cx[np.newaxis, :], cy[:, np.newaxis])
            inside &= ~boundary[r0:r1 + 1, c0:c1 + 1]
            grid[r0:r1 + 1, c0:c1 + 1][inside] = pos
        self.grid = grid

    def _cell_of(self, x: float, y: float) -> tuple[int, int]:
        return int((x - self.x0) / self.cell), int((y - self.y0) / self.cell)

    def _boundary_mask(self, geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
        lines = shapely.segmentize(shapely.boundary(geoms), self.cell / 2)
        xy = shapely.get_coordinates(lines)
        cols = ((xy[:, 0] - self.x0) / self.cell).astype(np.intp)
        rows = ((xy[:, 1] - self.y0) / self.cell).astype(np.intp)
        mark = np.zeros((self.height, self.width), dtype=bool)
        mark[rows, cols] = True
        dilated = mark.copy()
        # 3x3 dilation; the raster has a one-cell margin, so no sample sits on the edge.
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr or dc:
                    dilated[1:-1, 1:-1] |= mark[1 + dr:self.height - 1 + dr,
                                                1 + dc:self.width - 1 + dc]
        return dilated

    def lookup(self, lat: npt.NDArray[np.float64],
               lon: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Polygon position per point, ``-1`` where the exact path must decide."""
        fx = (lon - self.x0) / self.cell
        fy = (lat - self.y0) / self.cell
        ok = (fx >= 0) & (fx < self.width) & (fy >= 0) & (fy < self.height)
        out = np.full(len(lat), -1, dtype=np.intp)
        if ok.all():
            out[:] = self.grid[fy.astype(np.intp), fx.astype(np.intp)]
        else:
            out[ok] = self.grid[fy[ok].astype(np.intp), fx[ok].astype(np.intp)]
        return out

    @property
    def nbytes(self) -> int:
        return int(self.grid.nbytes)
