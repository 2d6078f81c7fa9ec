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
)
from geodata.history import write_history
from layers.catalogue import get_layer

pytestmark = [pytest.mark.both_stores,
              pytest.mark.filterwarnings("ignore:input CRS:UserWarning")]


@pytest.fixture(scope="module")
def client():
    with D.dask_client(None, n_workers=2, memory_limit="2GiB") as c:
        yield c


@pytest.fixture(scope="module")
def sample_export(sample_gpkg, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("parquet") / "incidents")
    export_layer(sample_gpkg, "incidents", path, rows_per_file=200, row_group_size=64,
                 progress=False)
    return path


@pytest.fixture(scope="module")
def communities(sample_data):
    return sample_data["communities"]


@pytest.fixture(scope="module")
def history_1m(sample_data, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("history") / "h1m")
    base = shapely.get_coordinates(sample_data["incidents"].geometry.values)
    write_history(path, 1_000_000, base=base, months=24, rows_per_file=250_000)
    return path


def frames_equal(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)
    assert a.crs == b.crs


# --- export -----------------------------------------------------------------------------------


def test_export_round_trip(gpkg_store, tmp_path):
    layer = get_layer("incidents")
    res = export_layer(gpkg_store, layer, str(tmp_path / "inc"), rows_per_file=500,
                       progress=False)
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
        assert col["covering"]["bbox"] == {k: ["bbox", k] for k in
                                          ("xmin", "ymin", "xmax", "ymax")}
        assert schema.field("bbox").type.num_fields == 4
        table = pq.read_table(f)  # plain pyarrow reads it
        t = table.column(layer.temporal).to_pandas()
        assert t.dt.strftime("%Y-%m").nunique() == 1  # one month per folder
        box = table.column("bbox").combine_chunks()
        xy = shapely.get_coordinates(shapely.from_wkb(table.column("geometry").to_numpy(
            zero_copy_only=False)))
        assert np.array_equal(box.field("xmin").to_numpy(), xy[:, 0])
        assert np.array_equal(box.field("ymax").to_numpy(), xy[:, 1])
    back = gpd.read_parquet(res.path)
    key = layer.key
    frames_equal(back.sort_values(key).reset_index(drop=True),
                 src.sort_values(key).reset_index(drop=True))
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


@pytest.mark.parametrize("aggregation,kw", [
    ("fishnet", {"cell_size": 250}),
    ("hexagon", {"cell_size": 250}),
    ("fishnet", {"cell_size": 300, "keep_empty": True}),
])
def test_aggregate_sample(sample_export, client, aggregation, kw):
    single = D.aggregate_points(sample_export, aggregation, engine="single", **kw)
    dask = D.aggregate_points(sample_export, aggregation, engine="dask", scheduler=client, **kw)
    frames_equal(single, dask)
    assert dask["count"].sum() == 5600 if "keep_empty" not in kw else True


def test_aggregate_polygons_sample(sample_export, client, communities):
    for agg, kw in (("communities", {}), ("hexagon", {"cell_size": 400})):
        single = D.aggregate_points(sample_export, agg, polygons=communities, engine="single",
                                    **kw)
        dask = D.aggregate_points(sample_export, agg, polygons=communities, engine="dask",
                                  scheduler=client, **kw)
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
    dask = D.emerging_hot_spots(sample_export, "reported_at", engine="dask", scheduler=client,
                                **kw)
    assert_ehsa_equal(single, dask)
    assert (dask.locations["category"] != "No Pattern Detected").any()


def test_emerging_matches_the_store_frame(sample_data, sample_export, client):
    """The single-process function on the in-memory sample gives the Dask result too."""
    single = D.emerging_hot_spots(sample_data["incidents"], "reported_at", cell_size=500,
                                  engine="single")
    dask = D.emerging_hot_spots(sample_export, "reported_at", cell_size=500, engine="dask",
                                scheduler=client)
    assert_ehsa_equal(single, dask)


def test_optimized_sample(sample_export, client, communities):
    for agg, kw in (("communities", {"polygons": communities}),
                    ("fishnet", {"cell_size": 400, "bounding_polygons": communities})):
        single = D.optimized_hot_spots(sample_export, agg, engine="single", **kw)
        dask = D.optimized_hot_spots(sample_export, agg, engine="dask", scheduler=client, **kw)
        frames_equal(single.cells, dask.cells)
        assert (single.distance_band, single.scale_method) == (dask.distance_band,
                                                               dask.scale_method)
        pd.testing.assert_frame_equal(single.isa, dask.isa, check_exact=True)
        assert dask.n_outliers is None
        assert (dask.cells["gi_bin"] != 0).any()


def test_dask_engine_limits(sample_export, sample_data, client):
    with pytest.raises(AnalyticsError, match="GeoParquet export"):
        D.aggregate_points(sample_data["incidents"], cell_size=250, engine="dask")
    with pytest.raises(AnalyticsError, match="bounding_polygons"):
        D.optimized_hot_spots(sample_export, "fishnet", cell_size=250, engine="dask",
                              scheduler=client)
    with pytest.raises(AnalyticsError, match="not a column"):
        D.space_time_cube(sample_export, "nope", cell_size=250, engine="dask",
                          scheduler=client)
    with pytest.raises(AnalyticsError, match="engine"):
        D.aggregate_points(sample_export, cell_size=250, engine="spark")


def test_local_schedulers(sample_export):
    """Without a cluster (Dask's synchronous scheduler) the result is the same."""
    single = D.aggregate_points(sample_export, "hexagon", cell_size=300, engine="single")
    dask = D.aggregate_points(sample_export, "hexagon", cell_size=300, engine="dask",
                              scheduler="synchronous")
    frames_equal(single, dask)


def test_one_million_cases(history_1m, client):
    """A 1M-case, 2-year history: same cube, Gi* z-scores and categories on both engines."""
    kw = dict(cell_size=250, time_step="30D", shape="fishnet")
    single = D.emerging_hot_spots(history_1m, "reported_at", engine="single", **kw)
    dask = D.emerging_hot_spots(history_1m, "reported_at", engine="dask", scheduler=client,
                                **kw)
    assert int(dask.cube.counts.sum()) == 1_000_000
    assert_ehsa_equal(single, dask)
    cats = dask.locations["category"].value_counts()
    assert cats.get("Persistent Hot Spot", 0) > 0
    hs = D.aggregate_points(history_1m, "hexagon", cell_size=300, engine="single")
    hd = D.aggregate_points(history_1m, "hexagon", cell_size=300, engine="dask",
                            scheduler=client)
    frames_equal(hs, hd)
