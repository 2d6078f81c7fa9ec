"""The shared machinery of the analysis processes: :class:`AnalysisProcessor` and its output.

:class:`AnalysisProcessor` is a pygeoapi processor that checks its inputs (the
:class:`~tianya.plugins.options.Option` of :data:`~tianya.plugins.options.COMMON` and its
subclass's ``OPTIONS``, the caller's right to read the layer, the work budgets of
:mod:`tianya.plugins.budgets`), reads the selected features through the shared store and
hands them to its subclass's ``run``; :func:`feature_collection` writes the result as
GeoJSON (CRS84).  The six processors are in :mod:`tianya.plugins.hotspots` and
:mod:`tianya.plugins.density`, registered in :mod:`tianya.plugins.processes`.

The caller's principal (:func:`tianya.request.principal`) is captured when pygeoapi creates the
processor, in the request's thread, because an asynchronous job runs in another thread where
the request's context is not set.
"""

from __future__ import annotations

import json
import math
import warnings

from pygeoapi.process.base import BaseProcessor

from layers import access
from layers.catalogue import LAYERS, Layer
from layers.errors import InvalidParameter, choices
from tianya import request
from tianya.plugins.budgets import check_cells, pairs_within, require_within, shared_store
from tianya.plugins.options import COMMON, Option, numeric_fields

__all__ = [
    "GEOJSON",
    "TIFF",
    "AnalysisProcessor",
    "feature_collection",
    "id_columns",
    "json_scalar",
]

GEOJSON = "application/geo+json"
TIFF = "image/tiff"


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
        valid = numeric_fields(layer, self.principal)
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
                + (", ".join(numeric_fields(layer, self.principal)) or "(none)")
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
            check_cells(layer, size, agg)
            if opts["weights"] in ("distance_band", "inverse_distance"):
                per_unit = math.pi * (opts["distance"] / size) ** 2
                require_within(
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
            require_within(
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
            pairs = pairs_within(point_coordinates(units, stacklevel=3), opts["distance"])
            require_within(
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
        require_within(
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
        frame = shared_store().read_frame(layer, q)
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
        return shared_store().read_frame(layer, Query(properties=["code", "name"], limit=0))

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


def json_scalar(value):
    """JSON-safe scalars (numpy types, NaN → None)."""
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def id_columns(gdf, opts) -> list[str]:
    """Identifying columns of the analysed units, by aggregation."""
    agg = opts.get("aggregation")
    if agg == "communities":
        return ["code", "name"]
    if agg == "none":
        return [opts["layer"].key]
    return ["cell_id"]
