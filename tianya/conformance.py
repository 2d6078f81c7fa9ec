"""The conformance classes this server declares at ``/conformance``: the one list.

pygeoapi 0.24 builds its list from the providers configured, so it declared classes we
did not meet and left out ones we do (Features Part 3 filtering, CQL2 JSON, ...). The
server answers exactly :data:`DECLARED` instead (``tianya.compat``). Each class is tested
requirement by requirement against a live server on both stores in a module
``tests/test_conformance_*.py`` whose ``CONFORMANCE`` names the class and its requirements;
``tests/test_conformance_declared.py`` fails for a declared class without them.
"""

from __future__ import annotations

_FEATURES = "http://www.opengis.net/spec/ogcapi-features-{part}/1.0/conf/{name}"
_COMMON = "http://www.opengis.net/spec/ogcapi-common-{part}/1.0/conf/{name}"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/{name}"
_PROCESSES = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/{name}"
_COVERAGES = "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/{name}"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"

#: Every conformance class ``/conformance`` declares, one per line, grouped by standard.
DECLARED: tuple[str, ...] = (
    # OGC API - Common Part 1 and 2
    _COMMON.format(part=1, name="core"),
    _COMMON.format(part=1, name="landing-page"),
    _COMMON.format(part=1, name="json"),
    _COMMON.format(part=1, name="html"),
    _COMMON.format(part=1, name="oas30"),
    _COMMON.format(part=2, name="collections"),
    # OGC API - Features Part 1 (core, GeoJSON, HTML, OpenAPI 3.0)
    _FEATURES.format(part=1, name="core"),
    _FEATURES.format(part=1, name="geojson"),
    _FEATURES.format(part=1, name="html"),
    _FEATURES.format(part=1, name="oas30"),
    # Features Part 2 (CRS by reference)
    _FEATURES.format(part=2, name="crs"),
    # Features Part 3 (filtering) and CQL2
    _FEATURES.format(part=3, name="queryables"),
    _FEATURES.format(part=3, name="queryables-query-parameters"),
    _FEATURES.format(part=3, name="filter"),
    _FEATURES.format(part=3, name="features-filter"),
    _CQL2.format(name="basic-cql2"),
    _CQL2.format(name="cql2-text"),
    _CQL2.format(name="cql2-json"),
    _CQL2.format(name="advanced-comparison-operators"),
    _CQL2.format(name="case-insensitive-comparison"),
    _CQL2.format(name="accent-insensitive-comparison"),
    _CQL2.format(name="basic-spatial-functions"),
    _CQL2.format(name="basic-spatial-functions-plus"),
    _CQL2.format(name="spatial-functions"),
    _CQL2.format(name="temporal-functions"),
    # Features Part 4 (create, replace, delete)
    _FEATURES.format(part=4, name="create-replace-delete"),
    # OGC API - Processes Part 1
    _PROCESSES.format(name="core"),
    _PROCESSES.format(name="json"),
    _PROCESSES.format(name="oas30"),
    _PROCESSES.format(name="ogc-process-description"),
    _PROCESSES.format(name="callback"),
    _PROCESSES.format(name="dismiss"),
    # OGC API - Coverages Part 1
    _COVERAGES.format(name="core"),
    _COVERAGES.format(name="coverage-subset"),
    _COVERAGES.format(name="coverage-bbox"),
    _COVERAGES.format(name="coverage-rangesubset"),
    _COVERAGES.format(name="geodata-coverage"),
    _COVERAGES.format(name="oas30"),
    # OGC API - Tiles 1.0 (the base map's /tiles and the point layers' vector tiles)
    _TILES.format(name="core"),
    _TILES.format(name="tileset"),
    _TILES.format(name="tilesets-list"),
    _TILES.format(name="dataset-tilesets"),
    _TILES.format(name="geodata-tilesets"),
    _TILES.format(name="mvt"),
    _TILES.format(name="oas30"),
)
