"""The grid statistics processes: Gi* and optimized hot spots, local Moran, emerging hot spots.

- ``hot-spots``: Getis-Ord Gi* (:func:`analytics.gistar.hot_spots`), GeoJSON;
- ``optimized-hot-spots``: Optimized Hot Spot Analysis (:mod:`analytics.ohsa`), GeoJSON;
- ``local-moran``: local Moran's I / LISA (:func:`analytics.moran.local_moran`), GeoJSON;
- ``emerging-hot-spots``: Emerging Hot Spot Analysis (:mod:`analytics.emerging`), GeoJSON.

Each is an :class:`~tianya.plugins.analysis.AnalysisProcessor` with its ``OPTIONS`` and the
budget checks of its inputs (:mod:`tianya.plugins.budgets`).
"""

from __future__ import annotations

import math

from layers import access
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter, choices
from tianya.plugins.analysis import (
    GEOJSON,
    AnalysisProcessor,
    feature_collection,
    id_columns,
    json_scalar,
)
from tianya.plugins.budgets import (
    check_cells,
    extent_m,
    grid_cells,
    limit,
    require_within,
    time_span,
)
from tianya.plugins.options import GRID_OPTIONS, Option

__all__ = [
    "ISA_BANDS",
    "EmergingHotSpotsProcessor",
    "HotSpotsProcessor",
    "LocalMoranProcessor",
    "OptimizedHotSpotsProcessor",
]


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
        cols = id_columns(res, opts) + [value, "gi_z", "gi_p", "gi_p_sim", "gi_bin", "n_neighbors"]
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
            cells = check_cells(layer, size, opts["aggregation"], extra)
        else:  # derived: at least a hundredth of the longer side (analytics.ohsa)
            ext = extent_m(layer, extra)
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
            require_within(
                f"neighbour pairs of the widest scale tried ({ISA_BANDS} cell "
                f"spacings) over up to {cells:,} bounded {size:g} m cells",
                per_cell * cells,
                "MAX_NEIGHBOUR_PAIRS",
                "use a larger cell_size, or bounded false",
            )
        if opts["distance_band"] is not None and size:
            per_cell = min(math.pi * (opts["distance_band"] / size) ** 2, cells)
            require_within(
                f"neighbours per cell within a {opts['distance_band']:g} m band "
                f"of {size:g} m cells",
                per_cell,
                "MAX_NEIGHBOURS_PER_UNIT",
                "use a shorter distance_band or a larger cell_size",
            )
            require_within(
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
        cols = id_columns(res.cells, opts) + ["count", "gi_z", "gi_p", "gi_bin", "n_neighbors"]
        return GEOJSON, feature_collection(
            res.cells,
            cols,
            numberFeatures=int(len(frame)),
            analysis={
                "cell_size": json_scalar(res.cell_size),
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
        cols = id_columns(res, opts) + [value] + [c for c in res.columns if c.startswith("lisa_")]
        return GEOJSON, feature_collection(res, cols, numberFeatures=int(len(frame)))


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
        cells = check_cells(layer, opts["cell_size"], opts["shape"])
        band = opts["distance_band"]
        if band is not None:
            require_within(
                f"neighbours per bin within a {band:g} m band of {opts['cell_size']:g} m bins",
                math.pi * (band / opts["cell_size"]) ** 2,
                "MAX_NEIGHBOURS_PER_UNIT",
                "use a shorter distance_band or a larger cell_size",
            )
        span = time_span(layer, opts)
        if span is not None:
            self._check_cube(
                span, step, cells, opts, f"the time extent of {layer.id!r}, {span[0]} .. {span[1]}"
            )

    @staticmethod
    def _check_cube(span, step, cells: int, opts: dict, where: str) -> None:
        from analytics.emerging import count_steps

        steps = count_steps(span[0], span[1], step, max_steps=None)  # arithmetic, no list
        require_within(
            f"time steps of {opts['time_step']} over {where}",
            steps,
            "MAX_TIME_STEPS",
            "use a longer time_step or a shorter datetime interval",
        )
        require_within(
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
            max_steps=limit("MAX_TIME_STEPS"),
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
