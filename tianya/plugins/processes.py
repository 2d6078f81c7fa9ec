"""OGC API - Processes adapters: one pygeoapi processor per analysis.

Thin adapters, no web framework: each processor checks its inputs, reads a catalogue layer
through the store (:func:`layers.stores.open_store` of the ``data`` setting), calls the
analytics library and returns GeoJSON (CRS84) or, for kernel density, a GeoTIFF.

- ``hot-spots``: Getis-Ord Gi* (:func:`analytics.gistar.hot_spots`), GeoJSON;
- ``optimized-hot-spots``: Optimized Hot Spot Analysis (:mod:`analytics.ohsa`), GeoJSON;
- ``local-moran``: local Moran's I / LISA (:func:`analytics.moran.local_moran`), GeoJSON;
- ``kernel-density``: quartic kernel density (:func:`analytics.density.kernel_density`),
  GeoTIFF (``image/tiff``);
- ``density-clusters``: DBSCAN / HDBSCAN clusters with hull polygons, GeoJSON;
- ``emerging-hot-spots``: Emerging Hot Spot Analysis (:mod:`analytics.emerging`), GeoJSON.

Every process takes ``collection`` (a catalogue layer id), an optional ``filter`` (CQL2 text,
or CQL2 JSON as an object or text) and ``datetime`` (an instant or ``start/end`` interval on
the layer's temporal field), plus its analysis options (see each class's ``OPTIONS``).

Errors: invalid inputs raise :class:`~layers.errors.InvalidParameter` (or
:class:`~analytics.errors.AnalyticsError`, its subclass) with a message listing the valid
choices; reading a layer the caller may not see raises
:class:`~layers.errors.NotAuthenticated` / :class:`~layers.errors.Forbidden`.  pygeoapi 0.24
turns *every* exception raised inside ``execute`` into a failed job and HTTP 400, so the job
manager (:class:`~tianya.plugins.jobs.JobManager`) calls
:meth:`AnalysisProcessor.check_inputs` before
the job is created and answers with the error's own status (400, 401, 403) in both
synchronous and asynchronous mode. A synchronous run that fails later keeps its status too
(a data-dependent 400, a store outage's 503, 500 for a fault of ours); the job is recorded
as failed either way.

Work budgets: every input that sizes the work (grid cells, raster pixels and the kernel's
stencil, time steps, neighbours, permutations, DBSCAN's eps) is checked against the ``MAX_*``
settings (``TIANYA_MAX_*``, defaults in the constants below) before anything is allocated: in
:meth:`AnalysisProcessor.check_inputs` over the layer's extent, again in ``run`` over the
selection; over budget is a 400 that states the limit.  The runs themselves execute in
:mod:`tianya.plugins.runner`'s bounded pool of child processes (memory and time limits).

The caller's principal (:func:`tianya.request.principal`) is captured when pygeoapi creates the
processor, in the request's thread, because an asynchronous job runs in another thread where
the request's context is not set.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass

from pygeoapi.process.base import BaseProcessor

from layers import access
from layers.catalogue import LAYERS, Layer
from layers.errors import InvalidParameter, choices
from tianya import request
from tianya import settings as tianya_settings
from tianya.settings import Settings

__all__ = [
    "PROCESSORS",
    "AnalysisProcessor",
    "DensityClustersProcessor",
    "EmergingHotSpotsProcessor",
    "HotSpotsProcessor",
    "KernelDensityProcessor",
    "LocalMoranProcessor",
    "Option",
    "OptimizedHotSpotsProcessor",
    "check_execute_request",
    "process_resources",
]

GEOJSON = "application/geo+json"
TIFF = "image/tiff"
NUMERIC = ("integer", "number")


@dataclass(frozen=True)
class Option:
    """One process input: its JSON schema and its check.

    Parameters
    ----------
    name : str
        Input name.
    type : {"string", "integer", "number", "boolean", "filter"}
        ``"filter"`` accepts a CQL2 text string or a CQL2 JSON object.
    description : str
        Shown in the process description.
    default : object, optional
        Value used when the input is absent (``None``: not set).
    choices : tuple of str, optional
        Valid values of a string input.
    minimum, maximum : float, optional
        Inclusive bounds of a numeric input.
    required : bool, default False
    """

    name: str
    type: str
    description: str
    default: object = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False

    def schema(self) -> dict:
        """The input's JSON schema for the OGC API process description."""
        if self.type == "filter":
            schema: dict = {"oneOf": [{"type": "string"}, {"type": "object"}]}
        else:
            schema = {"type": self.type}
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def describe(self) -> dict:
        """The pygeoapi ``inputs`` entry."""
        return {
            "title": self.name,
            "description": self.description,
            "schema": self.schema(),
            "minOccurs": 1 if self.required else 0,
            "maxOccurs": 1,
        }

    def check(self, value):
        """Return ``value`` converted to the option's type, or raise :class:`InvalidParameter`."""
        if value is None:
            if self.required:
                raise InvalidParameter(f"input {self.name!r} is required")
            return self.default
        kind = self.type
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise InvalidParameter(f"input {self.name!r} must be true or false, got {value!r}")
        if kind in NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidParameter(
                    f"input {self.name!r} must be a {_word(kind)}, got {value!r}"
                )
            try:
                number = float(value)
            except ValueError:
                raise InvalidParameter(
                    f"input {self.name!r} must be a {_word(kind)}, got {value!r}"
                ) from None
            if kind == "integer":
                if not number.is_integer():
                    raise InvalidParameter(f"input {self.name!r} must be an integer, got {value!r}")
                number = int(number)
            elif number != number or number in (float("inf"), float("-inf")):
                raise InvalidParameter(f"input {self.name!r} must be a finite number")
            if self.minimum is not None and number < self.minimum:
                raise InvalidParameter(
                    f"input {self.name!r} must be at least {self.minimum}, got {value!r}"
                )
            if self.maximum is not None and number > self.maximum:
                raise InvalidParameter(
                    f"input {self.name!r} must be at most {self.maximum}, got {value!r}"
                )
            return number
        if kind == "filter":
            if isinstance(value, dict):
                return json.dumps(value)
            if not isinstance(value, str):
                raise InvalidParameter(
                    f"input {self.name!r} must be CQL2 text or a CQL2 JSON object"
                )
            return value
        if not isinstance(value, str):
            raise InvalidParameter(f"input {self.name!r} must be a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InvalidParameter(choices(value, self.choices, self.name))
        return value


def _word(kind: str) -> str:
    return "an integer" if kind == "integer" else "number"


COMMON = (
    Option("collection", "string", "Catalogue layer id to analyse.", required=True),
    Option(
        "filter",
        "filter",
        "CQL2 filter on the layer (text, or JSON as an object).",
    ),
    Option(
        "datetime",
        "string",
        "Instant or interval 'start/end' ('..' for an open end) on "
        "the layer's temporal field, RFC 3339.",
    ),
)
WEIGHTS = ("knn", "distance_band", "inverse_distance", "queen", "rook")
GRID_OPTIONS = (
    Option(
        "field",
        "string",
        "Numeric field analysed feature by feature (aggregation "
        "'none'); omit to analyse incident counts per cell.",
    ),
    Option(
        "aggregation",
        "string",
        "Count the features per fishnet square, hexagon or "
        "community, or 'none' to analyse the features themselves (needs field). Default: "
        "'fishnet' without field, 'none' with one.",
        choices=("none", "fishnet", "hexagon", "communities"),
    ),
    Option(
        "cell_size",
        "number",
        "Fishnet side or hexagon width in metres.",
        250.0,
        minimum=20.0,
        maximum=10_000.0,
    ),
    Option(
        "weights",
        "string",
        "Neighbourhood: k nearest neighbours, distance band (binary "
        "or inverse distance) or polygon contiguity.",
        "knn",
        choices=WEIGHTS,
    ),
    Option("k", "integer", "Neighbours for weights='knn'.", 8, minimum=1, maximum=100),
    Option(
        "distance",
        "number",
        "Band in metres for 'distance_band' / 'inverse_distance'.",
        minimum=0.0,
        maximum=50_000.0,
    ),
)


# --- work budgets -------------------------------------------------------------------------------
#
# Every input that sizes the work of a run is checked against these budgets before anything is
# allocated: in :meth:`AnalysisProcessor.check_inputs` (the request's thread, before the job
# exists) from the inputs and the layer's extent (:meth:`layers.store.Store.extent`, the whole
# layer: a filter does not shrink the estimate), and again in ``run`` with the selection's
# real size (units, points) just before the expensive step.  A run over budget is a 400 that
# states the limit.  Each budget is a setting, ``TIANYA_<NAME>`` (e.g.
# ``TIANYA_MAX_GRID_CELLS=500000``, :mod:`tianya.settings`); the checks read the current
# settings (:func:`_limit`), and the ``MAX_*`` names below are the defaults.
# The defaults keep a run within about 1-2 GB and a minute on one core; a run that still goes
# beyond the process limits of :mod:`tianya.plugins.runner` (memory, time) is stopped there.


def _budget(name: str):
    """The default of budget ``name`` (``MAX_GRID_CELLS`` …): the settings field's default."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name.lower())


def _limit(name: str):
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

#: The budgets by name (for documentation and the tests).
BUDGETS = (
    "MAX_GRID_CELLS",
    "MAX_RASTER_CELLS",
    "MAX_KERNEL_VISITS",
    "MAX_TIME_STEPS",
    "MAX_CUBE_CELLS",
    "MAX_DRAWS_PER_UNIT",
    "MAX_PERMUTATION_DRAWS",
    "MAX_NEIGHBOURS_PER_UNIT",
    "MAX_NEIGHBOUR_PAIRS",
    "MAX_EPS_AREA_SHARE",
)


def _over(what: str, value: float, name: str, advice: str) -> InvalidParameter:
    limit = _limit(name)
    shown = f"{value:,.0f}" if value >= 10 else f"{value:.3g}"
    return InvalidParameter(
        f"{what} would be {shown}, more than the limit of {limit:,} ({name}); {advice}"
    )


def _require_within(what: str, value: float, name: str, advice: str) -> None:
    """Raise a 400 stating the limit if ``value`` exceeds the budget ``name``."""
    if value > _limit(name):
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
        hit = _EXTENTS[key] = (time.monotonic(), _store().extent(layer))
    return hit[1]


def _extent_m(layer: Layer, extra: Layer | None = None) -> tuple[float, float] | None:
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


def _kernel_work(width: float, height: float, bandwidth: float, cell: float) -> tuple[int, int]:
    """Pixels and pixel visits of :func:`analytics.density.kernel_density` (same arithmetic)."""
    ncol = math.ceil((width + 2 * bandwidth) / cell)
    nrow = math.ceil((height + 2 * bandwidth) / cell)
    reach = math.ceil(bandwidth / cell) + 1
    return ncol * nrow, ncol * nrow * (2 * reach + 1) ** 2


def _time_span(layer: Layer, opts: dict):
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


def _km(extent) -> str:
    return f"{extent[0] / 1000:.1f} x {extent[1] / 1000:.1f} km"


def _check_cells(layer: Layer, size: float, shape: str, extra: Layer | None = None) -> int:
    """Grid cells of ``size`` over the layer's extent, within :data:`MAX_GRID_CELLS`."""
    ext = _extent_m(layer, extra)
    if ext is None:
        return 0
    cells = grid_cells(*ext, size, shape)
    smallest = math.sqrt(ext[0] * ext[1] / _limit("MAX_GRID_CELLS")) * (
        1.1 if shape == "hexagon" else 1.0
    )
    _require_within(
        f"{shape} cells of {size:g} m over the extent of {layer.id!r} ({_km(ext)})",
        cells,
        "MAX_GRID_CELLS",
        f"use a cell_size of at least {math.ceil(smallest)} m",
    )
    return cells


def _pairs_within(xy, distance: float) -> int:
    """Ordered pairs of distinct points within ``distance`` (counted, not listed)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    return int(tree.count_neighbors(tree, distance)) - len(xy)


def _numeric_fields(layer: Layer, who) -> tuple[str, ...]:
    visible = set(access.visible_fields(layer, who))
    return tuple(f.name for f in layer.fields if f.type in NUMERIC and f.name in visible)


class AnalysisProcessor(BaseProcessor):
    """Shared machinery: input checks, reading the layer, GeoJSON output.

    Subclasses set ``ID``, ``TITLE``, ``DESCRIPTION``, ``OPTIONS`` (beyond :data:`COMMON`),
    ``POINTS_ONLY``/``TEMPORAL_ONLY`` and implement :meth:`run`.
    """

    ID = ""
    TITLE = {"en": "", "zh": ""}
    DESCRIPTION = {"en": "", "zh": ""}
    OPTIONS: tuple[Option, ...] = ()
    POINTS_ONLY = True
    TEMPORAL_ONLY = False
    OUTPUT_MEDIA_TYPE = GEOJSON
    EXAMPLE: dict = {"collection": "incidents"}

    def __init__(self, processor_def: dict):
        super().__init__(processor_def, self.metadata_dict())
        self.principal = request.principal()  # the request's caller (see module docstring)

    # --- description -------------------------------------------------------------------------

    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return COMMON + cls.OPTIONS

    @classmethod
    def metadata_dict(cls) -> dict:
        """The pygeoapi process metadata (OGC API - Processes description)."""
        out_schema = (
            {"type": "string", "contentEncoding": "binary", "contentMediaType": TIFF}
            if cls.OUTPUT_MEDIA_TYPE == TIFF
            else {"type": "object", "contentMediaType": GEOJSON}
        )
        return {
            "version": "1.0.0",
            "id": cls.ID,
            "title": cls.TITLE,
            "description": cls.DESCRIPTION,
            "jobControlOptions": ["sync-execute", "async-execute"],
            "outputTransmission": ["value"],
            "keywords": ["hot spots", "spatial statistics", "Tianya"],
            "links": [],
            "inputs": {o.name: o.describe() for o in cls.all_options()},
            "outputs": {
                "result": {
                    "title": "result",
                    "description": cls.DESCRIPTION["en"],
                    "schema": out_schema,
                }
            },
            "example": {"inputs": cls.EXAMPLE},
        }

    @classmethod
    def valid_collections(cls) -> list[str]:
        return [
            lid
            for lid, layer in LAYERS.items()
            if layer.geometry_type is not None
            and (not cls.POINTS_ONLY or layer.geometry_type == "Point")
            and (not cls.TEMPORAL_ONLY or layer.temporal is not None)
        ]

    # --- checks ------------------------------------------------------------------------------

    def check_inputs(self, data: dict) -> dict:
        """Checked inputs (defaults filled in), or raise with the valid choices in the message.

        Also refuses (401/403) a layer the caller may not read, and inputs whose work is
        over a budget (400 stating the limit, see ``MAX_*``).  Reads no data, only the
        layer's extent.
        """
        if not isinstance(data, dict):
            raise InvalidParameter("inputs must be a JSON object")
        names = [o.name for o in self.all_options()]
        for name in data:
            if name not in names:
                raise InvalidParameter(choices(name, names, f"input of process {self.ID!r}"))
        opts = {o.name: o.check(data.get(o.name)) for o in self.all_options()}
        valid = self.valid_collections()
        if opts["collection"] not in valid:
            raise InvalidParameter(
                choices(opts["collection"], valid, f"collection for process {self.ID!r}")
            )
        layer = LAYERS[opts["collection"]]
        access.require_read(layer, self.principal)
        opts["visible"] = frozenset(access.visible_fields(layer, self.principal))
        if opts["datetime"] is not None:
            if layer.temporal is None:
                raise InvalidParameter(
                    f"collection {layer.id!r} has no temporal field; datetime cannot be applied"
                )
            from layers.query import parse_interval

            opts["interval"] = parse_interval(opts["datetime"])
        else:
            opts["interval"] = None
        if opts["filter"] is not None:
            from layers.query import check_filter, parse_filter

            opts["where"] = parse_filter(opts["filter"])
            check_filter(layer, opts["where"], opts["visible"])
        else:
            opts["where"] = None
        opts["layer"] = layer
        self.check_options(layer, opts)
        return opts

    def check_options(self, layer: Layer, opts: dict) -> None:
        """Process-specific checks that need the layer (fields, combinations)."""

    #: Inputs naming a field of the layer.
    FIELD_INPUTS = ("field", "population_field", "time_field")

    def restricted(self, opts: dict) -> bool:
        """Whether a job with these (checked) inputs touches personal data.

        True for a non-public layer, or when a field input or the filter names a sensitive
        field; the job manager then hides the job from roles that may not see such data.
        """
        layer = opts["layer"]
        if not layer.public:
            return True
        named = {opts.get(k) for k in self.FIELD_INPUTS} - {None}
        if opts.get("where") is not None:
            from layers.query import filter_properties

            named |= filter_properties(opts["where"])
        return bool(named & set(layer.sensitive_fields))

    def _check_field(self, layer: Layer, opts: dict, name: str) -> None:
        value = opts.get(name)
        if value is None:
            return
        valid = _numeric_fields(layer, self.principal)
        if value not in valid:
            raise InvalidParameter(
                choices(value, valid or ("(none)",), f"numeric field of {layer.id!r} for {name}")
            )

    def _check_grid(self, layer: Layer, opts: dict) -> None:
        self._check_field(layer, opts, "field")
        if opts["aggregation"] is None:
            opts["aggregation"] = "none" if opts["field"] else "fishnet"
        if opts["aggregation"] == "none" and opts["field"] is None:
            raise InvalidParameter(
                "aggregation 'none' needs a numeric field; valid fields: "
                + (", ".join(_numeric_fields(layer, self.principal)) or "(none)")
            )
        if opts["aggregation"] != "none" and opts["field"] is not None:
            raise InvalidParameter(
                "field is analysed feature by feature: use aggregation "
                "'none' with it, or omit it to analyse counts per cell"
            )
        if opts["aggregation"] != "none" and layer.geometry_type != "Point":
            raise InvalidParameter(
                f"aggregation {opts['aggregation']!r} counts points; "
                f"{layer.id!r} has {layer.geometry_type} geometries"
            )
        if opts["weights"] in ("distance_band", "inverse_distance") and opts["distance"] is None:
            raise InvalidParameter(f"weights {opts['weights']!r} needs a distance (metres)")
        self._check_grid_budget(layer, opts)

    def _check_grid_budget(self, layer: Layer, opts: dict) -> None:
        """Grid cells, neighbours per cell and permutation draws per unit (before any data)."""
        agg, size = opts["aggregation"], opts["cell_size"]
        per_unit = None
        if agg in ("fishnet", "hexagon"):
            _check_cells(layer, size, agg)
            if opts["weights"] in ("distance_band", "inverse_distance"):
                per_unit = math.pi * (opts["distance"] / size) ** 2
                _require_within(
                    f"neighbours per cell within a {opts['distance']:g} m band of {size:g} m cells",
                    per_unit,
                    "MAX_NEIGHBOURS_PER_UNIT",
                    "use a shorter distance or a larger cell_size",
                )
        if opts["weights"] == "knn":
            per_unit = opts["k"]
        elif opts["weights"] in ("queen", "rook"):
            per_unit = 8
        perms = opts.get("permutations") or 0
        if per_unit is not None and perms:
            _require_within(
                f"permutation draws per unit ((neighbours + 1) x {perms} permutations)",
                (per_unit + 1) * perms,
                "MAX_DRAWS_PER_UNIT",
                "use fewer permutations or neighbours",
            )

    def grid_units(self, opts: dict):
        """The selected features, the units analysed (cells, or the features projected) within
        the budgets, and the analysed value (``field``, else ``count``)."""
        frame = self.read(opts, [opts["field"]])
        cells = self.aggregate(frame, opts)
        self._check_units(cells, opts)
        return frame, cells, opts["field"] or "count"

    def _check_units(self, units, opts: dict) -> None:
        """The analysed units' neighbour pairs and permutation draws, before the weights."""
        from analytics.weights import point_coordinates

        n = len(units)
        if n == 0:
            return
        if opts["weights"] in ("distance_band", "inverse_distance"):
            pairs = _pairs_within(point_coordinates(units, stacklevel=3), opts["distance"])
            _require_within(
                f"neighbour pairs within {opts['distance']:g} m of the {n:,} units",
                pairs,
                "MAX_NEIGHBOUR_PAIRS",
                "use a shorter distance or a coarser aggregation",
            )
            per_unit = pairs / n
        elif opts["weights"] == "knn":
            per_unit = min(opts["k"], n - 1)
        else:
            per_unit = 8
        perms = opts.get("permutations") or 0
        _require_within(
            f"permutation draws of the {n:,} units (units x (neighbours + 1) x "
            f"{perms} permutations)",
            n * (per_unit + 1) * perms,
            "MAX_PERMUTATION_DRAWS",
            "use fewer permutations or neighbours, a "
            "coarser aggregation, or narrow the selection (filter, datetime)",
        )

    # --- data ----------------------------------------------------------------------------------

    def read(self, opts: dict, fields=()):
        """The filtered features of the layer with its key and ``fields`` (GeoDataFrame, 4326)."""
        from layers.query import Query

        layer = opts["layer"]
        props = [layer.key] + [f for f in fields if f and f != layer.key]
        q = Query(
            interval=opts["interval"],
            where=opts["where"],
            properties=props,
            limit=0,
            visible=opts.get("visible"),
        )  # the caller's fields, set by check_inputs
        frame = _store().read_frame(layer, q)
        frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty]
        return frame.reset_index(drop=True)

    def aggregate(self, frame, opts: dict):
        """Counts per cell (or the features themselves for aggregation 'none'), projected."""
        from analytics.aggregate import aggregate_points
        from analytics.weights import to_projected

        if opts["aggregation"] == "none":
            return to_projected(frame, stacklevel=3)
        polygons = self.communities() if opts["aggregation"] == "communities" else None
        return aggregate_points(
            frame, opts["aggregation"], cell_size=opts["cell_size"], polygons=polygons
        )

    def communities(self):
        """The community polygons (for aggregation 'communities')."""
        from layers.query import Query

        layer = LAYERS["communities"]
        return _store().read_frame(layer, Query(properties=["code", "name"], limit=0))

    # --- execution -----------------------------------------------------------------------------

    def execute(self, data: dict, outputs=None):
        """Run the analysis; returns ``(media type, GeoJSON dict or GeoTIFF bytes)``."""
        opts = self.check_inputs(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "reprojected to UTM" notes
            return self.run(opts)

    def run(self, opts: dict):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}> {self.ID}"


# --- output helpers ---------------------------------------------------------------------------


def feature_collection(gdf, columns, **members) -> dict:
    """GeoJSON FeatureCollection (CRS84) of ``gdf[columns]`` with extra top-level members."""
    import numpy as np
    import pandas as pd

    cols = [c for c in columns if c in gdf.columns]
    out = gdf[cols + [gdf.geometry.name]].to_crs(4326)
    for c in cols:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str)
        elif pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype(float).where(np.isfinite(out[c]), None)
    fc = json.loads(out.to_json(drop_id=True, na="null"))
    fc.pop("crs", None)
    fc["numberReturned"] = len(fc["features"])
    fc.update(members)
    return fc


def _clean(value):
    """JSON-safe scalars (numpy types, NaN → None)."""
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


_STORES: dict = {}
_STORES_LOCK = threading.Lock()


def _store():
    """One store per data location (the ``data`` setting), shared by the processors."""
    from layers.stores import open_store

    url = tianya_settings.current().store_location()
    with _STORES_LOCK:
        if url not in _STORES:
            _STORES[url] = open_store(url)
        return _STORES[url]


# --- the processes ----------------------------------------------------------------------------


class HotSpotsProcessor(AnalysisProcessor):
    """Getis-Ord Gi* hot spot analysis (ArcGIS *Hot Spot Analysis*)."""

    ID = "hot-spots"
    TITLE = {"en": "Hot spot analysis (Getis-Ord Gi*)", "zh": "热点分析 (Getis-Ord Gi*)"}
    DESCRIPTION = {
        "en": "Getis-Ord Gi* z-scores, p-values and ArcGIS confidence bins (-3..3) of incident "
        "counts per cell, or of a numeric field per feature.",
        "zh": "按网格统计事件数（或按要素的数值字段）计算 Gi* 的 z 值、p 值与置信区间分级。",
    }
    POINTS_ONLY = False
    OPTIONS = GRID_OPTIONS + (
        Option(
            "transform",
            "string",
            "Weights: binary (ArcGIS, esda 'B') or row-standardised.",
            None,
            choices=("B", "R"),
        ),
        Option(
            "fdr", "boolean", "Benjamini-Hochberg FDR correction of the confidence bins.", False
        ),
        Option(
            "permutations",
            "integer",
            "Conditional permutations (0: analytical p only).",
            0,
            minimum=0,
            maximum=9999,
        ),
        Option("seed", "integer", "Random seed of the permutations.", minimum=0),
        Option(
            "alternative",
            "string",
            "Permutation pseudo p-value.",
            "two-sided",
            choices=("two-sided", "directed"),
        ),
    )
    EXAMPLE = {
        "collection": "incidents",
        "aggregation": "fishnet",
        "cell_size": 250,
        "datetime": "2026-01-01/2026-06-30",
    }

    def check_options(self, layer, opts):
        self._check_grid(layer, opts)

    def run(self, opts):
        from analytics.gistar import hot_spots

        frame, cells, value = self.grid_units(opts)
        res = hot_spots(
            cells,
            value,
            weights=opts["weights"],
            k=opts["k"],
            distance=opts["distance"],
            transform=opts["transform"],
            fdr=opts["fdr"],
            permutations=opts["permutations"],
            seed=opts["seed"],
            alternative=opts["alternative"],
        )
        cols = _id_columns(res, opts) + [value, "gi_z", "gi_p", "gi_p_sim", "gi_bin", "n_neighbors"]
        return GEOJSON, feature_collection(res, cols, numberFeatures=int(len(frame)))


#: Distance bands tried by incremental spatial autocorrelation (analytics.ohsa), each one mean
#: neighbour spacing wider: the widest reaches about this many cell spacings.
ISA_BANDS = 10


class OptimizedHotSpotsProcessor(AnalysisProcessor):
    """Optimized Hot Spot Analysis of incident points (ArcGIS *Optimized Hot Spot Analysis*)."""

    ID = "optimized-hot-spots"
    TITLE = {"en": "Optimized hot spot analysis", "zh": "优化热点分析"}
    DESCRIPTION = {
        "en": "Incidents aggregated to a fishnet, hexagons or the communities, locational "
        "outliers removed, the scale chosen by incremental spatial autocorrelation, and "
        "Gi* with FDR-corrected confidence bins.",
        "zh": "事件聚合到方格、六边形或社区，剔除位置离群点，按增量空间自相关选择分析尺度，"
        "计算 FDR 校正的 Gi* 热点。",
    }
    OPTIONS = (
        Option(
            "aggregation",
            "string",
            "Cells the incidents are counted in.",
            "fishnet",
            choices=("fishnet", "hexagon", "communities"),
        ),
        Option(
            "cell_size",
            "number",
            "Cell size in metres (derived from the data if omitted).",
            minimum=20.0,
            maximum=10_000.0,
        ),
        Option(
            "distance_band",
            "number",
            "Scale of analysis in metres (chosen by incremental "
            "spatial autocorrelation if omitted).",
            minimum=1.0,
            maximum=50_000.0,
        ),
        Option(
            "bounded",
            "boolean",
            "Keep empty cells inside the communities (ArcGIS's "
            "bounding polygons where incidents are possible); grids only.",
            False,
        ),
    )

    def check_options(self, layer, opts):
        if opts["bounded"] and opts["aggregation"] == "communities":
            raise InvalidParameter(
                "bounded applies to the grids ('fishnet', 'hexagon'), "
                "not to aggregation 'communities'"
            )
        if opts["aggregation"] == "communities":
            return
        extra = LAYERS["communities"] if opts["bounded"] else None
        size = opts["cell_size"]
        if size is not None:
            cells = _check_cells(layer, size, opts["aggregation"], extra)
        else:  # derived: at least a hundredth of the longer side (analytics.ohsa)
            ext = _extent_m(layer, extra)
            if ext is None:
                return
            size = max(ext) / 100.0
            cells = grid_cells(*ext, size, opts["aggregation"]) if size > 0 else 0
        if opts["bounded"] and size:
            # incremental spatial autocorrelation builds weights for bands of up to about
            # ISA_BANDS cell spacings whatever the distance_band: with every cell of the
            # communities kept, its widest band is what fills memory (hexagons of 90 m:
            # 133,305 cells, over 4 GB after 21 s); ``cells`` is the extent's grid, an upper
            # bound of the cells inside the communities
            per_cell = (
                math.pi
                * ISA_BANDS**2
                * (2 / math.sqrt(3) if opts["aggregation"] == "hexagon" else 1.0)
            )
            _require_within(
                f"neighbour pairs of the widest scale tried ({ISA_BANDS} cell "
                f"spacings) over up to {cells:,} bounded {size:g} m cells",
                per_cell * cells,
                "MAX_NEIGHBOUR_PAIRS",
                "use a larger cell_size, or bounded false",
            )
        if opts["distance_band"] is not None and size:
            per_cell = min(math.pi * (opts["distance_band"] / size) ** 2, cells)
            _require_within(
                f"neighbours per cell within a {opts['distance_band']:g} m band "
                f"of {size:g} m cells",
                per_cell,
                "MAX_NEIGHBOURS_PER_UNIT",
                "use a shorter distance_band or a larger cell_size",
            )
            _require_within(
                f"neighbour pairs of the {cells:,} cells within {opts['distance_band']:g} m",
                per_cell * cells,
                "MAX_NEIGHBOUR_PAIRS",
                "use a shorter distance_band or a larger cell_size",
            )

    def run(self, opts):
        from analytics.ohsa import optimized_hot_spots

        frame = self.read(opts)
        polys = self.communities() if opts["aggregation"] == "communities" else None
        bounds = self.communities() if opts["bounded"] else None
        res = optimized_hot_spots(
            frame,
            opts["aggregation"],
            cell_size=opts["cell_size"],
            polygons=polys,
            bounding_polygons=bounds,
            distance_band=opts["distance_band"],
        )
        cols = _id_columns(res.cells, opts) + ["count", "gi_z", "gi_p", "gi_bin", "n_neighbors"]
        return GEOJSON, feature_collection(
            res.cells,
            cols,
            numberFeatures=int(len(frame)),
            analysis={
                "cell_size": _clean(res.cell_size),
                "distance_band": res.distance_band,
                "scale_method": res.scale_method,
                "n_outliers": res.n_outliers,
            },
        )


class LocalMoranProcessor(AnalysisProcessor):
    """Local Moran's I (LISA) with HH/LL/HL/LH clusters."""

    ID = "local-moran"
    TITLE = {
        "en": "Cluster and outlier analysis (local Moran's I)",
        "zh": "聚类与异常值分析 (局部 Moran's I)",
    }
    DESCRIPTION = {
        "en": "Local Moran's I with conditional permutation inference: HH/LL clusters and "
        "HL/LH outliers of incident counts per cell or of a numeric field.",
        "zh": "局部 Moran's I（条件置换检验）：高高/低低聚类与高低/低高异常值。",
    }
    POINTS_ONLY = False
    OPTIONS = GRID_OPTIONS + (
        Option(
            "transform",
            "string",
            "Weights: row-standardised (esda default) or binary.",
            "R",
            choices=("R", "B"),
        ),
        Option(
            "permutations",
            "integer",
            "Conditional permutations (0: no inference).",
            999,
            minimum=0,
            maximum=9999,
        ),
        Option("seed", "integer", "Random seed of the permutations.", minimum=0),
        Option(
            "alpha",
            "number",
            "Significance level of the clusters.",
            0.05,
            minimum=1e-6,
            maximum=0.5,
        ),
        Option(
            "alternative",
            "string",
            "Pseudo p-value: one-tailed in the observed direction (GeoDa, esda) or twice that.",
            "directed",
            choices=("directed", "two-sided"),
        ),
    )

    def check_options(self, layer, opts):
        self._check_grid(layer, opts)

    def run(self, opts):
        from analytics.moran import local_moran

        frame, cells, value = self.grid_units(opts)
        res = local_moran(
            cells,
            value,
            weights=opts["weights"],
            k=opts["k"],
            distance=opts["distance"],
            transform=opts["transform"],
            permutations=opts["permutations"],
            seed=opts["seed"],
            alpha=opts["alpha"],
            alternative=opts["alternative"],
        )
        cols = _id_columns(res, opts) + [value] + [c for c in res.columns if c.startswith("lisa_")]
        return GEOJSON, feature_collection(res, cols, numberFeatures=int(len(frame)))


class KernelDensityProcessor(AnalysisProcessor):
    """Quartic kernel density surface as a GeoTIFF."""

    ID = "kernel-density"
    TITLE = {"en": "Kernel density", "zh": "核密度分析"}
    DESCRIPTION = {
        "en": "Quartic (ArcGIS) kernel density of the points as a one-band float32 GeoTIFF in "
        "UTM 49N; bandwidth by Silverman's rule unless given.",
        "zh": "点要素的四次核密度（与 ArcGIS 相同），输出 UTM 49N 单波段 GeoTIFF。",
    }
    OUTPUT_MEDIA_TYPE = TIFF
    OPTIONS = (
        Option("population_field", "string", "Numeric weight per point (default: 1 each)."),
        Option(
            "bandwidth",
            "number",
            "Search radius in metres (default: Silverman's rule).",
            minimum=1.0,
            maximum=50_000.0,
        ),
        Option(
            "cell_size",
            "number",
            "Pixel size in metres (default: extent / 250, at most bandwidth / 4).",
            minimum=5.0,
            maximum=5_000.0,
        ),
        Option(
            "units", "string", "Density units.", "per_km2", choices=("per_km2", "per_m2", "per_ha")
        ),
    )

    def check_options(self, layer, opts):
        self._check_field(layer, opts, "population_field")
        bw, cell = opts["bandwidth"], opts["cell_size"]
        if bw is not None and cell is not None:
            ext = _extent_m(layer)
            if ext is not None:
                _check_kernel(
                    *_kernel_work(*ext, bw, cell),
                    bw,
                    cell,
                    f"over the extent of {layer.id!r} ({_km(ext)})",
                )

    def _check_selection(self, frame, opts) -> None:
        """The raster and stencil of the selected points (default bandwidth and cell too)."""
        import numpy as np

        from analytics.density import silverman_bandwidth
        from analytics.weights import point_coordinates, to_projected

        pts = to_projected(frame, stacklevel=3)
        xy = point_coordinates(pts)
        field = opts["population_field"]
        wts = None if field is None else pts[field].to_numpy(dtype=float)
        bw = opts["bandwidth"]
        if bw is None:
            bw = silverman_bandwidth(xy, wts)
        width, height = xy.max(axis=0) - xy.min(axis=0)
        cell = opts["cell_size"]
        if cell is None:  # analytics.density's default
            side = float(np.min([width, height]))
            cell = min(side / 250.0 if side > 0 else bw / 4.0, bw / 4.0)
        pixels, visits = _kernel_work(width, height, bw, cell)
        reach = math.ceil(bw / cell) + 1
        _check_kernel(
            pixels,
            visits + len(xy) * (2 * reach + 1) ** 2,
            bw,
            cell,
            f"over the {len(xy):,} selected points",
        )

    def run(self, opts):
        from analytics.density import kernel_density

        frame = self.read(opts, [opts["population_field"]])
        if len(frame) < 2:
            raise InvalidParameter(f"kernel density needs at least 2 points, got {len(frame)}")
        self._check_selection(frame, opts)
        fd, path = tempfile.mkstemp(suffix=".tif", prefix="tianya-kde-")
        os.close(fd)
        try:
            kernel_density(
                frame,
                path,
                population_field=opts["population_field"],
                bandwidth=opts["bandwidth"],
                cell_size=opts["cell_size"],
                units=opts["units"],
            )
            with open(path, "rb") as fh:
                return TIFF, fh.read()
        finally:
            os.remove(path)


def _check_kernel(pixels: int, visits: int, bandwidth: float, cell: float, where: str) -> None:
    what = f"kernel density with a {bandwidth:g} m bandwidth and {cell:g} m cells {where}"
    _require_within(
        f"pixels of the {what}",
        pixels,
        "MAX_RASTER_CELLS",
        "use a larger cell_size or narrow the selection",
    )
    _require_within(
        f"pixel visits (pixels x kernel stencil) of the {what}",
        visits,
        "MAX_KERNEL_VISITS",
        "use a larger cell_size or a smaller bandwidth "
        f"(bandwidth / cell_size is now {bandwidth / cell:.0f})",
    )


class DensityClustersProcessor(AnalysisProcessor):
    """DBSCAN / HDBSCAN clusters of points with one polygon per cluster."""

    ID = "density-clusters"
    TITLE = {"en": "Density-based clustering", "zh": "密度聚类"}
    DESCRIPTION = {
        "en": "HDBSCAN or DBSCAN (scikit-learn) clusters of the points, one convex or concave "
        "hull polygon per cluster with its point count and area.",
        "zh": "基于密度的点聚类（HDBSCAN 或 DBSCAN），每个簇输出凸包或凹包多边形。",
    }
    OPTIONS = (
        Option(
            "method", "string", "Clustering algorithm.", "hdbscan", choices=("hdbscan", "dbscan")
        ),
        Option(
            "eps",
            "number",
            "DBSCAN neighbourhood radius in metres (required for dbscan).",
            minimum=1.0,
            maximum=10_000.0,
        ),
        Option(
            "min_samples", "integer", "Core-point neighbourhood size.", 5, minimum=1, maximum=1000
        ),
        Option(
            "min_cluster_size",
            "integer",
            "HDBSCAN's smallest cluster.",
            10,
            minimum=2,
            maximum=100_000,
        ),
        Option("hull", "string", "Cluster polygon.", "convex", choices=("convex", "concave")),
        Option(
            "concave_ratio",
            "number",
            "shapely.concave_hull ratio (0: most concave).",
            0.3,
            minimum=0.0,
            maximum=1.0,
        ),
    )

    def check_options(self, layer, opts):
        if opts["method"] == "dbscan" and opts["eps"] is None:
            raise InvalidParameter("method 'dbscan' needs eps (metres)")
        ext = _extent_m(layer) if opts["method"] == "dbscan" else None
        if ext is not None and ext[0] * ext[1] > 0:
            share = math.pi * opts["eps"] ** 2 / (ext[0] * ext[1])
            most = math.sqrt(_limit("MAX_EPS_AREA_SHARE") * ext[0] * ext[1] / math.pi)
            _require_within(
                f"the share of the extent of {layer.id!r} ({_km(ext)}) covered by an "
                f"eps disc of {opts['eps']:g} m",
                share,
                "MAX_EPS_AREA_SHARE",
                f"use an eps of at most {most:.0f} m",
            )

    @staticmethod
    def _check_selection(frame, opts) -> None:
        """Neighbour pairs of the selected points (DBSCAN eps, HDBSCAN min_samples)."""
        from analytics.weights import point_coordinates

        n = len(frame)
        if opts["method"] == "dbscan":
            pairs = _pairs_within(point_coordinates(frame, stacklevel=3), opts["eps"])
            what = f"point pairs within eps {opts['eps']:g} m of the {n:,} selected points"
            advice = "use a smaller eps or narrow the selection (filter, datetime)"
        else:
            pairs = n * opts["min_samples"]
            what = f"core-distance neighbours ({n:,} points x min_samples)"
            advice = "use a smaller min_samples or narrow the selection (filter, datetime)"
        _require_within(what, pairs, "MAX_NEIGHBOUR_PAIRS", advice)

    def run(self, opts):
        from analytics.density import density_clusters

        frame = self.read(opts)
        if len(frame) < 2:
            raise InvalidParameter(f"clustering needs at least 2 points, got {len(frame)}")
        self._check_selection(frame, opts)
        res = density_clusters(
            frame,
            opts["method"],
            eps=opts["eps"],
            min_samples=opts["min_samples"],
            min_cluster_size=opts["min_cluster_size"],
            hull=opts["hull"],
            concave_ratio=opts["concave_ratio"],
        )
        noise = int((res.points["cluster"] < 0).sum())
        return GEOJSON, feature_collection(
            res.clusters,
            ["cluster", "count", "area_m2"],
            numberFeatures=int(len(frame)),
            numberNoise=noise,
        )


class EmergingHotSpotsProcessor(AnalysisProcessor):
    """Emerging Hot Spot Analysis (space-time cube, Mann-Kendall, 17 categories)."""

    ID = "emerging-hot-spots"
    TITLE = {"en": "Emerging hot spot analysis", "zh": "时空热点（新兴热点）分析"}
    DESCRIPTION = {
        "en": "Space-time cube of the timestamped points, Gi* per bin and time step with space "
        "and time-lag neighbours, Mann-Kendall trend per location, and ArcGIS's 17 "
        "categories (new, consecutive, intensifying, persistent, diminishing, sporadic, "
        "oscillating, historical hot/cold spots, no pattern).",
        "zh": "时空立方体 + 逐时段 Gi* + Mann-Kendall 趋势检验，按 ArcGIS 的 17 类时空模式"
        "（新增、连续、加强、持续、减弱、零星、振荡、历史热点/冷点）分类。",
    }
    TEMPORAL_ONLY = True
    OPTIONS = (
        Option("time_field", "string", "Datetime field (default: the layer's temporal field)."),
        Option("cell_size", "number", "Bin size in metres.", 500.0, minimum=20.0, maximum=10_000.0),
        Option(
            "time_step", "string", "Step length, a fixed pandas offset ('1D', '7D', '12h').", "7D"
        ),
        Option("shape", "string", "Bin shape.", "fishnet", choices=("fishnet", "hexagon")),
        Option(
            "distance_band",
            "number",
            "Spatial neighbourhood in metres (default 1.5 x cell_size).",
            minimum=1.0,
            maximum=50_000.0,
        ),
        Option(
            "neighborhood_time_step",
            "integer",
            "Previous steps in each bin's neighbourhood.",
            1,
            minimum=0,
            maximum=52,
        ),
        Option("alpha", "number", "Significance level.", 0.05, minimum=1e-6, maximum=0.5),
        Option("fdr", "boolean", "FDR correction across the cube.", True),
    )

    def check_options(self, layer, opts):
        times = tuple(
            f.name
            for f in layer.fields
            if f.type == "datetime" and f.name in access.visible_fields(layer, self.principal)
        )
        if opts["time_field"] is None:
            opts["time_field"] = layer.temporal
        elif opts["time_field"] not in times:
            raise InvalidParameter(
                choices(opts["time_field"], times, f"datetime field of {layer.id!r}")
            )
        from analytics.emerging import _parse_step

        step = opts["step"] = _parse_step(opts["time_step"])  # AnalyticsError: a 400
        cells = _check_cells(layer, opts["cell_size"], opts["shape"])
        band = opts["distance_band"]
        if band is not None:
            _require_within(
                f"neighbours per bin within a {band:g} m band of {opts['cell_size']:g} m bins",
                math.pi * (band / opts["cell_size"]) ** 2,
                "MAX_NEIGHBOURS_PER_UNIT",
                "use a shorter distance_band or a larger cell_size",
            )
        span = _time_span(layer, opts)
        if span is not None:
            self._check_cube(
                span, step, cells, opts, f"the time extent of {layer.id!r}, {span[0]} .. {span[1]}"
            )

    @staticmethod
    def _check_cube(span, step, cells: int, opts: dict, where: str) -> None:
        from analytics.emerging import count_steps

        steps = count_steps(span[0], span[1], step, max_steps=None)  # arithmetic, no list
        _require_within(
            f"time steps of {opts['time_step']} over {where}",
            steps,
            "MAX_TIME_STEPS",
            "use a longer time_step or a shorter datetime interval",
        )
        _require_within(
            f"cells of the space-time cube ({cells:,} bins x {steps:,} steps)",
            cells * steps,
            "MAX_CUBE_CELLS",
            "use a larger cell_size, a longer time_step or a shorter datetime interval",
        )

    def run(self, opts):
        from analytics.emerging import emerging_hot_spots
        from analytics.weights import point_coordinates

        frame = self.read(opts, [opts["time_field"]])
        frame = frame[frame[opts["time_field"]].notna()]
        if len(frame) < 30:
            raise InvalidParameter(
                f"emerging hot spots need at least 30 timestamped points, got {len(frame)}"
            )
        times = frame[opts["time_field"]]
        xy = point_coordinates(frame, stacklevel=3)
        width, height = xy.max(axis=0) - xy.min(axis=0)
        bins = min(grid_cells(width, height, opts["cell_size"], opts["shape"]), len(frame))
        self._check_cube(
            (times.min(), times.max()), opts["step"], bins, opts, "the selected points' time span"
        )
        res = emerging_hot_spots(
            frame,
            opts["time_field"],
            cell_size=opts["cell_size"],
            time_step=opts["time_step"],
            shape=opts["shape"],
            distance_band=opts["distance_band"],
            neighborhood_time_step=opts["neighborhood_time_step"],
            alpha=opts["alpha"],
            fdr=opts["fdr"],
            max_steps=_limit("MAX_TIME_STEPS"),
        )
        cols = [
            "cell_id",
            "total",
            "category",
            "n_hot",
            "n_cold",
            "final_z",
            "trend_z",
            "trend_p",
            "count_trend_z",
            "count_trend_p",
        ]
        edges = res.cube.edges
        return GEOJSON, feature_collection(
            res.locations,
            cols,
            numberFeatures=int(len(frame)),
            analysis={
                "time_steps": int(res.cube.counts.shape[1]),
                "start": edges[0].isoformat(),
                "end": edges[-1].isoformat(),
                "cell_size": res.cube.cell_size,
                "distance_band": res.distance_band,
            },
        )


def _id_columns(gdf, opts) -> list[str]:
    """Identifying columns of the analysed units, by aggregation."""
    agg = opts.get("aggregation")
    if agg == "communities":
        return ["code", "name"]
    if agg == "none":
        return [opts["layer"].key]
    return ["cell_id"]


def check_execute_request(body: bytes | str) -> None:
    """Check an OGC API execute request document's members (not the inputs' values).

    pygeoapi answers ``subscriber``, ``outputs`` or ``inputs`` of the wrong JSON type, or a
    document that is not an object, with a 500; this raises :class:`InvalidParameter` (400)
    instead.  So is a body pygeoapi cannot parse without a 500: not UTF-8, nested deeper than
    the parser's recursion allows, or an integer of more digits than Python converts (4,300);
    any other body that is not JSON is a 400 too.  An empty body is left to pygeoapi.
    """
    if not body:
        return
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    except UnicodeDecodeError as err:
        raise InvalidParameter(
            f"the execute request is not UTF-8 text (invalid byte at "
            f"position {err.start}); send a JSON object in UTF-8"
        ) from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise InvalidParameter(
            "the execute request nests JSON too deeply to be read; send a JSON object with 'inputs'"
        ) from None
    except ValueError as err:
        raise InvalidParameter(
            f"the execute request is not valid JSON: {err}"[:300]
            + "; send a JSON object with 'inputs' (integers of at most "
            "4,300 digits)"
        ) from None
    if not isinstance(doc, dict):
        raise InvalidParameter(
            "the execute request must be a JSON object with 'inputs' "
            "(and optionally 'outputs', 'response', 'subscriber')"
        )
    for name in ("inputs", "outputs"):
        if doc.get(name) is not None and not isinstance(doc[name], dict):
            raise InvalidParameter(
                f"{name!r} of the execute request must be a JSON object, got {doc[name]!r}"[:300]
            )
    if doc.get("response", "raw") not in ("raw", "document"):
        raise InvalidParameter(
            f"'response' must be 'raw' or 'document', got {doc['response']!r}"[:300]
        )
    sub = doc.get("subscriber")
    if sub:
        if not isinstance(sub, dict):
            raise InvalidParameter(
                "'subscriber' must be a JSON object with 'successUri' "
                "(and optionally 'inProgressUri', 'failedUri')"
            )
        for key in ("successUri", "inProgressUri", "failedUri"):
            if (key == "successUri" or sub.get(key) is not None) and not isinstance(
                sub.get(key), str
            ):
                raise InvalidParameter(f"subscriber {key!r} must be a URL string")


#: The processors by process id.
PROCESSORS: dict[str, type[AnalysisProcessor]] = {
    cls.ID: cls
    for cls in (
        HotSpotsProcessor,
        OptimizedHotSpotsProcessor,
        LocalMoranProcessor,
        KernelDensityProcessor,
        DensityClustersProcessor,
        EmergingHotSpotsProcessor,
    )
}


def process_resources() -> dict[str, dict]:
    """pygeoapi ``resources`` entries (``type: process``) for every analysis, by process id."""
    return {
        pid: {"type": "process", "processor": {"name": f"{cls.__module__}.{cls.__name__}"}}
        for pid, cls in PROCESSORS.items()
    }
