"""Partitioned GeoParquet exports of catalogue layers, and reading them back lazily.

A layer is exported from either store (GeoPackage or PostGIS, through
:func:`layers.stores.open_store`) to a directory of GeoParquet 1.1 files:

- **time partitions**: one folder per month of the layer's temporal field
  (``2024-03/``; rows without a time go to ``no-time/``; layers without a temporal field
  have one folder ``all/``).  The store is read one month at a time, so an export never holds
  more than a month of the layer in memory;
- **spatial partitions**: within a month, rows are ordered along a Hilbert curve over the
  layer's whole extent (:meth:`geopandas.GeoSeries.hilbert_distance`, the same extent for every
  month) and cut into files of at most ``rows_per_file`` rows and row groups of
  ``row_group_size`` rows, so nearby cases share files and row groups;
- every file has the GeoParquet 1.1 ``geo`` metadata with a ``bbox`` *covering* column
  (``xmin``/``ymin``/``xmax``/``ymax``): readers skip row groups by their bbox statistics.

Folder names are plain (not hive ``key=value``), so reading the directory gives exactly the
layer's columns.  Files are written as ``.tmp`` and renamed; a ``_tianya.json`` manifest
(ignored by Parquet readers, which skip ``_``-files) records the layer, row counts and extent.

Functions
---------
export_layer
    Store layer -> partitioned GeoParquet directory (tqdm progress bar).
write_partition
    One in-memory frame -> Hilbert-ordered GeoParquet files (used by the export and by the
    synthetic benchmark generator).
parquet_files, read_manifest
    The files of an export, its manifest.
read_lazy
    A lazy ``dask_geopandas.GeoDataFrame`` (columns, row filters, bbox).
dataset, bbox_filter
    The export as a ``pyarrow.dataset.Dataset`` and a bbox filter expression on the covering
    columns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

__all__ = [
    "GEOPARQUET_VERSION",
    "ExportResult",
    "bbox_filter",
    "dataset",
    "export_layer",
    "parquet_files",
    "read_lazy",
    "read_manifest",
    "write_partition",
]

GEOPARQUET_VERSION = "1.1.0"
MANIFEST = "_tianya.json"
NO_TIME = "no-time"
ALL = "all"


@dataclass
class ExportResult:
    """What :func:`export_layer` wrote.

    Attributes
    ----------
    path : str
        The export directory.
    layer : str
    rows : int
    files : list of str
        Paths relative to ``path``.
    partitions : dict of str to int
        Rows per time partition (folder).
    bounds : list of float or None
        Layer extent used for the Hilbert ordering (storage CRS).
    """

    path: str
    layer: str
    rows: int = 0
    files: list[str] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)
    bounds: list[float] | None = None


def write_months(
    path: str,
    months,
    *,
    total_bounds=None,
    rows_per_file: int = 1_000_000,
    progress: bool = False,
    expected: int | None = None,
) -> int:
    """Write ``("YYYY-MM", frame)`` pairs as one folder of :func:`write_partition` files each.

    Parameters
    ----------
    path : str
        Output directory (created).
    months : iterable of (str, GeoDataFrame)
        For example :func:`geodata.history.synthetic_history`.
    total_bounds : sequence of 4 floats, optional
        One Hilbert curve extent for every month (see :func:`write_partition`).
    rows_per_file : int
        Spatial partition size within a month.
    progress : bool
        tqdm bar per month (``expected`` months, if known).

    Returns
    -------
    int
        Rows written.
    """
    from tqdm.auto import tqdm

    os.makedirs(path, exist_ok=True)
    written = 0
    for label, frame in tqdm(
        months, desc="history", unit="month", total=expected, disable=not progress
    ):
        write_partition(
            frame, os.path.join(path, label), total_bounds=total_bounds, rows_per_file=rows_per_file
        )
        written += len(frame)
    return written


def write_partition(
    frame: gpd.GeoDataFrame,
    directory: str,
    *,
    total_bounds=None,
    rows_per_file: int = 1_000_000,
    row_group_size: int = 65_536,
    hilbert_level: int = 16,
    start: int = 0,
) -> list[str]:
    """Write one frame as Hilbert-ordered GeoParquet 1.1 files with a bbox covering column.

    Parameters
    ----------
    frame : GeoDataFrame
    directory : str
        Folder for the files (created); files are ``part-00000.parquet`` ... from ``start``.
    total_bounds : sequence of 4 floats, optional
        Extent of the Hilbert curve; use the whole layer's so every partition shares one curve.
        Default: the frame's own bounds.
    rows_per_file, row_group_size : int
        Spatial partition sizes.
    hilbert_level : int
        Curve resolution (``2**level`` cells per side).
    start : int
        Number of the first file.

    Returns
    -------
    list of str
        The files written.
    """
    os.makedirs(directory, exist_ok=True)
    if len(frame) == 0:
        return []
    geom = frame.geometry
    if geom.isna().any() or geom.is_empty.any():
        order = np.arange(len(frame))  # the Hilbert distance needs non-empty geometries
    else:
        tb = None if total_bounds is None else np.asarray(total_bounds, dtype=float)
        order = np.argsort(
            geom.hilbert_distance(total_bounds=tb, level=hilbert_level).to_numpy(), kind="stable"
        )
    frame = frame.iloc[order]
    paths = []
    for k, lo in enumerate(range(0, len(frame), rows_per_file), start=start):
        path = os.path.join(directory, f"part-{k:05d}.parquet")
        tmp = path + ".tmp"
        frame.iloc[lo : lo + rows_per_file].to_parquet(
            tmp,
            index=False,
            write_covering_bbox=True,
            schema_version=GEOPARQUET_VERSION,
            row_group_size=row_group_size,
            compression="zstd",
        )
        os.replace(tmp, path)
        paths.append(path)
    return paths


def _months(tmin: pd.Timestamp, tmax: pd.Timestamp) -> list[pd.Timestamp]:
    start = tmin.tz_convert("UTC").tz_localize(None).to_period("M").to_timestamp()
    end = tmax.tz_convert("UTC").tz_localize(None).to_period("M").to_timestamp()
    return [m.tz_localize("UTC") for m in pd.date_range(start, end, freq="MS")]


def export_layer(
    store,
    layer,
    path: str,
    *,
    rows_per_file: int = 1_000_000,
    row_group_size: int = 65_536,
    hilbert_level: int = 16,
    progress: bool = True,
    overwrite: bool = False,
) -> ExportResult:
    """Export a layer from a store to a partitioned GeoParquet 1.1 directory.

    Parameters
    ----------
    store : Store or str
        A store, or a GeoPackage path / ``postgresql://`` URL for :func:`layers.stores.open_store`.
    layer : Layer or str
        Catalogue layer or its id.
    path : str
        Output directory (must not exist unless ``overwrite``).
    rows_per_file, row_group_size, hilbert_level
        See :func:`write_partition`.
    progress : bool
        Show a tqdm bar (one step per time partition).
    overwrite : bool
        Replace an existing export at ``path``.

    Returns
    -------
    ExportResult
    """
    import shutil

    from tqdm.auto import tqdm

    from layers.catalogue import get_layer
    from layers.query import Query
    from layers.stores import open_store

    if isinstance(store, str):
        store = open_store(store)
    if isinstance(layer, str):
        layer = get_layer(layer)
    if os.path.exists(path):
        if not overwrite:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        shutil.rmtree(path)
    os.makedirs(path)
    bbox, temporal = store.extent(layer)
    result = ExportResult(path=os.path.abspath(path), layer=layer.id, bounds=bbox)
    t = layer.temporal
    if t and temporal and temporal[0] is not None:
        lo, hi = (pd.Timestamp(v) for v in temporal)
        lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo
        hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi
        months = _months(lo, hi)
        steps: list[tuple[str, pd.Timestamp | None, pd.Timestamp | None]] = [
            (m.strftime("%Y-%m"), m, m + pd.offsets.MonthBegin(1)) for m in months
        ]
        steps.append((NO_TIME, None, None))
    else:
        steps = [(ALL, None, None)]
    bar = tqdm(steps, desc=f"export {layer.id}", unit="month", disable=not progress)
    for name, start, end in bar:
        if name == ALL:
            frame = store.read_frame(layer, Query(limit=0))
        elif name == NO_TIME:
            from pygeofilter import ast

            frame = store.read_frame(
                layer, Query(limit=0, where=ast.IsNull(ast.Attribute(t), False))
            )
        else:  # a month: both ends are timestamps
            start, end = cast(pd.Timestamp, start), cast(pd.Timestamp, end)
            frame = store.read_frame(
                layer, Query(limit=0, interval=(start.to_pydatetime(), end.to_pydatetime()))
            )
            frame = frame[frame[t] < end]  # the interval is closed: `end` opens next month
        if len(frame):
            files = write_partition(
                frame,
                os.path.join(path, name),
                total_bounds=bbox,
                rows_per_file=rows_per_file,
                row_group_size=row_group_size,
                hilbert_level=hilbert_level,
            )
            result.files += [os.path.relpath(f, path) for f in files]
            result.partitions[name] = len(frame)
            result.rows += len(frame)
        bar.set_postfix(rows=f"{result.rows:,}")
    _write_manifest(
        path,
        {
            "layer": layer.id,
            "temporal": t,
            "rows": result.rows,
            "partitions": result.partitions,
            "files": result.files,
            "bounds": bbox,
            "geoparquet": GEOPARQUET_VERSION,
        },
    )
    return result


def _write_manifest(path: str, info: dict) -> None:
    with open(os.path.join(path, MANIFEST), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1, default=str)


def read_manifest(path: str) -> dict | None:
    """The export's ``_tianya.json`` manifest, or ``None``."""
    p = os.path.join(path, MANIFEST)
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as fh:
        return json.load(fh)


def parquet_files(path: str) -> list[str]:
    """Parquet files of an export (or ``[path]`` for a single file), in a stable order."""
    if os.path.isfile(path):
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        out += [
            os.path.join(root, f)
            for f in sorted(files)
            if f.endswith(".parquet") and not f.startswith(("_", "."))
        ]
    return sorted(out)


def dataset(path: str) -> pads.Dataset:
    """The export as a ``pyarrow.dataset.Dataset`` (no hive partition columns)."""
    return pads.dataset(parquet_files(path), format="parquet")


def bbox_filter(bbox, column: str = "bbox") -> pads.Expression:
    """Rows whose covering bbox intersects ``bbox = (minx, miny, maxx, maxy)``.

    Use with :func:`dataset` (``ds.to_table(filter=...)``): row groups are skipped by the
    covering column's statistics.
    """
    minx, miny, maxx, maxy = map(float, bbox)
    f = pads.field
    return (
        (f(column, "xmin") <= maxx)
        & (f(column, "xmax") >= minx)
        & (f(column, "ymin") <= maxy)
        & (f(column, "ymax") >= miny)
    )


def read_lazy(path: str, columns=None, filters=None, **kwargs):
    """Read an export lazily as a ``dask_geopandas.GeoDataFrame`` (one partition per file).

    Parameters
    ----------
    path : str
        Export directory or file.
    columns : list of str, optional
        Columns to read (the geometry is always read).
    filters : list of tuples, optional
        Row filters in pyarrow DNF form, e.g. ``[("reported_at", ">=", ts)]``; pushed down to
        row-group statistics.
    **kwargs
        Passed to :func:`dask_geopandas.read_parquet`.
    """
    import dask_geopandas

    return dask_geopandas.read_parquet(
        parquet_files(path), columns=columns, filters=filters, **kwargs
    )


def file_metadata(path: str) -> dict:
    """The ``geo`` metadata of one GeoParquet file (decoded JSON)."""
    md = pq.read_schema(path).metadata or {}
    return json.loads(md[b"geo"])
