"""OGC API - Coverages: the classes we declare, requirement by requirement, on a live server.

The Coverages standard is still a draft (OGC 19-087). The class URIs we declare are those
of its 2021 draft, which pygeoapi implements and the OGC CITE suite
``ets-ogcapi-coverages10`` tests (``core``, ``geodata-coverage``): their requirements are
taken from that draft's texts (``standard/requirements/{core,geodata-coverage,
coverage-subset,coverage-bbox}`` of opengeospatial/ogcapi-coverages). The current editor's
draft renamed the classes (``subsetting-spatial``, ...) under ``https://`` URIs; its core
``/req/core/response-headers`` (``Content-Bbox``, ``Content-Crs``, Annex A) is tested here
as well, since clients read those headers.

Not declared (see tianya/conformance.py): ``coverage-datetime`` (our DEM and flood grids have
no time axis), ``html`` (/req/html/domainset-success, rangetype-success: the domain set
and range type have no HTML representation, they are members of the JSON collection
document). ``oas30`` is tested with the OpenAPI document.

Values are checked against the GeoTIFF read directly with rasterio (``TIANYA_RASTERS``).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds

#: Conformance classes tested here -> every requirement of each (2021 draft of OGC API -
#: Coverages - Part 1, opengeospatial/ogcapi-coverages standard/requirements/; the core
#: response headers from the current draft's Annex A), one test or more per requirement.
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core": (
        "/req/core/conformance",
        "/req/core/api-common",
        "/req/core/response-headers",
    ),
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/geodata-coverage": (
        "/req/geodata-coverage/conformance",
        "/req/geodata-coverage/dependency-collections",
        "/req/coverage/collection-definition",
        "/req/coverage/collections/extent-restrictions",
        "/req/coverage/collection-links",
        "/req/geodata-coverage/coverage-op",
        "/req/geodata-coverage/coverage-success",
        "/req/geodata-coverage/coverage-failure",
        "/req/geodata-coverage/domainset-op",
        "/req/geodata-coverage/domainset-success",
        "/req/geodata-coverage/rangetype-op",
        "/req/geodata-coverage/rangetype-success",
    ),
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-subset": (
        "/req/coverage-subset/definition",
        "/req/coverage-subset/success",
    ),
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-bbox": (
        "/req/coverage-bbox/definition",
        "/req/coverage-bbox/success",
    ),
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/coverage-rangesubset": (
        "/req/coverage-rangesubset/definition",
        "/req/coverage-rangesubset/success",
    ),
}

pytestmark = pytest.mark.both_stores

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
COVERAGE = "http://www.opengis.net/def/rel/ogc/1.0/coverage"
DOMAINSET = "http://www.opengis.net/def/rel/ogc/1.0/coverage-domainset"
RANGETYPE = "http://www.opengis.net/def/rel/ogc/1.0/coverage-rangetype"
_COV = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/"
#: A small box well inside the DEM (about 100 x 100 cells).
BOX = (109.30, 18.30, 109.31, 18.31)


@pytest.fixture(scope="module")
def dem():
    """The DEM as stored (the server's own file), opened with rasterio."""
    with rasterio.open(os.path.join(os.environ["TIANYA_RASTERS"], "dem.tif")) as src:
        yield src


@pytest.fixture
def doc(live_server):
    r = live_server.get("/collections/dem?f=json")
    assert r.status_code == 200
    return r.json()


def _links(doc: dict, rel: str) -> list[dict]:
    return [lk for lk in doc["links"] if lk.get("rel") == rel]


def _path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _bbox_header(r) -> tuple[float, ...]:
    values = tuple(float(v) for v in r.headers["Content-Bbox"].split(","))
    assert len(values) == 4
    return values


def _tiff(content: bytes):
    """(array, bounds, nodata) of a GeoTIFF answer."""
    with MemoryFile(content) as mem, mem.open() as ds:
        return ds.read(1), tuple(ds.bounds), ds.nodata


def _pointer(doc: dict, pointer: str):
    node = doc
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _conforms(live_server) -> set[str]:
    r = live_server.get("/conformance?f=json")
    assert r.status_code == 200
    return set(r.json()["conformsTo"])


def _same_cells(answer: bytes, dem, box) -> None:
    """Every value of a GeoTIFF answer equals the stored cell under it, and every stored cell
    whose centre lies inside ``box`` is in the answer (not no-data)."""
    values, (w, s, e, n), nodata = _tiff(answer)
    rx, ry = dem.res
    window = from_bounds(w, s, e, n, transform=dem.transform).round_offsets().round_lengths()
    stored = dem.read(1, window=window)
    assert stored.shape == values.shape
    kept = values != nodata
    assert np.array_equal(values[kept], stored[kept])
    cols = w + (np.arange(values.shape[1]) + 0.5) * rx
    rows = n - (np.arange(values.shape[0]) + 0.5) * ry
    inside = np.outer((rows >= box[1]) & (rows <= box[3]), (cols >= box[0]) & (cols <= box[2]))
    stored_data = stored != dem.nodata
    assert kept[inside & stored_data].all(), "a cell whose centre is inside the box is missing"
    assert inside.sum() > 0


# --- core -----------------------------------------------------------------------------------


def test_req_core_conformance(live_server):
    declared = _conforms(live_server)
    assert "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core" in declared
    assert "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections" in declared
    assert _COV + "core" in declared


def test_req_core_api_common(live_server):
    """Common core (landing page, conformance) and collections: the coverage is a collection."""
    root = live_server.get("/?f=json")
    assert root.status_code == 200
    rels = {lk["rel"] for lk in root.json()["links"]}
    assert {"conformance", "data", "service-desc"} <= rels
    listed = live_server.get("/collections?f=json").json()["collections"]
    dem = next(c for c in listed if c["id"] == "dem")
    assert _links(dem, COVERAGE)


def test_req_core_response_headers(live_server, dem):
    """Content-Bbox is the extent of the cells answered (the GeoTIFF's own bounds), in the
    answer's CRS, CRS84, which Content-Crs names; the same for CoverageJSON."""
    q = f"subset=Long({BOX[0]}:{BOX[2]}),Lat({BOX[1]}:{BOX[3]})"
    tif = live_server.get(f"/collections/dem/coverage?{q}&f=GTiff")
    assert tif.status_code == 200
    bounds = _tiff(tif.content)[1]
    assert _bbox_header(tif) == pytest.approx(bounds, abs=1e-9)
    assert tif.headers["Content-Crs"] == f"<{CRS84}>"
    js = live_server.get(f"/collections/dem/coverage?{q}&f=json")
    assert js.status_code == 200
    assert _bbox_header(js) == pytest.approx(bounds, abs=1e-9)
    assert js.headers["Content-Crs"] == f"<{CRS84}>"
    # the extent holds the request, to within a cell
    w, s, e, n = bounds
    rx, ry = dem.res
    assert w <= BOX[0] < w + rx and e - rx < BOX[2] <= e
    assert s <= BOX[1] < s + ry and n - ry < BOX[3] <= n


# --- geodata-coverage ----------------------------------------------------------------------


def test_req_geodata_coverage_conformance(live_server):
    """The 2021 draft names Common Part 2's class ``…/conf/geodata``; Common Part 2 has since
    named it ``…/conf/collections``, which we declare."""
    declared = _conforms(live_server)
    assert "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core" in declared
    assert "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections" in declared
    assert _COV + "geodata-coverage" in declared


def test_req_geodata_coverage_dependency_collections(live_server):
    r = live_server.get("/collections?f=json")
    assert r.status_code == 200
    collections = r.json()["collections"]
    assert all(c["id"] and c["links"] for c in collections)
    for c in collections:
        if c["id"] == "dem":
            assert live_server.get("/collections/dem?f=json").status_code == 200


def test_req_coverage_collection_definition(doc, dem):
    assert doc["id"] == "dem" and doc["title"]
    assert isinstance(doc["links"], list) and all("href" in lk for lk in doc["links"])
    assert "spatial" in doc["extent"]
    # the grid as the collection describes it is the stored one
    grid = doc["extent"]["spatial"]["grid"]
    assert [g["cellsCount"] for g in grid] == [dem.width, dem.height]


def test_req_coverage_collections_extent_restrictions(doc, dem):
    spatial = doc["extent"]["spatial"]
    assert spatial.get("crs", CRS84) == CRS84
    (w, s, e, n) = spatial["bbox"][0]
    assert -180 <= w < e <= 180 and -90 <= s < n <= 90
    assert (w, s, e, n) == pytest.approx(tuple(dem.bounds), abs=1e-9)


def test_req_coverage_collection_links(doc):
    coverage = _links(doc, COVERAGE)
    assert coverage and all(urlsplit(lk["href"]).path == "/collections/dem/coverage"
                            for lk in coverage)  # fmt: skip
    for rel in (DOMAINSET, RANGETYPE):
        links = _links(doc, rel)
        assert links, f"no {rel} link"
        assert any(lk.get("type") == "application/json" for lk in links)


def test_req_geodata_coverage_coverage_op(live_server):
    r = live_server.get("/collections/dem/coverage?bbox=109.3,18.3,109.302,18.302&f=json")
    assert r.status_code == 200
    head = live_server.get("/collections/dem/coverage?bbox=109.3,18.3,109.302,18.302&f=GTiff")
    assert head.status_code == 200


def test_req_geodata_coverage_coverage_success(live_server, doc, dem):
    """Every coverage link the collection advertises answers 200 in the media type the link
    names (CoverageJSON and HTML answered 413: the whole grid is over the CoverageJSON limit)."""
    for link in _links(doc, COVERAGE):
        if link["type"].startswith("image/tiff"):  # the whole grid as GeoTIFF: 34 MB
            r = live_server.get(_path(link["href"]), stream=True)
            assert r.status_code == 200, link
            assert r.headers["Content-Type"].startswith("image/tiff")
            r.close()
            continue
        r = live_server.get(_path(link["href"]))
        assert r.status_code == 200, (link, r.text[:300])
        assert r.headers["Content-Type"].split(";")[0] == link["type"].split(";")[0]
        if link["type"] == "application/prs.coverage+json":
            cov = r.json()
            axes = cov["domain"]["axes"]
            # the whole extent (rangeset, domain set and range type), scaled to the link's size
            assert (min(axes["x"]["start"], axes["x"]["stop"]) - dem.bounds.left) < 0.01
            assert axes["x"]["num"] * axes["y"]["num"] <= 1_000_000
            assert set(cov["parameters"]) == set(cov["ranges"]) == {"elevation"}
            values = np.array(cov["ranges"]["elevation"]["values"], dtype=float)
            assert values.size == axes["x"]["num"] * axes["y"]["num"]
            stored = dem.read(1, masked=True)
            finite = values[np.isfinite(values)]
            assert stored.min() - 1e-3 <= finite.min() and finite.max() <= stored.max() + 1e-3
    # values at the native resolution are the stored ones
    tif = live_server.get("/collections/dem/coverage?bbox={},{},{},{}&f=GTiff".format(*BOX))
    _same_cells(tif.content, dem, BOX)


def test_req_geodata_coverage_coverage_failure(live_server):
    assert live_server.get("/collections/no-such-coverage/coverage").status_code == 404


def _resolve(live_server, link: dict):
    href = link["href"]
    path, _, pointer = href.partition("#")
    r = live_server.get(_path(path))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    return _pointer(r.json(), pointer) if pointer else r.json()


def test_req_geodata_coverage_domainset_op(live_server, doc):
    domain = _resolve(live_server, _links(doc, DOMAINSET)[0])
    assert domain["type"] == "DomainSet"
    assert domain["generalGrid"]["axisLabels"] == ["Long", "Lat"]


def test_req_geodata_coverage_domainset_success(live_server, doc, dem):
    domain = _resolve(live_server, _links(doc, DOMAINSET)[0])
    grid = domain["generalGrid"]
    assert grid["srsName"] == CRS84
    x, y = grid["axis"]
    assert (x["lowerBound"], y["lowerBound"], x["upperBound"], y["upperBound"]) == pytest.approx(
        tuple(dem.bounds), abs=1e-9
    )
    assert (x["resolution"], y["resolution"]) == pytest.approx(dem.res)
    limits = grid["gridLimits"]["axis"]
    assert [lim["upperBound"] for lim in limits] == [dem.width - 1, dem.height - 1]


def test_req_geodata_coverage_rangetype_op(live_server, doc):
    rangetype = _resolve(live_server, _links(doc, RANGETYPE)[0])
    assert rangetype["type"] == "DataRecord" and rangetype["field"]


def test_req_geodata_coverage_rangetype_success(live_server, doc, dem):
    fields = _resolve(live_server, _links(doc, RANGETYPE)[0])["field"]
    assert [f["name"] for f in fields] == list(dem.descriptions)
    assert [f["uom"]["code"] for f in fields] == list(dem.units)
    assert all(f["nilValues"][0]["value"] == f"{dem.nodata:g}" for f in fields)


# --- coverage-subset ------------------------------------------------------------------------


def _subset(live_server, text: str, f: str = "GTiff"):
    return live_server.get(f"/collections/dem/coverage?subset={text}&f={f}")


def test_req_coverage_subset_definition(live_server, doc, dem):
    """The axis names are the domain set's ``axisLabels`` (also ``Lon``, the current draft's
    name of the longitude); another name is a 400; ``*`` is the grid's bound; an area wholly
    outside the grid is a 204 (pygeoapi answered 400)."""
    labels = doc["domainSet"]["generalGrid"]["axisLabels"]
    x, y = labels
    ok = _subset(live_server, f"{x}({BOX[0]}:{BOX[2]}),{y}({BOX[1]}:{BOX[3]})")
    assert ok.status_code == 200
    alias = _subset(live_server, f"Lon({BOX[0]}:{BOX[2]}),Lat({BOX[1]}:{BOX[3]})")
    assert alias.status_code == 200 and alias.content == ok.content
    bad = _subset(live_server, f"Foo({BOX[0]}:{BOX[2]}),{y}({BOX[1]}:{BOX[3]})")
    assert bad.status_code == 400
    outside = _subset(live_server, f"{x}(120:121),{y}({BOX[1]}:{BOX[3]})")
    assert outside.status_code == 204 and outside.content == b""
    api = live_server.get("/openapi?f=json", headers={"Accept": "application/json"}).json()
    assert "204" in api["paths"]["/collections/dem/coverage"]["get"]["responses"]
    below = _subset(live_server, f"{x}({BOX[0]}:{BOX[2]}),{y}(10:11)", f="json")
    assert below.status_code == 204 and below.content == b""
    star = _subset(live_server, f"{x}(*:109.181),{y}({BOX[1]}:{BOX[3]})")
    assert star.status_code == 200
    assert _tiff(star.content)[1][0] == pytest.approx(dem.bounds.left)
    # partly outside: the part inside the grid
    part = _subset(live_server, f"{x}(109.0:109.181),{y}({BOX[1]}:{BOX[3]})")
    assert part.status_code == 200 and _bbox_header(part)[0] == pytest.approx(dem.bounds.left)


def test_req_coverage_subset_success(live_server, dem):
    r = _subset(live_server, f"Long({BOX[0]}:{BOX[2]}),Lat({BOX[1]}:{BOX[3]})")
    assert r.status_code == 200
    _same_cells(r.content, dem, BOX)
    # the domain set of the CoverageJSON answer is trimmed to the subset
    js = _subset(live_server, f"Long({BOX[0]}:{BOX[2]}),Lat({BOX[1]}:{BOX[3]})", f="json")
    axes = js.json()["domain"]["axes"]
    for axis, lo, hi in (("x", BOX[0], BOX[2]), ("y", BOX[1], BOX[3])):
        a, b = sorted((axes[axis]["start"], axes[axis]["stop"]))
        assert lo - dem.res[0] <= a and b <= hi + dem.res[0]
    # a slice (one coordinate) is the column of cells holding it
    col = _subset(live_server, f"Long(109.30005),Lat({BOX[1]}:{BOX[3]})")
    assert col.status_code == 200
    values, (w, _, e, _), _ = _tiff(col.content)
    assert values.shape[1] == 1 and w <= 109.30005 <= e


# --- coverage-bbox --------------------------------------------------------------------------


def test_req_coverage_bbox_definition(live_server):
    ok = live_server.get("/collections/dem/coverage?bbox={},{},{},{}&f=json".format(*BOX))
    assert ok.status_code == 200
    for bad in ("109.3,18.3,109.31", "109.3,18.3,a,18.31", "109.3,18.3,109.31,18.31,1,2,3"):
        assert live_server.get(f"/collections/dem/coverage?bbox={bad}").status_code == 400


def test_req_coverage_bbox_success(live_server, dem):
    r = live_server.get("/collections/dem/coverage?bbox={},{},{},{}&f=GTiff".format(*BOX))
    assert r.status_code == 200
    _same_cells(r.content, dem, BOX)
    w, s, e, n = _bbox_header(r)
    rx, ry = dem.res
    # only the part within the box: no more than the cells the box's edges cross
    tol = 1e-9
    assert BOX[0] - w <= rx + tol and e - BOX[2] <= rx + tol
    assert BOX[1] - s <= ry + tol and n - BOX[3] <= ry + tol
    assert w <= BOX[0] and e >= BOX[2] and s <= BOX[1] and n >= BOX[3]


# --- coverage-rangesubset -------------------------------------------------------------------


def _bands(live_server, text: str, f: str = "GTiff", extra: str = ""):
    box = "{},{},{},{}".format(*BOX)
    return live_server.get(f"/collections/dem/coverage?bbox={box}&range-subset={text}&f={f}{extra}")


def test_req_coverage_rangesubset_definition(live_server, doc, dem):
    """Bands by the range type's field names or by index from 0, ``*`` for the others; an
    unknown name or an index out of range is a 400. (Part D, a name that spells an index,
    cannot arise: our bands are named ``elevation`` and ``flood_depth``.)"""
    names = [f["name"] for f in doc["rangeType"]["field"]]
    whole = live_server.get("/collections/dem/coverage?bbox={},{},{},{}&f=GTiff".format(*BOX))
    for text in (names[0], "0", "*", f"*,{names[0]}"):
        r = _bands(live_server, text)
        assert r.status_code == 200, (text, r.text[:200])
        assert r.content == whole.content, text
    for text in ("height", str(len(names)), "-1", "*,*", f"{names[0]},,{names[0]}"):
        r = _bands(live_server, text)
        assert r.status_code == 400, text
        assert "range-subset" in r.json()["description"]


def test_req_coverage_rangesubset_success(live_server, dem):
    """The answer holds the selected bands only, and its range type (CoverageJSON
    parameters) says so; the values are the stored ones."""
    r = _bands(live_server, "elevation", f="json")
    assert r.status_code == 200
    cov = r.json()
    assert set(cov["parameters"]) == set(cov["ranges"]) == {"elevation"}
    tif = _bands(live_server, "0")
    with MemoryFile(tif.content) as mem, mem.open() as ds:
        assert ds.count == 1
    _same_cells(tif.content, dem, BOX)
    both = _bands(live_server, "elevation", extra="&properties=1")
    assert both.status_code == 400
