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

Stored in tiles of :data:`TILE` x :data:`TILE` cells: most of the bounding box is sea
or boundary (about 11% of Vietnam's cells are inside one commune), and a tile holding
only ``-1`` is stored once and shared, so the raster takes about 3 MB, not 15 MB.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely

MAX_CELLS = 20_000_000
"""Upper bound of the raster size; the cell grows until the raster fits."""

TILE_BITS = 5
TILE = 1 << TILE_BITS
"""Cells per tile side."""


class CellGrid:
    """Point -> polygon position for cells fully inside one polygon, ``-1`` otherwise."""

    __slots__ = ("cell", "height", "tile_of", "tiles", "width", "x0", "y0")

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
        del boundary
        self.tile_of, self.tiles = _tiled(grid)

    @property
    def grid(self) -> npt.NDArray[np.signedinteger]:
        """The whole raster (rebuilt from the tiles: for tests and tools)."""
        th, tw = self.tile_of.shape
        full = self.tiles[self.tile_of].swapaxes(1, 2).reshape(th * TILE, tw * TILE)
        return full[:self.height, :self.width]

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
            out[:] = self._at(fy.astype(np.intp), fx.astype(np.intp))
        else:
            out[ok] = self._at(fy[ok].astype(np.intp), fx[ok].astype(np.intp))
        return out

    def _at(self, row: npt.NDArray[np.intp], col: npt.NDArray[np.intp]
            ) -> npt.NDArray[np.signedinteger]:
        tile = self.tile_of[row >> TILE_BITS, col >> TILE_BITS]
        found: npt.NDArray[np.signedinteger] = self.tiles[tile, row & (TILE - 1),
                                                          col & (TILE - 1)]
        return found

    @property
    def nbytes(self) -> int:
        return int(self.tiles.nbytes + self.tile_of.nbytes)


def _tiled(grid: npt.NDArray[np.signedinteger]
           ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.signedinteger]]:
    """(tile number per tile position, tiles); tile 0 is all ``-1`` and shared."""
    h, w = grid.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = np.full((th * TILE, tw * TILE), -1, dtype=grid.dtype)
    padded[:h, :w] = grid
    blocks = padded.reshape(th, TILE, tw, TILE).swapaxes(1, 2)  # (th, tw, TILE, TILE)
    used = (blocks >= 0).any(axis=(2, 3))
    tile_of = np.zeros((th, tw), dtype=np.int32)
    tile_of[used] = np.arange(1, int(used.sum()) + 1, dtype=np.int32)
    tiles = np.full((int(used.sum()) + 1, TILE, TILE), -1, dtype=grid.dtype)
    tiles[1:] = blocks[used]
    return tile_of, tiles
