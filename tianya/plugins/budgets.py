"""Work budgets of the analysis processes: the arithmetic that bounds work before it is allocated.

Every input that sizes the work of a run (grid cells, raster pixels and the kernel's stencil,
time steps, neighbours, permutations, DBSCAN's eps) is checked against these budgets before
anything is allocated: in :meth:`~tianya.plugins.analysis.AnalysisProcessor.check_inputs`
(the request's thread, before the job exists) from the inputs and the layer's extent
(:meth:`layers.store.Store.extent`, the whole layer: a filter does not shrink the estimate),
and again in ``run`` with the selection's real size (units, points) just before the expensive
step.  A run over budget is a 400 (:class:`~layers.errors.InvalidParameter`) that states the
limit and what to change.  Each budget is a setting, ``TIANYA_<NAME>`` (e.g.
``TIANYA_MAX_GRID_CELLS=500000``, :mod:`tianya.settings`); the checks read the current
settings (:func:`limit`), and the ``MAX_*`` names below are the defaults.  The defaults keep a
run within about 1-2 GB and a minute on one core; a run that still goes beyond the process
limits of :mod:`tianya.plugins.runner` (memory, time) is stopped there.

The layer extents are asked of :func:`shared_store`, the one store per data location that
the processors read, and reused for :data:`EXTENT_TTL` seconds.
"""

from __future__ import annotations

import dataclasses
import math
import threading

from layers.catalogue import Layer
from layers.errors import InvalidParameter
from tianya import settings as tianya_settings
from tianya.settings import Settings

__all__ = [
    "EXTENT_TTL",
    "MAX_CUBE_CELLS",
    "MAX_DRAWS_PER_UNIT",
    "MAX_EPS_AREA_SHARE",
    "MAX_GRID_CELLS",
    "MAX_KERNEL_VISITS",
    "MAX_NEIGHBOURS_PER_UNIT",
    "MAX_NEIGHBOUR_PAIRS",
    "MAX_PERMUTATION_DRAWS",
    "MAX_RASTER_CELLS",
    "MAX_TIME_STEPS",
    "check_cells",
    "check_kernel",
    "extent_m",
    "extent_text",
    "grid_cells",
    "kernel_work",
    "limit",
    "pairs_within",
    "require_within",
    "shared_store",
    "time_span",
]


def _budget(name: str):
    """The default of budget ``name`` (``MAX_GRID_CELLS`` …): the settings field's default."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name.lower())


def limit(name: str):
    """Budget ``name`` (``MAX_GRID_CELLS`` …) in the current settings."""
    return getattr(tianya_settings.current(), name.lower())


#: Fishnet squares or hexagons covering the extent (hot spots, local Moran, OHSA, EHSA bins).
MAX_GRID_CELLS = _budget("MAX_GRID_CELLS")
#: Kernel density pixels (the extent padded by the bandwidth on every side).
MAX_RASTER_CELLS = _budget("MAX_RASTER_CELLS")
#: Kernel density work: pixels x kernel stencil ((2 * bandwidth / cell_size + 3) ** 2 passes).
MAX_KERNEL_VISITS = _budget("MAX_KERNEL_VISITS")
#: Emerging hot spots: time steps of the space-time cube (counted by
#: :func:`analytics.emerging.count_steps`, which the library also enforces with this value).
MAX_TIME_STEPS = _budget("MAX_TIME_STEPS")
#: Emerging hot spots: bins x time steps of the cube (before empty bins are dropped).
MAX_CUBE_CELLS = _budget("MAX_CUBE_CELLS")
#: Permutation inference, per analysed unit: (neighbours + 1) x permutations.
MAX_DRAWS_PER_UNIT = _budget("MAX_DRAWS_PER_UNIT")
#: Permutation inference, whole run: units x (neighbours + 1) x permutations.
MAX_PERMUTATION_DRAWS = _budget("MAX_PERMUTATION_DRAWS")
#: Neighbours of one unit (distance band weights, DBSCAN eps, HDBSCAN min_samples).
MAX_NEIGHBOURS_PER_UNIT = _budget("MAX_NEIGHBOURS_PER_UNIT")
#: Neighbour pairs of a whole run (distance band weights, DBSCAN eps, HDBSCAN min_samples).
MAX_NEIGHBOUR_PAIRS = _budget("MAX_NEIGHBOUR_PAIRS")
#: DBSCAN: share of the layer's extent the eps disc may cover.
MAX_EPS_AREA_SHARE = _budget("MAX_EPS_AREA_SHARE")


def _over(what: str, value: float, name: str, advice: str) -> InvalidParameter:
    cap = limit(name)
    shown = f"{value:,.0f}" if value >= 10 else f"{value:.3g}"
    return InvalidParameter(
        f"{what} would be {shown}, more than the limit of {cap:,} ({name}); {advice}"
    )


def require_within(what: str, value: float, name: str, advice: str) -> None:
    """Raise a 400 stating the limit if ``value`` exceeds the budget ``name``.

    The message says what would be how large (``what``), the limit and its name, and
    ``advice`` (what to change).
    """
    if value > limit(name):
        raise _over(what, value, name, advice)


#: Seconds a layer's extent is reused by the budget checks (a GeoPackage scans for it).
EXTENT_TTL = 60.0
_EXTENTS: dict = {}


def _layer_extent(layer: Layer):
    """The store's ``(bbox, temporal)`` extent of the layer, reused for :data:`EXTENT_TTL` s."""
    import time

    key = (tianya_settings.current().store_location(), layer.id)
    hit = _EXTENTS.get(key)
    if hit is None or time.monotonic() - hit[0] > EXTENT_TTL:
        hit = _EXTENTS[key] = (time.monotonic(), shared_store().extent(layer))
    return hit[1]


def extent_m(layer: Layer, extra: Layer | None = None) -> tuple[float, float] | None:
    """Width and height in metres of the layer's data extent (and ``extra``'s), or None."""
    boxes = [b for b in (_layer_extent(lay)[0] for lay in (layer, extra) if lay) if b]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    # metres per degree of longitude at the latitude closest to the equator: an upper bound
    lat = 0.0 if y0 <= 0 <= y1 else min(abs(y0), abs(y1))
    return (
        max(x1 - x0, 0.0) * 111_320.0 * math.cos(math.radians(lat)),
        max(y1 - y0, 0.0) * 110_574.0,
    )


def grid_cells(width: float, height: float, cell_size: float, shape: str = "fishnet") -> int:
    """Squares or hexagons (of ``cell_size`` metres) covering ``width`` x ``height`` metres.

    Same arithmetic as :func:`analytics.aggregate.fishnet_grid` / ``hexagon_grid`` (an upper
    bound for hexagons), without building a polygon.
    """
    if shape == "hexagon":
        return (math.ceil(width / cell_size) + 2) * (
            math.ceil(height / (cell_size * math.sqrt(3) / 2)) + 2
        )
    return max(1, math.ceil(width / cell_size)) * max(1, math.ceil(height / cell_size))


def kernel_work(width: float, height: float, bandwidth: float, cell: float) -> tuple[int, int]:
    """Pixels and pixel visits of :func:`analytics.density.kernel_density` (same arithmetic)."""
    ncol = math.ceil((width + 2 * bandwidth) / cell)
    nrow = math.ceil((height + 2 * bandwidth) / cell)
    reach = math.ceil(bandwidth / cell) + 1
    return ncol * nrow, ncol * nrow * (2 * reach + 1) ** 2


def time_span(layer: Layer, opts: dict):
    """``(start, end)`` of the layer's temporal extent within the datetime input, or None."""
    import pandas as pd

    if opts["time_field"] != layer.temporal:
        return None
    temporal = _layer_extent(layer)[1]
    if not temporal or temporal[0] is None or temporal[1] is None:
        return None
    lo, hi = pd.Timestamp(temporal[0]), pd.Timestamp(temporal[1])
    if opts["interval"] is not None:
        start, end = opts["interval"]
        if start is not None:
            lo = max(lo, pd.Timestamp(start))
        if end is not None:
            hi = min(hi, pd.Timestamp(end))
    return (lo, hi) if hi >= lo else None


def extent_text(extent) -> str:
    """``"12.3 x 4.5 km"``: an extent in metres (:func:`extent_m`) for messages."""
    return f"{extent[0] / 1000:.1f} x {extent[1] / 1000:.1f} km"


def check_cells(layer: Layer, size: float, shape: str, extra: Layer | None = None) -> int:
    """Grid cells of ``size`` over the layer's extent, within :data:`MAX_GRID_CELLS`."""
    ext = extent_m(layer, extra)
    if ext is None:
        return 0
    cells = grid_cells(*ext, size, shape)
    smallest = math.sqrt(ext[0] * ext[1] / limit("MAX_GRID_CELLS")) * (
        1.1 if shape == "hexagon" else 1.0
    )
    require_within(
        f"{shape} cells of {size:g} m over the extent of {layer.id!r} ({extent_text(ext)})",
        cells,
        "MAX_GRID_CELLS",
        f"use a cell_size of at least {math.ceil(smallest)} m",
    )
    return cells


def pairs_within(xy, distance: float) -> int:
    """Ordered pairs of distinct points within ``distance`` (counted, not listed)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    return int(tree.count_neighbors(tree, distance)) - len(xy)


def check_kernel(pixels: int, visits: int, bandwidth: float, cell: float, where: str) -> None:
    """Raise a 400 if kernel density ``pixels`` or pixel ``visits`` exceed their budgets.

    ``where`` says over what the work was estimated (the layer's extent, the selection).
    """
    what = f"kernel density with a {bandwidth:g} m bandwidth and {cell:g} m cells {where}"
    require_within(
        f"pixels of the {what}",
        pixels,
        "MAX_RASTER_CELLS",
        "use a larger cell_size or narrow the selection",
    )
    require_within(
        f"pixel visits (pixels x kernel stencil) of the {what}",
        visits,
        "MAX_KERNEL_VISITS",
        "use a larger cell_size or a smaller bandwidth "
        f"(bandwidth / cell_size is now {bandwidth / cell:.0f})",
    )


_STORES: dict = {}
_STORES_LOCK = threading.Lock()


def shared_store():
    """One store per data location (the ``data`` setting), shared by the processors."""
    from layers.stores import open_store

    url = tianya_settings.current().store_location()
    with _STORES_LOCK:
        if url not in _STORES:
            _STORES[url] = open_store(url)
        return _STORES[url]
