"""The point density processes: kernel density and density-based clusters.

- ``kernel-density``: quartic kernel density (:func:`analytics.density.kernel_density`),
  GeoTIFF (``image/tiff``);
- ``density-clusters``: DBSCAN / HDBSCAN clusters with hull polygons
  (:func:`analytics.density.density_clusters`), GeoJSON.

Each is an :class:`~tianya.plugins.analysis.AnalysisProcessor` with its ``OPTIONS`` and the
budget checks of its inputs (:mod:`tianya.plugins.budgets`).
"""

from __future__ import annotations

import math
import os
import tempfile

from layers.errors import InvalidParameter
from tianya.plugins.analysis import GEOJSON, TIFF, AnalysisProcessor, feature_collection
from tianya.plugins.budgets import (
    check_kernel,
    extent_m,
    extent_text,
    kernel_work,
    limit,
    pairs_within,
    require_within,
)
from tianya.plugins.options import Option

__all__ = ["DensityClustersProcessor", "KernelDensityProcessor"]


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
            ext = extent_m(layer)
            if ext is not None:
                check_kernel(
                    *kernel_work(*ext, bw, cell),
                    bw,
                    cell,
                    f"over the extent of {layer.id!r} ({extent_text(ext)})",
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
        pixels, visits = kernel_work(width, height, bw, cell)
        reach = math.ceil(bw / cell) + 1
        check_kernel(
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
        ext = extent_m(layer) if opts["method"] == "dbscan" else None
        if ext is not None and ext[0] * ext[1] > 0:
            share = math.pi * opts["eps"] ** 2 / (ext[0] * ext[1])
            most = math.sqrt(limit("MAX_EPS_AREA_SHARE") * ext[0] * ext[1] / math.pi)
            require_within(
                f"the share of the extent of {layer.id!r} ({extent_text(ext)}) covered by an "
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
            pairs = pairs_within(point_coordinates(frame, stacklevel=3), opts["eps"])
            what = f"point pairs within eps {opts['eps']:g} m of the {n:,} selected points"
            advice = "use a smaller eps or narrow the selection (filter, datetime)"
        else:
            pairs = n * opts["min_samples"]
            what = f"core-distance neighbours ({n:,} points x min_samples)"
            advice = "use a smaller min_samples or narrow the selection (filter, datetime)"
        require_within(what, pairs, "MAX_NEIGHBOUR_PAIRS", advice)

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
