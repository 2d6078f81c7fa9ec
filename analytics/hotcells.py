"""Gi* hot and cold cells, summarised once for the maps, the weekly report and the screen.

:func:`gi_cells` runs the optimized hot spot analysis (:func:`analytics.ohsa.optimized_hot_spots`)
on points in the district's UTM zone, and :func:`significant_cells` turns its fishnet into the
table all three show: the significant cells with their count, z-score, confidence bin and the
bin's colour and labels (:data:`GI_BINS`, colours from :mod:`analytics.palettes`).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import pandas as pd

from analytics.errors import AnalyticsError
from analytics.palettes import GI_BIN_COLORS
from layers.district import UTM

__all__ = ["GI_BINS", "gi_cells", "significant_cells"]

#: Gi* confidence bins: bin → (zh, en, colour); the colours are
#: :data:`analytics.palettes.GI_BIN_COLORS` (ArcGIS's red/blue scheme).
GI_BINS = {
    b: (zh, en, GI_BIN_COLORS[b])
    for b, zh, en in (
        (3, "热点 99%置信度", "Hot spot, 99% confidence"),
        (2, "热点 95%置信度", "Hot spot, 95% confidence"),
        (1, "热点 90%置信度", "Hot spot, 90% confidence"),
        (0, "不显著", "Not significant"),
        (-1, "冷点 90%置信度", "Cold spot, 90% confidence"),
        (-2, "冷点 95%置信度", "Cold spot, 95% confidence"),
        (-3, "冷点 99%置信度", "Cold spot, 99% confidence"),
    )
}
_WHICH = ("hot", "cold", "significant")


def gi_cells(
    points: gpd.GeoDataFrame, cell_size: float = 500.0, *, min_points: int = 30
) -> gpd.GeoDataFrame | None:
    """The Gi* fishnet of ``points`` (in UTM 49N), or None when there is no analysis.

    Parameters
    ----------
    points : GeoDataFrame
        Point features in any CRS.
    cell_size : float, default 500
        Fishnet cell in metres.
    min_points : int, default 30
        Fewer points give None without trying.

    Returns
    -------
    GeoDataFrame or None
        The cells (``count``, ``gi_z``, ``gi_bin``…); None when there are fewer than
        ``min_points`` points or the analysis refuses them (:class:`AnalyticsError`).
    """
    from analytics.ohsa import optimized_hot_spots

    if len(points) < min_points:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return optimized_hot_spots(points.to_crs(UTM), cell_size=cell_size).cells
    except AnalyticsError:
        return None


def significant_cells[C: pd.DataFrame](
    cells: C, which: str = "hot", *, top: int | None = None
) -> C:
    """The significant cells of a Gi* fishnet, with their bin's colour and labels.

    Parameters
    ----------
    cells : DataFrame or GeoDataFrame
        Cells with ``count``, ``gi_z`` and ``gi_bin`` (as :func:`gi_cells` gives).
    which : {"hot", "cold", "significant"}
        Hot cells (bin > 0), cold cells (bin < 0) or both.
    top : int, optional
        Keep the ``top`` cells with the most points (ties: the larger ``|z|`` first);
        default all, in the fishnet's order.

    Returns
    -------
    DataFrame or GeoDataFrame
        The cells (same index, geometry and CRS) with ``count`` (int), ``gi_z``
        (rounded to 2 decimals), ``gi_bin`` (int), ``color``, ``zh`` and ``en``.

    Examples
    --------
    >>> cells = pd.DataFrame({"count": [9, 4, 12, 1], "gi_z": [3.1, -2.0, 2.71828, 0.1],
    ...                       "gi_bin": [3, -2, 2, 0]})
    >>> significant_cells(cells, top=1)[["count", "gi_z", "gi_bin", "color"]]
       count  gi_z  gi_bin    color
    2     12  2.72       2  #ed7551
    >>> significant_cells(cells, "significant")["en"].tolist()
    ['Hot spot, 99% confidence', 'Cold spot, 95% confidence', 'Hot spot, 95% confidence']
    """
    if which not in _WHICH:
        raise AnalyticsError(f"which must be one of {', '.join(_WHICH)}, got {which!r}")
    b = cells["gi_bin"].astype(int)
    keep = b > 0 if which == "hot" else b < 0 if which == "cold" else b != 0
    out = cells[keep.to_numpy()]
    if top is not None:
        out = out.assign(_z=out["gi_z"].abs()).sort_values(["count", "_z"], ascending=False)
        out = out.iloc[:top].drop(columns="_z")
    out = out.copy()
    out["count"] = out["count"].astype(int)
    out["gi_bin"] = out["gi_bin"].astype(int)
    out["gi_z"] = [round(float(z), 2) for z in out["gi_z"]]
    for i, col in enumerate(("zh", "en", "color")):
        out[col] = [GI_BINS[v][i] for v in out["gi_bin"]]
    return out
