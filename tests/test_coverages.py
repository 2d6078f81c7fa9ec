"""OGC API - Coverages on the live server: subset and bbox windows checked with rasterio."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile

from geodata.rasters import SCENARIOS, default_dir, raster_files

BBOXES = [
    (109.45, 18.30, 109.46, 18.31),  # on pixel edges
    (109.48213, 18.28777, 109.48662, 18.29301),  # off the grid (no edge on a pixel centre)
]


@pytest.fixture(scope="module")
def files(sample_gpkg):
    return raster_files(default_dir(sample_gpkg))


def _centres_inside(transform, shape, box):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    w, s, e, n = box
    return (x >= w) & (x <= e) & (y >= s) & (y <= n)


def _check_window(content: bytes, path: str, box) -> int:
    """The answer holds exactly the file's pixels whose centres are inside ``box``."""
    with MemoryFile(content) as mem, mem.open() as got, rasterio.open(path) as src:
        t = got.transform
        assert (t.a, t.e) == pytest.approx((src.transform.a, src.transform.e))
        col_off = (t.c - src.transform.c) / src.transform.a
        row_off = (t.f - src.transform.f) / src.transform.e
        assert col_off == pytest.approx(round(col_off), abs=1e-6)  # on the file's grid
        assert row_off == pytest.approx(round(row_off), abs=1e-6)
        window = rasterio.windows.Window(round(col_off), round(row_off), got.width, got.height)
        expected = src.read(1, window=window)
        full_t = src.transform
        inside_file = _centres_inside(full_t, src.shape, box)
        valid = got.read_masks(1) > 0
        values = got.read(1)
    # every pixel of the file with its centre in the box is in the answer, and no other
    assert valid.sum() == inside_file.sum() > 0
    assert np.array_equal(valid, _centres_inside(t, values.shape, box))
    np.testing.assert_array_equal(values[valid], expected[valid])
    return int(valid.sum())


def test_coverage_collections_listed(live_server):
    cols = {c["id"]: c for c in live_server.get("/collections?f=json").json()["collections"]}
    for cid in ["dem"] + [s.collection for s in SCENARIOS.values()]:
        assert cid in cols
        assert "synthetic" in cols[cid]["description"].lower()
        assert any("coverage" in link["href"] for link in cols[cid]["links"])
    schema = live_server.get("/collections/dem/schema?f=json").json()
    assert schema["properties"]["1"]["title"] == "elevation"
    assert schema["properties"]["1"]["x-ogc-unit"] == "m"


@pytest.mark.parametrize("box", BBOXES)
def test_bbox_window_matches_file(live_server, files, box):
    r = live_server.get(
        "/collections/dem/coverage", params={"bbox": ",".join(map(str, box)), "f": "GTiff"}
    )
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("image/tiff")
    _check_window(r.content, files["dem"], box)


@pytest.mark.parametrize("box", BBOXES)
def test_subset_window_matches_file(live_server, files, box):
    w, s, e, n = box
    r = live_server.get(
        "/collections/flood_surge_3m/coverage",
        params={"subset": f"Lat({s}:{n}),Long({w}:{e})", "f": "GTiff"},
    )
    assert r.status_code == 200, r.text[:300]
    _check_window(r.content, files["surge_3m"], box)


def test_one_axis_subset_is_applied(live_server, files):
    r = live_server.get(
        "/collections/dem/coverage", params={"subset": "Lat(18.3:18.301)", "f": "GTiff"}
    )
    assert r.status_code == 200
    with rasterio.open(files["dem"]) as src:
        box = (src.bounds.left, 18.3, src.bounds.right, 18.301)
        width = src.width
    n = _check_window(r.content, files["dem"], box)
    assert n == width * 10


def test_coveragejson_values_match_file(live_server, files):
    box = BBOXES[1]
    r = live_server.get(
        "/collections/flood_rain_400mm/coverage",
        params={"bbox": ",".join(map(str, box)), "f": "json"},
    )
    assert r.status_code == 200, r.text[:300]
    cj = r.json()
    assert cj["type"] == "Coverage"
    ((name, rng),) = cj["ranges"].items()
    assert name == "flood_depth"
    assert cj["parameters"]["flood_depth"]["unit"]["symbol"] == "m"
    h, w = rng["shape"]
    assert cj["domain"]["axes"]["x"]["num"] == w and cj["domain"]["axes"]["y"]["num"] == h
    got = np.array([np.nan if v is None else v for v in rng["values"]], float).reshape(h, w)
    # the same request as GeoTIFF gives the window; the JSON holds the same numbers
    tif = live_server.get(
        "/collections/flood_rain_400mm/coverage",
        params={"bbox": ",".join(map(str, box)), "f": "GTiff"},
    ).content
    with MemoryFile(io.BytesIO(tif).read()) as mem, mem.open() as ds:
        ref = ds.read(1, masked=True).filled(np.nan).astype(float)
    np.testing.assert_allclose(got, ref, equal_nan=True, rtol=1e-6)


def test_whole_grid_as_json_is_refused(live_server):
    r = live_server.get("/collections/dem/coverage?f=json")
    assert r.status_code == 413
    assert "f=GTiff" in r.json()["description"]
    r = live_server.get("/collections/dem/coverage", params={"subset": "Height(1:2)"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "query,words",
    [
        ({"bbox": "109.4,18.3,109.5"}, "4 or 6 comma-separated numbers"),
        ({"bbox": "109.5,18.3,109.4,18.4"}, "minimum greater than its maximum"),
        ({"bbox": "1,2,3,4,5,6"}, "4 numbers"),
        ({"bbox": "109.4,18.3,109.5,18.4", "bbox-crs": "EPSG:4326"}, "bbox-crs"),
        ({"bbox-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}, "without bbox"),
        ({"scale-size": "x(10)"}, "scale-size"),
        ({"bbox": "109.4,18.3,109.5,18.4", "subset": "Lat(18.3:18.4)"}, "exclusive"),
    ],
)
def test_bad_coverage_parameters_get_400(live_server, query, words):
    r = live_server.get("/collections/dem/coverage", params={**query, "f": "GTiff"})
    assert r.status_code == 400, r.text[:300]
    assert words in r.json()["description"]


@pytest.mark.parametrize("query", [{"bbox": "0,0,0,0"}, {"subset": "Lat(10:11)"}])
def test_an_area_beside_the_grid_is_no_content(live_server, query):
    """An area holding no cell of the grid is a 204 without content (OGC API Coverages
    /req/coverage-subset/definition C; it was a 400)."""
    r = live_server.get("/collections/dem/coverage", params={**query, "f": "GTiff"})
    assert r.status_code == 204, r.text[:300]
    assert r.content == b""


def test_bbox_crs_is_honoured(live_server, files):
    """A box in EPSG:4326 (lat, lon) or UTM 49N gives the window of the CRS84 box it covers."""
    import pyproj

    w, s, e, n = BBOXES[1]
    lat_lon = live_server.get(
        "/collections/dem/coverage",
        params={
            "bbox": f"{s},{w},{n},{e}",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
            "f": "GTiff",
        },
    )
    assert lat_lon.status_code == 200, lat_lon.text[:300]
    _check_window(lat_lon.content, files["dem"], BBOXES[1])
    fwd = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:32649", always_xy=True)
    x0, y0, x1, y1 = fwd.transform_bounds(w, s, e, n)
    utm = live_server.get(
        "/collections/dem/coverage",
        params={
            "bbox": f"{x0},{y0},{x1},{y1}",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/32649",
            "f": "GTiff",
        },
    )
    assert utm.status_code == 200, utm.text[:300]
    back = pyproj.Transformer.from_crs("EPSG:32649", "OGC:CRS84", always_xy=True)
    covering = back.transform_bounds(x0, y0, x1, y1, densify_pts=64)
    assert covering[0] < w and covering[2] > e  # the UTM box is wider than the CRS84 one
    _check_window(utm.content, files["dem"], covering)


def test_raster_provider_axis_labels_are_the_parents(files):
    """The provider names its axes itself (no private attribute of pygeoapi's): the same
    names as pygeoapi's own for our rasters, the names its query looks subsets up by."""
    from tianya.plugins.raster_provider import TianyaRasterProvider

    p = TianyaRasterProvider(
        {
            "name": "tianya.plugins.raster_provider.TianyaRasterProvider",
            "type": "coverage",
            "data": files["dem"],
            "format": {"name": "GTiff", "mimetype": "application/tiff"},
        }
    )
    assert list(p.axis_labels) == list(p.axes) == ["Long", "Lat"]
    assert p.fields["1"]["title"] == "elevation" and p.fields["1"]["x-ogc-unit"] == "m"
