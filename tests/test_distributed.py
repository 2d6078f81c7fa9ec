"""Partitioned GeoParquet exports and the Dask engine: same results as the single process.

Runs on a 2-worker ``LocalCluster`` (processes).  The export round trip runs on both stores.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from analytics import distributed as D
from analytics.errors import AnalyticsError
from analytics.parquet import (
    bbox_filter,
    dataset,
    export_layer,
    parquet_files,
    read_lazy,
    read_manifest,
    write_months,
)
from geodata.history import history_bounds, synthetic_history
from layers.catalogue import get_layer

pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:input CRS:UserWarning")]


@pytest.fixture(scope="module")
def client():
    with D.dask_client(None, n_workers=2, memory_limit="2GiB") as c:
        yield c


@pytest.fixture(scope="module")
def sample_export(sample_gpkg, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("parquet") / "incidents")
    export_layer(
        sample_gpkg, "incidents", path, rows_per_file=200, row_group_size=64, progress=False
    )
    return path


@pytest.fixture(scope="module")
def communities(sample_data):
    return sample_data["communities"]


@pytest.fixture(scope="module")
def history_1m(sample_data, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("history") / "h1m")
    base = shapely.get_coordinates(sample_data["incidents"].geometry.values)
    write_months(
        path,
        synthetic_history(1_000_000, base=base, months=24),
        total_bounds=history_bounds(base),
        rows_per_file=250_000,
    )
    return path


def frames_equal(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)
    assert a.crs == b.crs


# --- export -----------------------------------------------------------------------------------


def test_export_round_trip(gpkg_store, tmp_path):
    layer = get_layer("incidents")
    res = export_layer(gpkg_store, layer, str(tmp_path / "inc"), rows_per_file=500, progress=False)
    src = gpkg_store.read_frame(layer)
    assert res.rows == len(src) == read_manifest(res.path)["rows"]
    assert len(res.partitions) >= 12  # a year by month
    files = parquet_files(res.path)
    assert len(files) == len(res.files) and all("/20" in f for f in files)
    for f in files:
        schema = pq.read_schema(f)
        geo = json.loads(schema.metadata[b"geo"])
        assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
        col = geo["columns"]["geometry"]
        assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point"]
        assert col["covering"]["bbox"] == {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
        assert schema.field("bbox").type.num_fields == 4
        table = pq.read_table(f)  # plain pyarrow reads it
        t = table.column(layer.temporal).to_pandas()
        assert t.dt.strftime("%Y-%m").nunique() == 1  # one month per folder
        box = table.column("bbox").combine_chunks()
        xy = shapely.get_coordinates(
            shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
        )
        assert np.array_equal(box.field("xmin").to_numpy(), xy[:, 0])
        assert np.array_equal(box.field("ymax").to_numpy(), xy[:, 1])
    back = gpd.read_parquet(res.path)
    key = layer.key
    frames_equal(
        back.sort_values(key).reset_index(drop=True), src.sort_values(key).reset_index(drop=True)
    )
    # lazily, with a bbox pushed down to the covering column's statistics
    lazy = read_lazy(res.path, columns=["category", layer.temporal])
    assert lazy.npartitions == len(files) and len(lazy) == len(src)
    bb = (109.40, 18.25, 109.48, 18.32)
    got = dataset(res.path).to_table(filter=bbox_filter(bb)).num_rows
    assert got == int(src.geometry.intersects(shapely.box(*bb)).sum()) > 0


def test_export_layer_without_time(gpkg_store, tmp_path):
    res = export_layer(gpkg_store, "communities", str(tmp_path / "c"), progress=False)
    assert res.partitions == {"all": 44}
    key = get_layer("communities").key
    back = gpd.read_parquet(res.path).sort_values(key).reset_index(drop=True)
    src = gpkg_store.read_frame(get_layer("communities"))
    frames_equal(back, src.sort_values(key).reset_index(drop=True))
    with pytest.raises(FileExistsError):
        export_layer(gpkg_store, "communities", res.path, progress=False)


# --- the Dask engine equals the single process ------------------------------------------------


@pytest.mark.parametrize(
    "aggregation,kw",
    [
        ("fishnet", {"cell_size": 250}),
        ("hexagon", {"cell_size": 250}),
        ("fishnet", {"cell_size": 300, "keep_empty": True}),
    ],
)
def test_aggregate_sample(sample_export, client, aggregation, kw):
    single = D.aggregate_points(sample_export, aggregation, engine="single", **kw)
    dask = D.aggregate_points(sample_export, aggregation, engine="dask", scheduler=client, **kw)
    frames_equal(single, dask)
    assert dask["count"].sum() == 5600 if "keep_empty" not in kw else True


def test_aggregate_polygons_sample(sample_export, client, communities):
    for agg, kw in (("communities", {}), ("hexagon", {"cell_size": 400})):
        single = D.aggregate_points(sample_export, agg, polygons=communities, engine="single", **kw)
        dask = D.aggregate_points(
            sample_export, agg, polygons=communities, engine="dask", scheduler=client, **kw
        )
        frames_equal(single, dask)


def assert_ehsa_equal(a, b):
    assert np.array_equal(a.cube.counts, b.cube.counts)
    assert a.cube.edges.equals(b.cube.edges)
    np.testing.assert_array_equal(a.gi_z, b.gi_z)  # NaN == NaN here
    assert np.array_equal(a.hot, b.hot) and np.array_equal(a.cold, b.cold)
    frames_equal(a.locations, b.locations)


@pytest.mark.parametrize("shape", ["fishnet", "hexagon"])
def test_emerging_sample(sample_export, client, shape):
    kw = dict(cell_size=500, time_step="7D", shape=shape)
    single = D.emerging_hot_spots(sample_export, "reported_at", engine="single", **kw)
    dask = D.emerging_hot_spots(sample_export, "reported_at", engine="dask", scheduler=client, **kw)
    assert_ehsa_equal(single, dask)
    assert (dask.locations["category"] != "No Pattern Detected").any()


def test_emerging_matches_the_store_frame(sample_data, sample_export, client):
    """The single-process function on the in-memory sample gives the Dask result too."""
    single = D.emerging_hot_spots(
        sample_data["incidents"], "reported_at", cell_size=500, engine="single"
    )
    dask = D.emerging_hot_spots(
        sample_export, "reported_at", cell_size=500, engine="dask", scheduler=client
    )
    assert_ehsa_equal(single, dask)


def test_optimized_sample(sample_export, client, communities):
    for agg, kw in (
        ("communities", {"polygons": communities}),
        ("fishnet", {"cell_size": 400, "bounding_polygons": communities}),
    ):
        single = D.optimized_hot_spots(sample_export, agg, engine="single", **kw)
        dask = D.optimized_hot_spots(sample_export, agg, engine="dask", scheduler=client, **kw)
        frames_equal(single.cells, dask.cells)
        assert (single.distance_band, single.scale_method) == (
            dask.distance_band,
            dask.scale_method,
        )
        pd.testing.assert_frame_equal(single.isa, dask.isa, check_exact=True)
        assert dask.n_outliers is None
        assert (dask.cells["gi_bin"] != 0).any()


def test_dask_engine_limits(sample_export, sample_data, client):
    with pytest.raises(AnalyticsError, match="GeoParquet export"):
        D.aggregate_points(sample_data["incidents"], cell_size=250, engine="dask")
    with pytest.raises(AnalyticsError, match="bounding_polygons"):
        D.optimized_hot_spots(
            sample_export, "fishnet", cell_size=250, engine="dask", scheduler=client
        )
    with pytest.raises(AnalyticsError, match="not a column"):
        D.space_time_cube(sample_export, "nope", cell_size=250, engine="dask", scheduler=client)
    with pytest.raises(AnalyticsError, match="engine"):
        D.aggregate_points(sample_export, cell_size=250, engine="spark")


def test_local_schedulers(sample_export):
    """Without a cluster (Dask's synchronous scheduler) the result is the same."""
    single = D.aggregate_points(sample_export, "hexagon", cell_size=300, engine="single")
    dask = D.aggregate_points(
        sample_export, "hexagon", cell_size=300, engine="dask", scheduler="synchronous"
    )
    frames_equal(single, dask)


def test_one_million_cases(history_1m, client):
    """A 1M-case, 2-year history: same cube, Gi* z-scores and categories on both engines."""
    kw = dict(cell_size=250, time_step="30D", shape="fishnet")
    single = D.emerging_hot_spots(history_1m, "reported_at", engine="single", **kw)
    dask = D.emerging_hot_spots(history_1m, "reported_at", engine="dask", scheduler=client, **kw)
    assert int(dask.cube.counts.sum()) == 1_000_000
    assert_ehsa_equal(single, dask)
    cats = dask.locations["category"].value_counts()
    assert cats.get("Persistent Hot Spot", 0) > 0
    hs = D.aggregate_points(history_1m, "hexagon", cell_size=300, engine="single")
    hd = D.aggregate_points(history_1m, "hexagon", cell_size=300, engine="dask", scheduler=client)
    frames_equal(hs, hd)


# --- steps and cells shared with the single process (D5, D6 on the Dask engine) ---------------

UTM = "EPSG:32649"
X0, Y0 = 500_000.0, 2_000_000.0


def write_export(frame, path, *, statistics=True, rows_per_file=4):
    """``frame`` as a small export: one folder per distinct time, a few files in each."""
    from analytics.parquet import write_partition

    for k, (_, part) in enumerate(frame.groupby("t", sort=True)):
        folder = f"{path}/batch-{k:03d}"
        if statistics:
            write_partition(part, folder, rows_per_file=rows_per_file)
        else:  # no row-group statistics: only the first pass knows the time range
            import os

            os.makedirs(folder)
            part.to_parquet(
                f"{folder}/part-00000.parquet",
                index=False,
                write_covering_bbox=True,
                schema_version="1.1.0",
                write_statistics=False,
            )
    return path


def batches(times, per_batch=7, extent=900.0, seed=5):
    rng = np.random.default_rng(seed)
    n = len(times) * per_batch
    xy = rng.uniform(0, extent, (n, 2)) + [X0, Y0]
    return gpd.GeoDataFrame(
        {"t": np.repeat(times, per_batch)}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=UTM
    )


def assert_cube_equal(a, b):
    assert np.array_equal(a.counts, b.counts)
    assert a.edges.equals(b.edges)
    frames_equal(a.bins, b.bins)


@pytest.mark.parametrize(
    "start,periods,step",
    [
        ("2026-01-05", 12, "7D"),  # 12 weekly batches
        ("2026-03-01", 10, "1D"),  # 10 midnight dailies
    ],
)
def test_exact_multiple_span_steps(tmp_path, client, start, periods, step):
    """D5 on Dask: a span that is a whole number of steps gives one step per batch (the Dask
    engine built ceil(span/step) steps and merged the first two), as the single process."""
    times = pd.date_range(start, periods=periods, freq=step, tz="UTC")
    frame = batches(times)
    path = write_export(frame, str(tmp_path / "exp"))
    kw = dict(cell_size=300, time_step=step, shape="fishnet")
    single = D.space_time_cube(path, "t", engine="single", **kw)
    dask = D.space_time_cube(path, "t", engine="dask", scheduler=client, **kw)
    assert_cube_equal(single, dask)
    assert dask.counts.shape[1] == periods
    per_batch = frame.groupby("t").size().to_numpy()
    assert np.array_equal(dask.counts.sum(axis=0), per_batch)  # step t holds batch t
    hexa = dict(kw, shape="hexagon")
    assert_cube_equal(
        D.space_time_cube(path, "t", engine="single", **hexa),
        D.space_time_cube(path, "t", engine="dask", scheduler=client, **hexa),
    )


@pytest.mark.parametrize("cell_size,ncells", [(250.0, 4), (10.4, 10)])
def test_far_edge_point(tmp_path, client, cell_size, ncells):
    """D6 on Dask: the point on the far corner of a whole number of cells keeps its cell (last
    row and column) on both engines; 104 m / 10.4 m is also where ``//`` (the Dask cube's old
    rounding) gives 9 and the shared ``floor(/)`` 10."""
    from analytics.aggregate import fishnet_shape

    extent = (X0 + ncells * cell_size) - X0
    assert (Y0 + ncells * cell_size) - Y0 == extent
    if cell_size == 10.4:
        assert extent // cell_size == ncells - 1 and np.floor(extent / cell_size) == ncells
    xs = X0 + np.array([0.0, extent, extent / 3, extent, 0.0])
    ys = Y0 + np.array([0.0, extent, extent / 2, 0.0, extent])
    # 14.25 days: 3 weekly steps by either step formula, so only the cells are tested here
    times = pd.to_datetime(
        [
            "2026-01-01 00:00",
            "2026-01-08 00:00",
            "2026-01-08 00:00",
            "2026-01-15 06:00",
            "2026-01-15 06:00",
        ]
    ).tz_localize("UTC")
    frame = gpd.GeoDataFrame({"t": times}, geometry=gpd.points_from_xy(xs, ys), crs=UTM)
    path = write_export(frame, str(tmp_path / "edge"), rows_per_file=1)
    nrow, ncol = fishnet_shape((X0, Y0, X0 + extent, Y0 + extent), cell_size)
    assert (nrow, ncol) == (ncells + 1, ncells + 1)

    kw = dict(cell_size=cell_size, time_step="7D", shape="fishnet")
    single = D.space_time_cube(path, "t", engine="single", **kw)
    dask = D.space_time_cube(path, "t", engine="dask", scheduler=client, **kw)
    assert_cube_equal(single, dask)
    assert int(dask.counts.sum()) == len(frame)
    far = dask.bins[(dask.bins["row"] == nrow - 1) & (dask.bins["col"] == ncol - 1)]
    assert far["total"].tolist() == [1]

    for keep in (False, True):
        a = D.aggregate_points(
            path, "fishnet", cell_size=cell_size, keep_empty=keep, engine="single"
        )
        b = D.aggregate_points(
            path, "fishnet", cell_size=cell_size, keep_empty=keep, engine="dask", scheduler=client
        )
        frames_equal(a, b)
        assert b["count"].sum() == len(frame)
    assert len(b) == nrow * ncol


@pytest.mark.timeout(60)
def test_too_many_steps_refused_before_any_task(tmp_path, monkeypatch):
    """``time_step="1ns"`` on the Dask engine is refused from the Parquet statistics: no
    cluster is started and no task is built (it used to build a list of ~10**15 edges)."""
    times = pd.date_range("2026-01-05", periods=12, freq="7D", tz="UTC")
    path = write_export(batches(times, per_batch=2), str(tmp_path / "exp"))
    assert D._open(path, "t").time_range == (times[0], times[-1])

    def no_task(*a, **k):
        raise AssertionError("a Dask task was built")

    monkeypatch.setattr(D, "_map", no_task)
    monkeypatch.setattr(D, "dask_client", no_task)
    for call in (D.space_time_cube, D.emerging_hot_spots):
        with pytest.raises(AnalyticsError, match=r"time steps, more than the 1,000 allowed"):
            call(path, "t", cell_size=300, time_step="1ns", engine="dask")
    with pytest.raises(AnalyticsError, match=r"more than the 11 allowed; use a time_step"):
        D.space_time_cube(path, "t", cell_size=300, time_step="7D", max_steps=11, engine="dask")
    with pytest.raises(AnalyticsError, match="not a valid time step"):
        D.space_time_cube(path, "t", cell_size=300, time_step="weekly", engine="dask")


@pytest.mark.timeout(60)
def test_too_many_steps_without_statistics(tmp_path, client, monkeypatch):
    """Without statistics the first pass's time range refuses it, before any binning task."""
    times = pd.date_range("2026-01-05", periods=12, freq="7D", tz="UTC")
    path = write_export(batches(times, per_batch=2), str(tmp_path / "nostats"), statistics=False)
    assert D._open(path, "t").time_range is None
    labels = []
    real_map = D._map

    def spy(func, src, spec, meta, label):
        labels.append(label)
        return real_map(func, src, spec, meta, label)

    monkeypatch.setattr(D, "_map", spy)
    with pytest.raises(AnalyticsError, match=r"time steps, more than the 1,000 allowed"):
        D.space_time_cube(
            path, "t", cell_size=300, time_step="1ns", engine="dask", scheduler=client
        )
    assert labels == ["tianya-extent"]
    # and within the budget the cube still equals the single process's
    kw = dict(cell_size=300, time_step="7D")
    assert_cube_equal(
        D.space_time_cube(path, "t", engine="single", **kw),
        D.space_time_cube(path, "t", engine="dask", scheduler=client, **kw),
    )


@pytest.mark.timeout(60)
def test_history_cli_max_steps(tmp_path):
    """``tianya history-hotspots`` refuses a too-fine step (default budget) and honours
    ``--max-steps``, with the message and no traceback."""
    from click.testing import CliRunner

    from tianya.history_cli import history_hotspots

    times = pd.date_range("2026-01-05", periods=12, freq="7D", tz="UTC")
    path = write_export(batches(times, per_batch=2), str(tmp_path / "exp"))
    args = [
        path,
        "--time-field",
        "t",
        "--cell-size",
        "300",
        "--engine",
        "dask",
        "--scheduler",
        "synchronous",
    ]
    res = CliRunner().invoke(history_hotspots, args + ["--time-step", "1ns"])
    assert res.exit_code == 1 and "more than the 1,000 allowed" in res.output
    res = CliRunner().invoke(history_hotspots, args + ["--max-steps", "11"])
    assert res.exit_code == 1 and "gives 12 time steps, more than the 11" in res.output
