"""``tianya forecast`` on the store (both stores) and on a GeoParquet history (Dask engine)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from analytics.forecast import count_series, forecast
from analytics.parquet import export_layer
from layers.catalogue import LAYERS
from layers.query import Query
from tianya import cli

pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:input CRS:UserWarning")]


def invoke(*argv):
    return CliRunner().invoke(cli.main, ["forecast", *argv], catch_exceptions=False)


def expected(gpkg_store, level, model, horizon, **kw):
    layer = LAYERS["incidents"]
    props = [layer.key, "reported_at", "community_code", "grid_code", "major_class"]
    q = Query(properties=props, limit=0)
    frame = gpkg_store.read_frame(layer, q)
    if "major_class" in kw:
        frame = frame[frame["major_class"] == kw.pop("major_class")]
    panel = count_series(frame, level=level, **kw)
    return forecast(panel, model=model, horizon=horizon).frame


def assert_same(csv_frame, lib):
    lib = lib.assign(
        key=lib["key"].astype(str),
        origin=lib["origin"].dt.strftime("%Y-%m-%d"),
        period=lib["period"].dt.strftime("%Y-%m-%d"),
    ).reset_index(drop=True)
    got = csv_frame.assign(key=csv_frame["key"].astype(str)).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[lib.columns], lib, check_exact=False, rtol=1e-12)


def test_csv_from_the_store(gpkg_store, store_url, tmp_path):
    data = store_url
    out = tmp_path / "f.csv"
    res = invoke(
        "--data", data, "--level", "community", "--model", "ets", "--horizon", "3",
        "--major-class", "appearance", "-o", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "ets forecast of" in res.output and "wrote" in res.output
    got = pd.read_csv(out, dtype={"key": str})
    assert_same(got, expected(gpkg_store, "community", "ets", 3, major_class="appearance"))


def test_csv_with_the_pooled_model(gpkg_store, store_url, tmp_path):
    out = tmp_path / "p.csv"
    res = invoke(
        "--data", store_url, "--level", "category", "--model", "pooled", "--horizon", "2",
        "-o", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "pooled forecast of" in res.output
    got = pd.read_csv(out, dtype={"key": str})
    assert_same(got, expected(gpkg_store, "category", "pooled", 2))


def test_geojson_grid_cells(gpkg_store, store_url, tmp_path):
    # level grid: the grid cells of grid_cells (网格), every one with its polygon
    out = tmp_path / "g.geojson"
    res = invoke("--data", store_url, "--level", "grid", "--model", "pooled", "-o", str(out))
    assert res.exit_code == 0, res.output
    fc = json.loads(out.read_text())
    lib = expected(gpkg_store, "grid", "pooled", 1)
    assert len(fc["features"]) == len(lib) > 100
    assert {f["geometry"]["type"] for f in fc["features"]} == {"Polygon"}
    assert all(f["properties"]["name"] for f in fc["features"])
    got = {f["properties"]["key"]: f["properties"]["mean"] for f in fc["features"]}
    np.testing.assert_allclose([got[k] for k in lib["key"]], lib["mean"], rtol=1e-12)


def test_geojson_cells(gpkg_store, store_url, tmp_path):
    data = store_url
    out = tmp_path / "f.geojson"
    res = invoke("--data", data, "--level", "cell", "--cell-size", "500", "-o", str(out))
    assert res.exit_code == 0, res.output
    fc = json.loads(out.read_text())
    lib = expected(gpkg_store, "cell", "pooled", 1, cell_size=500.0)  # the default model
    assert len(fc["features"]) == len(lib)
    assert {f["geometry"]["type"] for f in fc["features"]} == {"Polygon"}
    got = {f["properties"]["key"]: f["properties"]["mean"] for f in fc["features"]}
    np.testing.assert_allclose([got[k] for k in lib["key"]], lib["mean"], rtol=1e-12)
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 100 < lon < 120 and 10 < lat < 30  # CRS84


def test_history_on_dask_equals_the_store(sample_gpkg, tmp_path):
    """The store's incidents exported to GeoParquet, forecast on Dask: the same numbers (run
    once: the export is read from the GeoPackage; a skipped PostGIS run fails under CI)."""
    hist = str(tmp_path / "hist")
    export_layer(sample_gpkg, "incidents", hist, rows_per_file=1000, progress=False)
    out_d, out_s = tmp_path / "d.csv", tmp_path / "s.csv"
    args = ("--level", "community", "--model", "gbm", "--horizon", "2")
    res = invoke("--history", hist, "--engine", "dask", "--workers", "2", *args, "-o", str(out_d))
    assert res.exit_code == 0, res.output
    res = invoke("--data", sample_gpkg, *args, "-o", str(out_s))
    assert res.exit_code == 0, res.output
    d = pd.read_csv(out_d, dtype={"key": str})
    s = pd.read_csv(out_s, dtype={"key": str})
    pd.testing.assert_frame_equal(d, s, check_exact=True)


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--engine", "dask"], "read a GeoParquet --history"),
        (["--history", "/nonexistent"], "does not exist"),
        (["--horizon", "5"], "5 is not in the range 1<=x<=4"),
        (["--level", "street"], "'street' is not one of"),
        (["-o", "out.txt"], "--output must end in .csv"),
        (["--origin", "2026-11-03"], "is not a period start"),
    ],
)
def test_refusals(sample_gpkg, argv, words):
    res = CliRunner().invoke(cli.main, ["forecast", "--data", sample_gpkg, *argv])
    assert res.exit_code != 0
    assert words in res.output, res.output


def test_warnings_column(gpkg_store, store_url, tmp_path):
    """The warning column marks the library's early warnings; --no-warnings leaves it out."""
    from analytics.early_warning import early_warnings

    out = tmp_path / "w.csv"
    args = ("--data", store_url, "--model", "ets", "--horizon", "2", "-o", str(out))
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, dtype={"key": str})
    layer = LAYERS["incidents"]
    frame = gpkg_store.read_frame(
        layer, Query(properties=[layer.key, "reported_at", "community_code"], limit=0)
    )
    panel = count_series(frame, level="community")
    ew = early_warnings(panel, forecast(panel, model="ets", horizon=2), horizon=2).frame
    marked = got[got["warning"].notna()]
    assert set(zip(marked["key"], marked["horizon"], marked["warning"], strict=True)) == set(
        zip(ew["key"], ew["horizon"], ew["kind"], strict=True)
    )
    assert len(marked) > 0 and f"{len(ew):,} warnings" in res.output
    res = invoke(*args, "--no-warnings")
    assert res.exit_code == 0 and "warning" not in pd.read_csv(out).columns
