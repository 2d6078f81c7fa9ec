"""Hotspot and emerging-hotspot analyses of partitioned case histories on Dask.

Binning incidents to fishnet / hexagon / community cells and counting the space-time cube run
as Dask tasks, one per GeoParquet file of an export (:mod:`analytics.parquet`), on a
``dask.distributed`` cluster: a :class:`~distributed.LocalCluster` by default, or the scheduler
at ``scheduler="tcp://host:8786"``.  Only the aggregated table -- ``(cell, step) -> count`` --
comes back to the caller, where the existing analysis code runs unchanged on it
(:func:`analytics.ohsa.optimized_hot_spots_cells`,
:func:`analytics.emerging.emerging_hot_spots_from_cube`, or :func:`analytics.gistar.hot_spots`
on :func:`aggregate_points`' cells).

Results are identical to the single-process functions: the grid is built by the same
functions (:func:`analytics.aggregate.fishnet_grid`, :func:`~analytics.aggregate.hexagon_grid`,
:func:`~analytics.aggregate.fishnet_shape`) from the same extent, each point's cell and time
step are computed by the same functions (:func:`analytics.aggregate.fishnet_cells`, the same
``cKDTree`` nearest centre, the same ``STRtree`` query; :func:`analytics.emerging.count_steps`
and the integer step index of :func:`analytics.emerging.space_time_cube`), and counts are
integers, so summing partial counts in any order gives the same numbers.

The number of time steps is checked (``max_steps``, :func:`analytics.emerging.count_steps`)
before any binning task is built: from the time column's Parquet statistics before the cluster
is even started when every row group has them, and in any case from the exact time range of
the first pass.

Two passes over the data: the first reduces the projected extent and the time range (the grid
origin and the time steps depend on them; skipped for communities), the second bins.  Each task
reads only the columns it needs: for point layers the GeoParquet ``bbox`` covering column
(``xmin``/``ymin`` of a point are its coordinates), so no WKB is decoded.  A geographic CRS is
projected to the UTM zone :meth:`geopandas.GeoSeries.estimate_utm_crs` picks for the whole
extent (read from the files' ``geo`` metadata), with the same warning as the single-process
functions.  Memory per worker is bounded by the largest file, not by the history.

Functions
---------
aggregate_points, space_time_cube
    Counts per cell / cube, ``engine="single"`` or ``"dask"``.
emerging_hot_spots, optimized_hot_spots
    The analyses on the aggregated table.
count_series, forecast
    Case counts per cell / community / category and period (the forecasting panel of
    :mod:`analytics.forecast`), binned per file; the models run on the assembled panel, so
    the forecasts are bit-identical to the single process.
dask_client
    Context manager: a client on a LocalCluster, an address, or an existing client.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import warnings
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyproj
import shapely

from analytics import aggregate as _agg
from analytics import emerging as _ehsa
from analytics import ohsa as _ohsa
from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.parquet import parquet_files

__all__ = [
    "ENGINES",
    "aggregate_points",
    "count_series",
    "dask_client",
    "emerging_hot_spots",
    "forecast",
    "optimized_hot_spots",
    "space_time_cube",
]

ENGINES = ("single", "dask")
#: schedulers that need no distributed cluster (tests, debugging)
LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")


# --- the cluster ------------------------------------------------------------------------------


@contextlib.contextmanager
def dask_client(
    scheduler=None,
    *,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str = "3GiB",
):
    """Yield what computes the Dask graphs.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None`` or ``"local"``: a new :class:`distributed.LocalCluster` (closed on exit);
        ``"tcp://host:8786"`` (any address): a client of that scheduler; a ``Client``: used
        as is; ``"synchronous"`` / ``"threads"`` / ``"processes"``: Dask's local schedulers
        without a cluster (yields the name).
    n_workers, threads_per_worker, processes, memory_limit
        LocalCluster settings (per worker memory limit: Dask spills, then pauses, then
        restarts a worker that exceeds it).

    Yields
    ------
    distributed.Client or str
    """
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
    elif scheduler in LOCAL_SCHEDULERS:
        yield scheduler
    elif scheduler is None or scheduler == "local":
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                memory_limit=memory_limit,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with Client(scheduler) as client:
            yield client


def _compute(obj, runner):
    if isinstance(runner, str):
        return obj.compute(scheduler=runner)
    return runner.compute(obj, sync=True)


# --- reading partitions -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Everything a task needs (small, pickled once per task)."""

    geometry: str
    covering: str | None  # bbox covering column of a point layer, else None
    src_crs: str | None
    dst_crs: str | None
    time_field: str | None = None
    mode: str = ""  # "fishnet", "fishnet_cube", "hexagon", "communities"
    bounds: tuple = ()
    cell_size: float = 0.0
    ncol: int = 0
    nrow: int = 0
    centres: np.ndarray | None = None
    polygons: tuple = ()  # WKB
    t_end: pd.Timestamp | None = None  # latest timestamp: the steps are aligned to it
    step: pd.Timedelta | None = None
    n_steps: int = 1


@dataclass
class _Source:
    files: list[str]
    geometry: str
    covering: str | None
    crs: pyproj.CRS | None
    bounds: np.ndarray  # source CRS
    rows: int
    #: (earliest, latest) of the time field from row-group statistics, None if unknown
    time_range: tuple[pd.Timestamp, pd.Timestamp] | None = None


class _TimeStats:
    """Earliest and latest value of one timestamp column from Parquet row-group statistics.

    ``range`` is ``None`` when a non-empty row group has no min/max for the column (or the
    column is not a Parquet timestamp): then only the first pass knows the time range.
    """

    def __init__(self, column: str | None):
        self.column, self.known = column, column is not None
        self.lo: pd.Timestamp | None = None
        self.hi: pd.Timestamp | None = None

    def add(self, meta) -> None:
        if not self.known:
            return
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            cols = [rg.column(i) for i in range(rg.num_columns)]
            col = next((c for c in cols if c.path_in_schema == self.column), None)
            st = col.statistics if col is not None else None
            if rg.num_rows == 0 or (st is not None and st.null_count == rg.num_rows):
                continue  # nothing (or only nulls, refused by the first pass) in it
            if (
                st is None
                or not st.has_min_max
                or "Timestamp" not in str(st.logical_type)
                or not all(isinstance(v, datetime.datetime) for v in (st.min, st.max))
            ):
                self.known = False
                return
            lo, hi = pd.Timestamp(st.min), pd.Timestamp(st.max)
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)

    @property
    def range(self):
        return (self.lo, self.hi) if self.known and self.lo is not None else None


def _open(path: str, time_field: str | None = None) -> _Source:
    files = parquet_files(path)
    if not files:
        raise AnalyticsError(f"no Parquet files in {path}")
    geo: dict = {}  # the first file's "geo" metadata
    rows, boxes = 0, []
    tstats = _TimeStats(time_field)
    for f in files:
        meta = pq.read_metadata(f)
        rows += meta.num_rows
        tstats.add(meta)
        g = json.loads(meta.metadata[b"geo"])
        geo = geo or g
        col = g["columns"][g["primary_column"]]
        if "bbox" in col and meta.num_rows:
            boxes.append(col["bbox"])
    col = geo["columns"][geo["primary_column"]]
    crs = (
        pyproj.CRS.from_json_dict(col["crs"])
        if col.get("crs")
        else (None if "crs" in col else pyproj.CRS("OGC:CRS84"))
    )
    types = col.get("geometry_types") or []
    covering = col.get("covering", {}).get("bbox", {}).get("xmin", [None])[0]
    if types != ["Point"]:
        covering = None
    b = np.asarray(boxes, dtype=float)
    bounds = (
        np.r_[b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
        if len(b)
        else np.full(4, np.nan)
    )
    return _Source(files, geo["primary_column"], covering, crs, bounds, rows, tstats.range)


def _target_crs(src: _Source):
    """The projected CRS the single-process functions would use (and warn about)."""
    if src.crs is None or not src.crs.is_geographic:
        return None
    corners = gpd.GeoSeries(shapely.points([src.bounds[:2], src.bounds[2:]]), crs=src.crs)
    utm = corners.estimate_utm_crs()
    warnings.warn(
        f"input CRS {src.crs.to_string()} is geographic; distances are computed in "
        f"{utm.to_string()} (reproject to a projected CRS such as EPSG:32649 to silence this)",
        UserWarning,
        stacklevel=4,
    )
    return utm


def _read(path: str, spec: _Spec):
    """``(xy, times)`` of one file in the projected CRS (``times`` None without time field)."""
    tf = spec.time_field
    if spec.covering:
        cols = [spec.covering] + ([tf] if tf else [])
        table = pq.read_table(path, columns=cols)
        box = table.column(spec.covering).combine_chunks()
        x = box.field("xmin").to_numpy(zero_copy_only=False)
        y = box.field("ymin").to_numpy(zero_copy_only=False)
        if spec.dst_crs:
            tr = pyproj.Transformer.from_crs(spec.src_crs, spec.dst_crs, always_xy=True)
            x, y = tr.transform(x, y)
        xy = np.column_stack([x, y]).astype(float)
        times = table.select([tf]).to_pandas()[tf] if tf else None
    else:
        from analytics.weights import point_coordinates

        frame = gpd.read_parquet(path, columns=[spec.geometry] + ([tf] if tf else []))
        if spec.dst_crs:
            frame = frame.to_crs(spec.dst_crs)
        xy = point_coordinates(frame)
        times = frame[tf] if tf else None
    if times is not None:
        times = pd.to_datetime(times)
    return xy, times


def _extent_task(path: str, spec: _Spec) -> pd.DataFrame:
    xy, times = _read(path, spec)
    row = {"n": len(xy)}
    if len(xy):
        row.update(
            xmin=xy[:, 0].min(), ymin=xy[:, 1].min(), xmax=xy[:, 0].max(), ymax=xy[:, 1].max()
        )
    if times is not None:
        row.update(nat=int(times.isna().sum()))
        if len(times):
            row.update(tmin=times.min(), tmax=times.max())
    return pd.DataFrame([row])


def _cells(xy: np.ndarray, spec: _Spec) -> tuple[np.ndarray, np.ndarray | None]:
    """Cell of every point (and a keep mask), exactly as the single-process code computes it."""
    if spec.mode in ("fishnet", "fishnet_cube"):
        # analytics.aggregate.aggregate_points / analytics.emerging.space_time_cube
        row, col = _agg.fishnet_cells(xy, spec.bounds, spec.cell_size)
        ok = (col >= 0) & (col < spec.ncol) & (row >= 0) & (row < spec.nrow)
        if spec.mode == "fishnet":
            return row * spec.ncol + col, ok
        # the cube's extent is the points' own: every point is in the grid
        _check_inside(ok, "outside the extent")
        return row * spec.ncol + col, None
    if spec.mode == "hexagon":
        from scipy.spatial import cKDTree

        centres = cast(np.ndarray, spec.centres)  # set in hexagon mode
        return cKDTree(centres).query(xy, workers=1)[1], None
    polys = shapely.from_wkb(np.asarray(spec.polygons, dtype=object))
    tree = shapely.STRtree(polys)
    pi, gi = tree.query(shapely.points(xy), predicate="intersects")
    first = np.unique(pi, return_index=True)[1]
    return gi[first], None


def _check_inside(ok: np.ndarray, what: str) -> None:
    """Refuse points the first pass did not see (the export changed between the passes)."""
    if not ok.all():
        raise AnalyticsError(
            f"{int((~ok).sum())} incidents lie {what} measured by the first pass: the export "
            "changed while it was being analysed; run the analysis again"
        )


def _bin_task(path: str, spec: _Spec | _SeriesSpec) -> pd.DataFrame:
    """``(key, period, n)`` of one file: its cases per location and time step.

    The one binning of every Dask computation: aggregations and Gi* (``_Spec`` without a
    time field: period 0), the space-time cube (``_Spec`` with one: the cube's step, as
    :func:`analytics.emerging.space_time_cube`) and the forecast panels (``_SeriesSpec``: the
    local week or day, as :func:`analytics.forecast.count_series`).  The key is the cell of
    :func:`_cells`, or the series column's value for a panel of communities or categories.
    """
    series = isinstance(spec, _SeriesSpec)
    b = spec.base if isinstance(spec, _SeriesSpec) else spec
    if isinstance(spec, _SeriesSpec) and spec.level != "cell":
        cols = [cast(str, b.time_field), cast(str, spec.key_field)]
        frame = pq.read_table(path, columns=cols).to_pandas()
        times, ok = frame[b.time_field], None
        key = frame[spec.key_field].astype(str).to_numpy()
    else:
        xy, times = _read(path, b)
        key, ok = _cells(xy, b)
        key = np.asarray(key, dtype=np.int64)
    if isinstance(spec, _SeriesSpec):
        step = pd.Timedelta(days=7 if spec.freq == "W" else 1)
        day = _local_periods(times, spec.freq, spec.tz)
        tidx = ((day - cast(pd.Timestamp, spec.first)) / step).to_numpy().astype(np.int64)
        n_periods = spec.n_periods
    elif times is not None:  # a cube's spec has its end and step
        t_end, step = cast(pd.Timestamp, b.t_end), cast(pd.Timedelta, b.step)
        tidx = _ehsa._step_index(times, t_end, step, b.n_steps)
        n_periods = b.n_steps
    else:
        tidx, n_periods = np.zeros(len(key), dtype=np.int64), 1
    if series or times is not None:
        _check_inside((tidx >= 0) & (tidx < n_periods), "outside the time range")
    out = pd.DataFrame({"key": key, "period": np.asarray(tidx, dtype=np.int64)})
    if ok is not None:
        out = out[ok]
    return out.groupby(["key", "period"], sort=False).size().rename("n").reset_index()


def _map(func, src: _Source, spec: _Spec | _SeriesSpec, meta: pd.DataFrame, label: str):
    import dask.dataframe as dd

    return dd.from_map(func, src.files, spec=spec, meta=meta, label=label, enforce_metadata=False)


def _extent(src: _Source, spec: _Spec, runner) -> pd.DataFrame:
    meta = pd.DataFrame({"n": pd.Series(dtype="int64")})
    parts = _compute(_map(_extent_task, src, spec, meta, "tianya-extent"), runner)
    parts = parts[parts["n"] > 0]
    if parts.empty:
        raise AnalyticsError("the history has no incidents")
    return parts


def _counts(src: _Source, spec: _Spec | _SeriesSpec, runner, key_dtype="int64") -> pd.Series:
    """Cases per ``(key, period)`` over every file (:func:`_bin_task`, summed)."""
    meta = pd.DataFrame(
        {
            "key": pd.Series(dtype=key_dtype),
            "period": pd.Series(dtype="int64"),
            "n": pd.Series(dtype="int64"),
        }
    )
    ddf = _map(_bin_task, src, spec, meta, "tianya-bin")
    return _compute(ddf.groupby(["key", "period"])["n"].sum(split_out=1), runner)


def _fishnet(spec: _Spec, bounds, cell_size: float, crs, mode: str):
    """The fishnet of ``bounds`` and ``spec`` set to bin into it (``mode``: see :class:`_Spec`)."""
    grid = _agg.fishnet_grid(bounds, cell_size, crs)
    nrow, ncol = _agg.fishnet_shape(bounds, cell_size)
    spec = _replace(
        spec, mode=mode, bounds=tuple(bounds), cell_size=float(cell_size), ncol=ncol, nrow=nrow
    )
    return grid, spec


def _base_spec(src: _Source, time_field: str | None = None) -> tuple[_Spec, object]:
    dst = _target_crs(src)
    spec = _Spec(
        geometry=src.geometry,
        covering=src.covering,
        src_crs=src.crs.to_wkt() if src.crs is not None else None,
        dst_crs=dst.to_wkt() if dst is not None else None,
        time_field=time_field,
    )
    return spec, (dst if dst is not None else src.crs)


def _replace(spec: _Spec, **kw) -> _Spec:
    from dataclasses import replace

    return replace(spec, **kw)


# --- the library calls ------------------------------------------------------------------------


def _single_source(source):
    if isinstance(source, gpd.GeoDataFrame):
        return source
    return gpd.read_parquet(source)


def _check_engine(engine, source):
    check_choice(engine, "engine", ENGINES)
    if (
        engine == "dask"
        and not isinstance(source, str | bytes)
        and not hasattr(source, "__fspath__")
    ):
        raise AnalyticsError(
            "engine='dask' reads a GeoParquet export: give its path "
            "(see analytics.parquet.export_layer)"
        )


def aggregate_points(
    source,
    aggregation: str = "fishnet",
    *,
    cell_size: float | None = None,
    polygons=None,
    keep_empty: bool = False,
    engine: str = "dask",
    scheduler=None,
) -> gpd.GeoDataFrame:
    """Count incidents per cell: :func:`analytics.aggregate.aggregate_points` on either engine.

    Parameters
    ----------
    source : str or GeoDataFrame
        A GeoParquet export (directory or file); a GeoDataFrame for ``engine="single"``.
    aggregation, cell_size, polygons, keep_empty
        As in :func:`analytics.aggregate.aggregate_points`.
    engine : {"single", "dask"}
        ``"single"`` reads everything into one GeoDataFrame and calls the single-process
        function; ``"dask"`` bins partition by partition on a Dask cluster.
    scheduler : None, str or distributed.Client
        See :func:`dask_client`.

    Returns
    -------
    GeoDataFrame
        Equal to the single-process result.
    """
    _check_engine(engine, source)
    if engine == "single":
        return _agg.aggregate_points(
            _single_source(source),
            aggregation,
            cell_size=cell_size,
            polygons=polygons,
            keep_empty=keep_empty,
        )
    check_choice(aggregation, "aggregation", _agg.AGGREGATIONS)
    src = _open(str(source))
    spec, crs = _base_spec(src)
    with dask_client(scheduler) as runner:
        if aggregation == "communities":
            if polygons is None:
                raise AnalyticsError("aggregation='communities' needs polygons")
            polys = polygons.to_crs(crs) if crs is not None and polygons.crs != crs else polygons
            polys = polys.reset_index(drop=True)
            spec = _replace(
                spec,
                mode="communities",
                polygons=tuple(shapely.to_wkb(np.asarray(polys.geometry.values, dtype=object))),
            )
            counts = _dense(_counts(src, spec, runner).droplevel("period"), len(polys))
            out = polys.copy()
            out["count"] = counts.astype(np.int64)
            return out
        check_positive(cell_size, "cell_size")
        if cell_size is None:
            raise AnalyticsError(f"aggregation={aggregation!r} needs a cell_size in metres")
        if polygons is not None:
            polys = polygons.to_crs(crs) if crs is not None and polygons.crs != crs else polygons
            bounds = polys.total_bounds
        else:
            ext = _extent(src, spec, runner)
            bounds = np.r_[
                ext["xmin"].min(), ext["ymin"].min(), ext["xmax"].max(), ext["ymax"].max()
            ]
        if aggregation == "fishnet":
            grid, spec = _fishnet(spec, bounds, cell_size, crs, "fishnet")
        else:
            grid = _agg.hexagon_grid(bounds, cell_size, crs)
            centres = shapely.get_coordinates(shapely.centroid(grid.geometry.values))
            spec = _replace(spec, mode="hexagon", centres=centres)
        counts = _dense(_counts(src, spec, runner).droplevel("period"), len(grid))
    grid["count"] = counts.astype(np.int64)
    if polygons is not None:
        union = shapely.union_all(np.asarray(polys.geometry.values, dtype=object))
        grid = grid[shapely.intersects(grid.geometry.values, union)]
    elif not keep_empty:
        grid = grid[grid["count"] > 0]
    return grid.reset_index(drop=True)


def _dense(series: pd.Series, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    out[series.index.to_numpy(dtype=np.int64)] = series.to_numpy(dtype=np.int64)
    return out


def space_time_cube(
    source,
    time_field: str,
    *,
    cell_size: float,
    time_step: str = "7D",
    shape: str = "fishnet",
    engine: str = "dask",
    scheduler=None,
    max_steps: int | None = _ehsa.MAX_STEPS,
) -> _ehsa.SpaceTimeCube:
    """Count incidents per bin and time step: :func:`analytics.emerging.space_time_cube` on
    either engine.

    Parameters
    ----------
    source : str or GeoDataFrame
        A GeoParquet export; a GeoDataFrame for ``engine="single"``.
    time_field, cell_size, time_step, shape, max_steps
        As in :func:`analytics.emerging.space_time_cube`.  With ``engine="dask"`` a cube of
        more than ``max_steps`` steps is refused before any binning task is built (before the
        cluster is started when the time column has Parquet statistics).
    engine : {"single", "dask"}
    scheduler : None, str or distributed.Client
        See :func:`dask_client`.

    Returns
    -------
    SpaceTimeCube
        Equal to the single-process cube.

    Raises
    ------
    AnalyticsError
        For invalid parameters, missing timestamps, or more than ``max_steps`` time steps.
    """
    _check_engine(engine, source)
    if engine == "single":
        return _ehsa.space_time_cube(
            _single_source(source),
            time_field,
            cell_size=cell_size,
            time_step=time_step,
            shape=shape,
            max_steps=max_steps,
        )
    check_choice(shape, "bin shape", _ehsa.BIN_SHAPES)
    check_positive(cell_size, "cell_size")
    _ehsa._parse_step(time_step)
    src = _open(str(source), time_field)
    names = pq.read_schema(src.files[0]).names
    if time_field not in names:
        raise AnalyticsError(
            f"{time_field!r} is not a column, must be one of: "
            f"{', '.join(n for n in names if n not in (src.geometry, 'bbox'))}"
        )
    if src.time_range is not None:  # the step budget from the footers, before any task
        _ehsa.count_steps(*src.time_range, time_step, max_steps=max_steps)
    with dask_client(scheduler) as runner:
        return _cube(src, time_field, cell_size, time_step, shape, max_steps, runner)


def _cube(
    src: _Source, time_field, cell_size, time_step, shape, max_steps, runner
) -> _ehsa.SpaceTimeCube:
    """The cube on Dask; the same steps and cells as :func:`analytics.emerging.space_time_cube`."""
    step = _ehsa._parse_step(time_step)
    spec, crs = _base_spec(src, time_field)
    ext = _extent(src, spec, runner)
    if ext["nat"].sum():
        raise AnalyticsError(
            f"column {time_field!r} has {int(ext['nat'].sum())} missing timestamps"
        )
    tmax, tmin = ext["tmax"].max(), ext["tmin"].min()
    # refused here, before any binning task and before the step edges are allocated
    n_steps = _ehsa.count_steps(tmin, tmax, time_step, max_steps=max_steps)
    edges = pd.DatetimeIndex([tmax - step * (n_steps - i) for i in range(n_steps + 1)])
    bounds = np.r_[ext["xmin"].min(), ext["ymin"].min(), ext["xmax"].max(), ext["ymax"].max()]
    spec = _replace(
        spec,
        bounds=tuple(bounds),
        cell_size=float(cell_size),
        t_end=tmax,
        step=step,
        n_steps=n_steps,
    )
    if shape == "fishnet":
        grid, spec = _fishnet(spec, bounds, cell_size, crs, "fishnet_cube")
    else:
        grid = _agg.hexagon_grid(bounds, cell_size, crs)
        centres = shapely.get_coordinates(shapely.centroid(grid.geometry.values))
        spec = _replace(spec, mode="hexagon", centres=centres)
    partial = _counts(src, spec, runner)
    counts = np.zeros((len(grid), n_steps))
    cell = partial.index.get_level_values("key").to_numpy(dtype=np.int64)
    tidx = partial.index.get_level_values("period").to_numpy(dtype=np.int64)
    counts[cell, tidx] = partial.to_numpy(dtype=float)
    keep = counts.sum(axis=1) > 0
    bins = grid[keep].reset_index(drop=True)
    bins["total"] = counts[keep].sum(axis=1).astype(np.int64)
    return _ehsa.SpaceTimeCube(
        bins=bins, counts=counts[keep], edges=edges, cell_size=float(cell_size)
    )


def emerging_hot_spots(
    source,
    time_field: str,
    *,
    cell_size: float,
    time_step: str = "7D",
    shape: str = "fishnet",
    distance_band: float | None = None,
    neighborhood_time_step: int = 1,
    alpha: float = 0.05,
    fdr: bool = True,
    engine: str = "dask",
    scheduler=None,
    max_steps: int | None = _ehsa.MAX_STEPS,
) -> _ehsa.EmergingHotSpots:
    """Emerging Hot Spot Analysis on either engine.

    The cube is counted by :func:`space_time_cube` (over partitions with ``engine="dask"``);
    :func:`analytics.emerging.emerging_hot_spots_from_cube` analyses it.

    Parameters
    ----------
    source : str or GeoDataFrame
    time_field, cell_size, time_step, shape, distance_band, neighborhood_time_step, alpha, fdr
        As in :func:`analytics.emerging.emerging_hot_spots`.
    max_steps : int or None, default :data:`analytics.emerging.MAX_STEPS`
        Largest number of time steps (see :func:`space_time_cube`).
    engine : {"single", "dask"}
    scheduler : None, str or distributed.Client

    Returns
    -------
    EmergingHotSpots
    """
    _check_engine(engine, source)
    if engine == "single":
        return _ehsa.emerging_hot_spots(
            _single_source(source),
            time_field,
            cell_size=cell_size,
            time_step=time_step,
            shape=shape,
            distance_band=distance_band,
            neighborhood_time_step=neighborhood_time_step,
            alpha=alpha,
            fdr=fdr,
            max_steps=max_steps,
        )
    if not 0 < alpha < 1:
        raise AnalyticsError(f"alpha must lie in (0, 1), got {alpha!r}")
    cube = space_time_cube(
        source,
        time_field,
        cell_size=cell_size,
        time_step=time_step,
        shape=shape,
        engine="dask",
        scheduler=scheduler,
        max_steps=max_steps,
    )
    return _ehsa.emerging_hot_spots_from_cube(
        cube,
        distance_band=distance_band,
        neighborhood_time_step=neighborhood_time_step,
        alpha=alpha,
        fdr=fdr,
    )


def optimized_hot_spots(
    source,
    aggregation: str = "fishnet",
    *,
    cell_size: float | None = None,
    polygons=None,
    bounding_polygons=None,
    distance_band: float | None = None,
    engine: str = "dask",
    scheduler=None,
) -> _ohsa.OptimizedHotSpots:
    """Optimized Hot Spot Analysis on either engine.

    With ``engine="dask"`` the cells are counted over partitions and
    :func:`analytics.ohsa.optimized_hot_spots_cells` analyses them.  The incident-level steps
    of OHSA (locational outliers, the cell size from nearest-neighbour distances) need every
    point at once, so the Dask engine supports the cases whose cells do not depend on them:
    ``aggregation="communities"``, or a grid with ``cell_size`` and ``bounding_polygons``
    (all incidents counted, as the single-process function does then).  ``n_outliers`` is
    ``None`` in its result.

    Parameters
    ----------
    source : str or GeoDataFrame
    aggregation, cell_size, polygons, bounding_polygons, distance_band
        As in :func:`analytics.ohsa.optimized_hot_spots`.
    engine : {"single", "dask"}
    scheduler : None, str or distributed.Client

    Returns
    -------
    OptimizedHotSpots
    """
    _check_engine(engine, source)
    if engine == "single":
        return _ohsa.optimized_hot_spots(
            _single_source(source),
            aggregation,
            cell_size=cell_size,
            polygons=polygons,
            bounding_polygons=bounding_polygons,
            distance_band=distance_band,
        )
    check_choice(aggregation, "aggregation", _agg.AGGREGATIONS)
    check_positive(distance_band, "distance_band")
    if aggregation != "communities" and (cell_size is None or bounding_polygons is None):
        raise AnalyticsError(
            "engine='dask' needs cell_size and bounding_polygons for grid aggregations "
            "(locational outliers and the derived cell size need all incidents in memory); "
            "or use aggregation='communities'"
        )
    rows = _open(str(source)).rows
    if rows < _ohsa.MIN_FEATURES:
        raise AnalyticsError(f"at least {_ohsa.MIN_FEATURES} incidents are needed, got {rows}")
    if aggregation == "communities":
        cells = aggregate_points(
            source, "communities", polygons=polygons, engine="dask", scheduler=scheduler
        )
        size = None
    else:
        size = float(cast(float, cell_size))  # refused above when None
        cells = aggregate_points(
            source,
            aggregation,
            cell_size=size,
            polygons=bounding_polygons,
            engine="dask",
            scheduler=scheduler,
        )
    return _ohsa.optimized_hot_spots_cells(
        cells, cell_size=size, distance_band=distance_band, n_outliers=None
    )


# --- forecasting (issue 16) -------------------------------------------------------------------


@dataclass(frozen=True)
class _SeriesSpec:
    """What a binning task of :func:`count_series` needs (small, pickled once per task)."""

    base: _Spec
    level: str
    key_field: str | None  # community / category levels
    freq: str
    tz: str
    first: pd.Timestamp | None = None  # first period start (local, naive)
    n_periods: int = 0


def _local_periods(times: pd.Series, freq: str, tz: str) -> pd.Series:
    """Start (local naive day) of each time's period, as :func:`analytics.forecast.count_series`."""
    times = pd.to_datetime(times)
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    day = times.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if freq == "W":
        day = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day


def _series_extent_task(path: str, spec: _SeriesSpec) -> pd.DataFrame:
    """Projected extent (cells), time range and missing values of one file."""
    b = spec.base
    if spec.level == "cell":
        xy, times = _read(path, b)
    else:
        table = pq.read_table(path, columns=[cast(str, b.time_field), spec.key_field])
        frame = table.to_pandas()
        times, xy = pd.to_datetime(frame[b.time_field]), None
    row: dict = {"n": len(times), "nat": int(times.isna().sum())}
    if spec.level != "cell":
        row["nak"] = int(frame[spec.key_field].isna().sum())
    if len(times):
        days = _local_periods(times.dropna(), spec.freq, spec.tz)
        if len(days):
            row.update(pmin=days.min(), pmax=days.max())
    if xy is not None and len(xy):
        row.update(
            xmin=xy[:, 0].min(), ymin=xy[:, 1].min(), xmax=xy[:, 0].max(), ymax=xy[:, 1].max()
        )
    return pd.DataFrame([row])


def count_series(
    source,
    time_field: str = "reported_at",
    *,
    level: str = "cell",
    freq: str = "W",
    key_field: str | None = None,
    cell_size: float = 200.0,
    tz: str = "Asia/Shanghai",
    engine: str = "dask",
    scheduler=None,
):
    """Counts per series and period: :func:`analytics.forecast.count_series` on either engine.

    With ``engine="dask"`` each GeoParquet file is binned by a task (first pass: projected
    extent and the local periods' range; second pass: ``(series, period) -> count``); the
    caller assembles the panel.  The grid, each case's cell and period are computed as the
    single-process function computes them, and counts are integers, so the panel is equal
    (``counts``, ``keys``, ``periods`` and ``cells``).

    Parameters
    ----------
    source : str or GeoDataFrame
        A GeoParquet export (directory or file); a GeoDataFrame for ``engine="single"``.
    time_field, level, freq, key_field, cell_size, tz
        As in :func:`analytics.forecast.count_series`.
    engine : {"single", "dask"}
    scheduler : None, str or distributed.Client
        See :func:`dask_client`.

    Returns
    -------
    analytics.forecast.SeriesPanel
    """
    from analytics import forecast as _fc
    from analytics.calendar_features import FREQS

    _check_engine(engine, source)
    if engine == "single":
        return _fc.count_series(
            _single_source(source),
            time_field,
            level=level,
            freq=freq,
            key_field=key_field,
            cell_size=cell_size,
            tz=tz,
        )
    check_choice(level, "level", _fc.LEVELS)
    check_choice(freq, "freq", FREQS)
    if level == "cell":
        check_positive(cell_size, "cell_size")
    src = _open(str(source))
    names = pq.read_schema(src.files[0]).names
    if time_field not in names:
        raise AnalyticsError(
            f"{time_field!r} is not a column, must be one of: "
            f"{', '.join(n for n in names if n not in (src.geometry, 'bbox'))}"
        )
    kf = None if level == "cell" else (key_field or _fc._KEY_FIELD[level])
    if kf is not None and kf not in names:
        raise AnalyticsError(f"{kf!r} is not a column (the series key of level {level!r})")
    if src.rows == 0:
        raise AnalyticsError("there are no cases to count (the selection is empty)")
    if level == "cell":
        base, crs = _base_spec(src, time_field)
    else:
        base, crs = _replace(_Spec(src.geometry, None, None, None), time_field=time_field), None
    spec = _SeriesSpec(base, level, kf, freq, tz)
    with dask_client(scheduler) as runner:
        meta = pd.DataFrame({"n": pd.Series(dtype="int64")})
        ext = _compute(_map(_series_extent_task, src, spec, meta, "tianya-series-extent"), runner)
        if ext["nat"].sum():
            raise AnalyticsError(
                f"column {time_field!r} has {int(ext['nat'].sum())} missing values"
            )
        if kf is not None and ext["nak"].sum():
            raise AnalyticsError(f"column {kf!r} has {int(ext['nak'].sum())} missing values")
        ext = ext[ext["n"] > 0]
        step = np.timedelta64(7 if freq == "W" else 1, "D")
        first, last = ext["pmin"].min(), ext["pmax"].max()
        n_periods = int((last - first) / step) + 1
        periods = pd.DatetimeIndex(first + np.arange(n_periods) * step)
        grid = None
        if level == "cell":  # every case is inside the extent the first pass measured
            bounds = np.r_[
                ext["xmin"].min(), ext["ymin"].min(), ext["xmax"].max(), ext["ymax"].max()
            ]
            grid, base = _fishnet(base, bounds, cell_size, crs, "fishnet_cube")
        from dataclasses import replace

        spec = replace(spec, base=base, first=pd.Timestamp(first), n_periods=n_periods)
        parts = _counts(src, spec, runner, "int64" if level == "cell" else "object")
    keys_col = parts.index.get_level_values("key")
    codes, sidx = np.unique(keys_col.to_numpy(), return_inverse=True)
    counts = np.zeros((len(codes), n_periods))
    tidx = parts.index.get_level_values("period").to_numpy(dtype=np.int64)
    counts[sidx, tidx] = parts.to_numpy(dtype=float)
    if level == "cell":
        keys = pd.Index(codes.astype(np.int64), name="cell_id")
        cells = cast(gpd.GeoDataFrame, grid).iloc[keys.to_numpy()].reset_index(drop=True)
    else:
        keys, cells = pd.Index(codes.astype(str), name=kf), None
    return _fc.SeriesPanel(counts, keys, periods, freq, level, _fc._season(freq), cells)


def forecast(
    source,
    time_field: str = "reported_at",
    *,
    level: str = "cell",
    freq: str = "W",
    key_field: str | None = None,
    cell_size: float = 200.0,
    model: str = "pooled",
    horizon: int = 4,
    interval: float = 0.8,
    origin=-1,
    engine: str = "dask",
    scheduler=None,
):
    """Forecast every series of a case history: binning on either engine, then the model.

    :func:`count_series` builds the panel (over partitions with ``engine="dask"``);
    :func:`analytics.forecast.forecast` forecasts it in the calling process.  The panel is equal
    on both engines and the models are deterministic (the gradient-boosted model with one
    thread and a fixed seed), so the forecasts are bit-identical.

    Parameters
    ----------
    source : str or GeoDataFrame
    time_field, level, freq, key_field, cell_size
        As in :func:`count_series`.
    model, horizon, origin
        As in :func:`analytics.forecast.forecast`.
    interval : float, default 0.8
        Nominal coverage of the prediction intervals (``level`` of
        :func:`analytics.forecast.forecast`).
    engine : {"single", "dask"}
    scheduler : None, str or distributed.Client

    Returns
    -------
    tuple of (SeriesPanel, Forecast)
    """
    from analytics import forecast as _fc

    _fc._check_args(model, horizon, interval)
    panel = count_series(
        source,
        time_field,
        level=level,
        freq=freq,
        key_field=key_field,
        cell_size=cell_size,
        engine=engine,
        scheduler=scheduler,
    )
    fc = _fc.forecast(panel, model=model, horizon=horizon, level=interval, origin=origin)
    return panel, fc
