"""Every replacement of pygeoapi behaviour, in one place, checked at start-up.

pygeoapi is used as a library: its Flask app serves, our plugins plug in. Where its
behaviour has to change, the change is made here or in a plugin overriding a documented
target (never by editing pygeoapi). :data:`TARGETS` lists everything of pygeoapi 0.24 we
replace, override or lean on, with what we rely on (existence, parameter names, attributes,
which pygeoapi function uses it); :func:`check` verifies every entry against the installed
pygeoapi and refuses to start, naming each mismatch, instead of failing silently (one of
these failing silently would list ``poverty_relief`` to the public again).
:func:`install` applies the module-level replacements when the app is created.

The replacements:

``pygeoapi.api.filter_dict_by_key_value``
    ``/collections`` lists only what the caller's role may read.
``pygeoapi.api.landing_page``
    The JSON landing page links the base map's tiles and styles (``/tiles``, ``/styles``).
``pygeoapi.api.itemtypes.transform_bbox``
    An items ``bbox`` already in the storage CRS is not transformed (12 ms a request).
``pygeoapi.api.itemtypes.parse_cql2_text`` / ``parse_cql2_json``
    The items handler parses ``filter`` and a CQL2 JSON body with :mod:`layers.cql2` (through
    :func:`layers.query.parse_filter`): pygeofilter's parsers refuse valid CQL2 such as
    ``NOT (a OR b)``, ``TRUE`` or ``'it''s'`` (``docs/upstream/pygeofilter-cql2-text-grammar.md``).
``pygeoapi.api.itemtypes.to_json``
    Items are encoded with orjson, ``<`` and ``>`` kept as JSON escapes, not ``&lt;``; the
    ``next`` link of a GeoJSON page asks for at least 1000 features (:func:`grow_next_page`:
    GDAL before 3.8 pages by 10 and follows next links as given).
``pygeoapi.api.processes.get_job_result`` / ``delete_job``
    A failed job's results answer the failure's exception, with its status and code
    (:meth:`tianya.plugins.jobs.JobManager.failure`; pygeoapi: a generic 400 "job failed");
    a dismissal's statusInfo is JSON with ``type: process`` (pygeoapi's went out as
    ``text/html``): ``docs/upstream/pygeoapi-processes-jobs-and-options.md``.
``BaseManager.execute_process`` / ``_execute_handler_sync`` / ``_execute_handler_async``
    Overridden by :class:`tianya.plugins.jobs.JobManager` (inputs checked first, the run in a
    bounded child process, compact result files, a failed synchronous run's own status).
``RasterioProvider.query`` / ``gen_covjson`` / ``get_fields``
    Overridden by :class:`tianya.plugins.raster_provider.TianyaRasterProvider` (which opens
    its dataset and names its axes itself: it only fills ``_fields``, which the base class
    defines and reads).
``pygeoapi.api.gen_collection``
    Each collection document says what the collection is (a coverage: ``dataType`` and the
    ``layerDataType`` GDAL reads, so OGC API Features clients skip it) and how its items page
    (:func:`tianya.config.describe_collection`); a coverage's also gives its ``domainSet``
    and ``rangeType`` and types its GeoTIFF link ``image/tiff; application=geotiff``, what
    GDAL's OGCAPI raster driver needs to open it (:func:`describe_coverage`).
``pygeoapi.api.coverages.get_collection_coverage``
    Answers ``scale-size`` (and GDAL's ``scaleSize``): the provider resamples to exactly
    the asked cells (:data:`tianya.plugins.raster_provider.SCALE_SIZE`); pygeoapi ignores it.
    An answer carries ``Content-Bbox`` (the cells answered) and ``Content-Crs``; an area
    beside the grid is a 204, no content (OGC API Coverages; pygeoapi answers 400).
``pygeoapi.api.tiles.render_j2_template``
    The ``/TileMatrixSets`` pages are rendered with the configured templates: pygeoapi passes
    its whole configuration where the templates' configuration goes, so those two pages
    ignored ``tianya/templates`` and loaded Bootstrap from a CDN.
``pygeoapi.api.itemtypes.get_collection_queryables`` / ``pygeoapi.api.get_collection_schema``
    Queryables and schemas declare JSON Schema 2020-12 and an ``$id`` without the request's
    query (OGC API Features Part 3 /req/queryables/get-queryables-response; pygeoapi writes
    draft 2019-09 and appends ``?f=json``): :func:`json_schema_2020_12`.
``pygeoapi.api.conformance``
    ``/conformance`` declares exactly :data:`tianya.conformance.DECLARED`, the classes the
    server is tested to meet (pygeoapi derives its list from the providers configured).
``pygeoapi.api.itemtypes.render_j2_template``
    Items and item HTML show the catalogue's labels of code-list values in the page's
    language (:func:`tianya.config.html_labels`); JSON keeps the codes.
pygeoapi's HTML templates
    ``tianya/templates`` (:data:`TEMPLATES`, the configuration's ``server.templates.path``) is
    searched before pygeoapi's own: our copies of the pages that loaded CSS and JavaScript from
    CDNs or drew OpenStreetMap tiles (:data:`OVERRIDDEN_TEMPLATES`) load the files vendored
    under ``/assets/vendor/`` and draw the server's own base map, so that no page loads
    anything from another host (the folder's README.md says what each copy changes).
The generated OpenAPI document
    Each items path's ``limit`` is a ``$ref`` to a component
    (:func:`tianya.config.reference_limits`): GDAL sizes its pages from a referenced
    ``limit`` only. Each coverage path lists ``scale-size`` (:func:`document_scaling`).
    Every ``$ref`` is local (:func:`localise_references`): pygeoapi's refer to OGC documents
    on other hosts, which the API docs then fetch; ``tianya/openapi_components.yml`` defines
    each component instead, and an unknown external ``$ref`` stops the server.
``http_status_code`` / ``ogc_exception_code`` of pygeoapi's exceptions
    Set by :func:`pygeoapi_error` (our errors' status and OGC code); pygeoapi's items and
    processes handlers answer with them.
``pygeoapi.api.API.get_exception``
    Logs an error answer by its status: a client error (4xx) as one INFO line, a server
    fault (5xx) at ERROR with its traceback; pygeoapi's own ERROR records of the errors
    it answers are dropped (:class:`ClientErrorLog`). pygeoapi logs a 404 for a mistyped
    id at ERROR with a traceback (``docs/upstream/pygeoapi-client-errors-logged-as-errors.md``).
Configuration through the environment
    pygeoapi 0.24 takes its configuration and OpenAPI document only from the environment
    variables ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI``, read when ``pygeoapi.flask_app``
    is imported (module-level ``CONFIG = get_config()``: there is no app factory taking a
    path or a dict), and resolves the ``${TIANYA_…}`` placeholders of ``server_config.yml``
    with ``os.getenv`` while loading it. :func:`configure` writes exactly those variables,
    from the :class:`~tianya.settings.Settings` object (and ``TIANYA_TEMPLATES``, where our
    templates are installed), just before that import; nothing else of ours reads them back.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass

from layers import access
from layers.catalogue import LAYERS
from layers.errors import TianyaError
from tianya import request

__all__ = [
    "TARGETS",
    "IncompatiblePygeoapi",
    "Target",
    "check",
    "configure",
    "install",
    "placeholder_environment",
    "pygeoapi_error",
]


class IncompatiblePygeoapi(TianyaError, RuntimeError):
    """The installed pygeoapi differs from what our replacements rely on (names each)."""


@dataclass(frozen=True)
class Target:
    """One thing of pygeoapi we replace, override or rely on.

    Attributes
    ----------
    name : str
        Dotted name (``module.function``, ``module.Class.method``, ``module.Class``).
    why : str
        What we do with it.
    params : tuple of str, optional
        The parameter names we call or override it with (``self`` left out), in order.
    attributes : tuple of str
        Attributes the object must have (class attributes of an exception, say).
    used_by : tuple of str
        pygeoapi functions that must look the target up by its name at call time (so a
        replacement of the module attribute takes effect): each must name it.
    mentions : tuple of str
        Text the target's source must contain (an environment variable it reads, an
        attribute of an exception it answers with).
    templates : tuple of str
        HTML templates pygeoapi's ``templates`` folder must hold: ours replace them
        (``tianya/templates``, searched first).
    """

    name: str
    why: str
    params: tuple[str, ...] | None = None
    attributes: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()


_ITEMS = "pygeoapi.api.itemtypes.get_collection_items"
#: Our copy of pygeoapi's HTML templates (``server.templates.path``; see its README.md).
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
#: pygeoapi's templates that ``TEMPLATES`` overrides (each loaded CSS or JavaScript from a CDN
#: or drew OpenStreetMap tiles; the server's pages load nothing from another host).
OVERRIDDEN_TEMPLATES = (
    "_base.html",
    "collections/collection.html",
    "collections/coverage/index.html",
    "collections/items/index.html",
    "collections/items/item.html",
    "openapi/redoc.html",
    "openapi/swagger.html",
)
_MANAGER = "pygeoapi.process.manager.base.BaseManager"
_RASTER = "pygeoapi.provider.rasterio_.RasterioProvider"
_HANDLER = ("subscriber", "requested_response")

#: Everything of pygeoapi 0.24 we replace, override or rely on (see the module docstring).
TARGETS: tuple[Target, ...] = (
    Target(
        "pygeoapi.api.filter_dict_by_key_value",
        "replaced: /collections lists only the layers the caller may read",
        params=("dict_", "key", "value"),
        used_by=("pygeoapi.api.describe_collections",),
    ),
    Target(
        "pygeoapi.api.landing_page",
        "wrapped: the JSON landing page links the base map's tiles and styles (pygeoapi's "
        "Flask route looks it up at call time, as core_api.landing_page: tested, since "
        "pygeoapi.flask_app cannot be imported before the configuration is written); "
        "called as (api, request) through pygeoapi's jsonldify decorator, whose (*args, "
        "**kwargs) hides the parameters",
    ),
    Target(
        "pygeoapi.api.conformance",
        "wrapped: declares exactly tianya.conformance.DECLARED (pygeoapi's Flask route looks it "
        "up at call time, as core_api.conformance)",
        params=("api", "request"),
        mentions=("'conformance.html'", "'conformsTo'"),
    ),
    Target(
        "pygeoapi.api.gen_collection",
        "replaced: a collection document says what the collection is and how it pages",
        params=("api", "request", "dataset", "locale_"),
        used_by=("pygeoapi.api.describe_collections",),
    ),
    Target(
        "pygeoapi.api.coverages.get_collection_coverage",
        "replaced: sets the request's scale-size for the coverage provider, which resamples",
        params=("api", "request", "dataset"),
        mentions=("p.query(**query_args)", "load_plugin('provider', collection_def)"),
    ),
    Target(
        "pygeoapi.api.itemtypes.render_j2_template",
        "replaced: items and item HTML show code-list labels",
        params=("config", "tpl_config", "template", "data", "locale_"),
        used_by=(_ITEMS, "pygeoapi.api.itemtypes.get_collection_item"),
    ),
    Target(
        "pygeoapi.api.itemtypes.get_collection_queryables",
        "wrapped: JSON Schema 2020-12 and an $id without the query (pygeoapi's Flask route "
        "looks it up at call time, as itemtypes_api.get_collection_queryables)",
        params=("api", "request", "dataset"),
        mentions=("'$schema'", "'$id'", "headers['Content-Type'] = 'application/schema+json'"),
    ),
    Target(
        "pygeoapi.api.get_collection_schema",
        "wrapped: JSON Schema 2020-12 (pygeoapi's Flask route looks it up at call time, as "
        "core_api.get_collection_schema)",
        params=("api", "request", "dataset"),
        mentions=("'$schema'", "'$id'", "headers['Content-Type'] = 'application/schema+json'"),
    ),
    Target(
        "pygeoapi.openapi.generate_openapi_document",
        "called: the OpenAPI document, whose limit parameters are then referenced",
        params=("cfg_file", "output_format", "fail_on_invalid_collection"),
    ),
    Target(
        "pygeoapi.api.itemtypes.transform_bbox",
        "replaced: a bbox in the storage CRS is passed through untransformed",
        params=("bbox", "from_crs", "to_crs", "always_xy"),
        used_by=(_ITEMS,),
    ),
    Target(
        "pygeoapi.api.itemtypes.parse_cql2_text",
        "replaced: filters are parsed by layers.cql2 (CQL2's own grammar)",
        params=("cql_text",),
        used_by=(_ITEMS,),
    ),
    Target(
        "pygeoapi.api.itemtypes.parse_cql2_json",
        "replaced: CQL2 JSON bodies are parsed by layers.cql2 (CQL2's own schema)",
        params=("cql",),
        used_by=(_ITEMS,),
    ),
    Target(
        "pygeoapi.api.itemtypes.to_json",
        "replaced: items encoded with orjson",
        params=("dict_", "pretty"),
        used_by=(_ITEMS,),
    ),
    Target(
        "pygeoapi.util.json_serial",
        "called: the items encoder's fallback for other types",
        params=("obj",),
    ),
    Target(
        f"{_MANAGER}.execute_process",
        "overridden by JobManager: inputs checked first",
        params=("process_id", "data_dict", "execution_mode", "requested_outputs", *_HANDLER),
        used_by=("pygeoapi.api.processes.execute_process",),
    ),
    Target(
        f"{_MANAGER}._execute_handler_sync",
        "overridden by JobManager: a bounded run, compact results, a failed run's own status",
        params=("p", "job_id", "data_dict", "requested_outputs", *_HANDLER),
    ),
    Target(
        f"{_MANAGER}._execute_handler_async",
        "overridden by JobManager: a bounded queue",
        params=("p", "job_id", "data_dict", "requested_outputs", *_HANDLER),
    ),
    Target(
        f"{_MANAGER}._send_in_progress_notification",
        "overridden by JobManager: best effort, bounded by a timeout, never the run's outcome",
        params=("subscriber",),
    ),
    Target(
        f"{_MANAGER}._send_success_notification",
        "overridden by JobManager: best effort, bounded by a timeout, never the run's outcome",
        params=("subscriber", "outputs"),
    ),
    Target(
        f"{_MANAGER}._send_failed_notification",
        "overridden by JobManager: best effort, bounded by a timeout, never the run's outcome",
        params=("subscriber",),
    ),
    Target(
        f"{_MANAGER}.get_processor",
        "called by JobManager: one processor per call",
        params=("process_id",),
    ),
    Target(
        "pygeoapi.plugin.load_plugin",
        "called in a run's child process to build the processor",
        params=("plugin_type", "plugin_def"),
    ),
    Target(
        "pygeoapi.process.base.BaseProcessor.__init__",
        "called by our processors with their definition and metadata",
        params=("processor_def", "process_metadata"),
        mentions=("self.metadata = process_metadata", "self.supports_outputs"),
    ),
    Target(
        "pygeoapi.process.base.BaseProcessor.set_job_id", "called by JobManager", params=("job_id",)
    ),
    Target(
        f"{_RASTER}.query",
        "overridden by TianyaRasterProvider: size limit, one-axis subsets completed",
        params=("properties", "subsets", "bbox", "bbox_crs", "datetime_", "format_", "kwargs"),
    ),
    Target(
        f"{_RASTER}.gen_covjson",
        "overridden by TianyaRasterProvider: one parameter per band",
        params=("metadata", "data"),
    ),
    Target(
        f"{_RASTER}.get_fields",
        "overridden by TianyaRasterProvider: band names and units",
        params=(),
    ),
    Target(
        "pygeoapi.provider.base.BaseProvider",
        "TianyaRasterProvider.get_fields fills "
        "_fields, which the base class defines and its fields property returns",
        mentions=("self._fields = {}", "return self._fields"),
    ),
    Target(
        "pygeoapi.provider.rasterio_",
        "TianyaRasterProvider.axis_labels gives the axis "
        "names the parent's query looks subsets up by",
        mentions=(
            "'x_axis_label': 'Long'",
            "'y_axis_label': 'Lat'",
            "properties['x_axis_label'] = 'x'",
            "properties['y_axis_label'] = 'y'",
        ),
    ),
    Target(
        "pygeoapi.provider.base.ProviderGenericError",
        "raised with our status and code",
        attributes=("http_status_code", "ogc_exception_code"),
    ),
    Target(
        "pygeoapi.process.base.ProcessorExecuteError",
        "raised with our status and code",
        attributes=("http_status_code", "ogc_exception_code"),
    ),
    Target(
        _ITEMS,
        "answers a provider error with its status and code",
        mentions=("err.http_status_code", "err.ogc_exception_code"),
    ),
    Target(
        "pygeoapi.api.processes.execute_process",
        "answers a processor error with its status and code; wrapped: a synchronous "
        "result's job URL (its Location) is also its Link rel=monitor",
        params=("api", "request", "process_id"),
        mentions=("err.http_status_code", "err.ogc_exception_code", "headers['Location']"),
    ),
    Target(
        "pygeoapi.api.processes.get_jobs",
        "wrapped: its 404 for a job id that is no job becomes NoSuchJob (the spec's type)",
        params=("api", "request", "job_id"),
        mentions=("except JobNotFoundError:", "'InvalidParameterValue', job_id)"),
    ),
    Target(
        "pygeoapi.api.processes.get_job_result",
        "wrapped: a failed job's results answer the failure's status and code (pygeoapi "
        "answers every failed job 400 InvalidParameterValue)",
        params=("api", "request", "job_id"),
        mentions=("JobStatus.failed", "'job failed'"),
    ),
    Target(
        "pygeoapi.api.processes.delete_job",
        "wrapped: its statusInfo answer gets type: process and Content-Type application/json "
        "(pygeoapi sent no headers: text/html)",
        params=("api", "request", "job_id"),
        mentions=("return {}, http_status, to_json(response, api.pretty_print)",),
    ),
    Target(
        "pygeoapi.api.API.get_exception",
        "replaced: a client error (4xx) is logged as one INFO line, a server fault (5xx) at "
        "ERROR with its traceback (pygeoapi logs each at ERROR with the traceback); a "
        "Processes exception's type is the spec's URI (pygeoapi's is its code)",
        params=("status", "headers", "format_", "code", "description"),
        mentions=("LOGGER.error(", "'type': code"),
    ),
    Target(
        "pygeoapi.api.itemtypes.get_collection_items",
        "its own ERROR line before a bad filter's 400 is dropped (ClientErrorLog)",
        mentions=("LOGGER.error(f'{msg}: {cql_text}')", "LOGGER.error(f'{msg}: {request_data}')"),
    ),
    Target(
        "pygeoapi.config.get_config",
        "set by configure(): the configuration file",
        mentions=("PYGEOAPI_CONFIG",),
    ),
    Target(
        "pygeoapi.openapi.load_openapi_document",
        "set by configure(): the OpenAPI file",
        mentions=("PYGEOAPI_OPENAPI",),
    ),
    Target(
        "pygeoapi.util.yaml_load",
        "resolves the ${TIANYA_…} placeholders configure() sets",
        mentions=("os.getenv",),
    ),
    Target(
        "pygeoapi.api.tiles.render_j2_template",
        "replaced: the TileMatrixSets pages are rendered with the configured templates "
        "(pygeoapi passes the whole configuration as their template configuration)",
        params=("config", "tpl_config", "template", "data", "locale_"),
        used_by=("pygeoapi.api.tiles.tilematrixsets", "pygeoapi.api.tiles.tilematrixset"),
    ),
    Target(
        "pygeoapi.util.render_j2_template",
        "searches server.templates.path (tianya/templates, set by configure()) before its own "
        "templates: our overrides of the pages that loaded assets from other hosts",
        params=("config", "tpl_config", "template", "data", "locale_"),
        mentions=("tpl_config['path']", "template_paths.insert(0, templates)"),
        templates=OVERRIDDEN_TEMPLATES,
    ),
)


def _resolve(dotted: str):
    """The object of a dotted name: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)  # AttributeError: the caller reports it
        return obj
    raise ImportError(dotted)


def _params(obj) -> tuple[str, ...]:
    names = tuple(inspect.signature(inspect.unwrap(obj)).parameters)
    return names[1:] if names[:1] == ("self",) else names


def _problems(target: Target) -> list[str]:
    """What differs between ``target`` and the installed pygeoapi (empty: nothing)."""
    try:
        obj = _resolve(target.name)
    except (ImportError, AttributeError):
        return [f"{target.name}: not found ({target.why})"]
    found = []
    if target.params is not None:
        try:
            got = _params(obj)
        except (TypeError, ValueError):
            got = None
        if got != target.params:
            found.append(
                f"{target.name}: expected parameters ({', '.join(target.params)}), "
                f"found ({', '.join(got or ['?'])})"
            )
    found += [
        f"{target.name}: attribute {a!r} missing" for a in target.attributes if not hasattr(obj, a)
    ]
    module, short = target.name.rsplit(".", 1)
    if inspect.isclass(_resolve(module)):
        module = None  # a method: called as an attribute, not looked up as a global
    for user in target.used_by:
        try:
            calls = _looks_up(_resolve(user), short, module)
        except (ImportError, AttributeError):
            found.append(f"{user}: not found (it should call {target.name})")
            continue
        if not calls:
            found.append(
                f"{user}: no longer looks up {short} in {module}, so our "
                f"replacement of {target.name} would not apply"
            )
    if target.templates:
        from pygeoapi.util import TEMPLATESDIR

        found += [
            f"pygeoapi's template {name} is gone: tianya/templates/{name} overrides it"
            for name in target.templates
            if not os.path.isfile(os.path.join(TEMPLATESDIR, name))
        ]
    if target.mentions:
        try:
            source = inspect.getsource(inspect.unwrap(obj))
        except (OSError, TypeError):
            source = ""
        found += [
            f"{target.name}: its source no longer mentions {text!r} ({target.why})"
            for text in target.mentions
            if text not in source
        ]
    return found


def _looks_up(fn, name: str, module: str | None) -> bool:
    """Whether ``fn`` (or the function a decorator wraps in it) reads the global ``name`` of
    ``module`` when called, so that replacing the module attribute takes effect (``module``
    None: names the attribute ``name``)."""
    seen, todo = set(), [fn]
    while todo:
        f = inspect.unwrap(todo.pop())
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen:
            continue
        seen.add(id(f))
        if name in code.co_names and (
            module is None or getattr(f, "__globals__", {}).get("__name__") == module
        ):
            return True
        todo += [c.cell_contents for c in (f.__closure__ or ()) if callable(c.cell_contents)]
    return False


def check(targets: tuple[Target, ...] = TARGETS) -> None:
    """Verify every target against the installed pygeoapi.

    Raises
    ------
    IncompatiblePygeoapi
        Naming each mismatch and the installed pygeoapi version.
    """
    import pygeoapi

    problems = [p for t in targets for p in _problems(t)]
    if problems:
        raise IncompatiblePygeoapi(
            f"pygeoapi {getattr(pygeoapi, '__version__', '?')} is not the pygeoapi our "
            f"replacements were written for (0.24): "
            + "; ".join(problems)
            + " (see tianya/compat.py)"
        )


# --- configuration through the environment ------------------------------------------------------

#: ``${…}`` placeholders of ``server_config.yml`` and the settings field each comes from.
PLACEHOLDERS = {
    "TIANYA_DATA": "data",
    "TIANYA_URL": "url",
    "TIANYA_JOBS": "jobs",
    "TIANYA_JOB_RESULTS": "job_results",
    "TIANYA_JOB_RETENTION_HOURS": "job_retention_hours",
    "TIANYA_JOB_LIMIT": "job_limit",
    "TIANYA_JOB_LIMIT_ANONYMOUS": "job_limit_anonymous",
    "TIANYA_LOG_LEVEL": "log_level",
    "TIANYA_RASTERS": "rasters",
    "TIANYA_MAP_URL": "map_url",
    "TIANYA_MAP_ATTRIBUTION": "map_attribution",
}


def placeholder_environment(settings) -> dict[str, str]:
    """The ``${TIANYA_…}`` placeholder values of ``settings`` (a setting left unset, such as
    ``rasters``, is left out: the configuration's default applies)."""
    out = {}
    for var, name in PLACEHOLDERS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "data":
            value = settings.store_location()
        out[var] = f"{value:g}" if isinstance(value, float) else str(value)
    return out


def configure(settings, config_path: str) -> dict[str, str]:
    """Set what pygeoapi reads from the environment, from ``settings`` (see the docstring).

    Call it before importing ``pygeoapi.flask_app``. Returns the variables set.
    """
    env = placeholder_environment(settings)
    env["TIANYA_TEMPLATES"] = TEMPLATES  # not a setting: where our templates are installed
    env["PYGEOAPI_CONFIG"] = os.path.abspath(config_path)
    os.environ.update(env)  # the OpenAPI document is generated from the resolved config
    env["PYGEOAPI_OPENAPI"] = openapi_path(env["PYGEOAPI_CONFIG"], settings)
    os.environ["PYGEOAPI_OPENAPI"] = env["PYGEOAPI_OPENAPI"]
    return env


def openapi_path(config_path: str, settings=None) -> str:
    """pygeoapi's OpenAPI document for ``config_path``, generated once per config and the
    ``data`` and ``url`` of ``settings`` (default :func:`tianya.settings.current`)."""
    from pathlib import Path

    from pygeoapi.openapi import generate_openapi_document

    if settings is None:
        from tianya.settings import current

        settings = current()
    h = hashlib.sha256()
    with open(config_path, "rb") as fh:
        h.update(fh.read())
    for value in (settings.store_location(), settings.url, _openapi_edits()):
        h.update(value.encode() + b"\0")
    out = os.path.join(tempfile.gettempdir(), f"tianya-openapi-{h.hexdigest()[:16]}.yml")
    if not os.path.exists(out):
        tmp = f"{out}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(_edited_openapi(generate_openapi_document(Path(config_path), "yaml")))
        os.replace(tmp, out)
    return out


#: What :func:`_edited_openapi` changes (part of the cached document's name, with the
#: content of :data:`OPENAPI_COMPONENTS`).
_OPENAPI_EDITS = "limit-ref-1,scale-size-3,local-refs-1,binary-format-1,no-free-form-1,routes-1"

#: Our definitions of the components pygeoapi's document refers to on other hosts, and which
#: external ``$ref`` each replaces (:func:`localise_references`).
OPENAPI_COMPONENTS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "openapi_components.yml"
)


def _edited_openapi(text: str) -> str:
    """pygeoapi's OpenAPI YAML with each items ``limit`` referenced, each coverage's
    ``scale-size`` documented and every ``$ref`` local (see the docstring)."""
    import yaml

    from tianya.config import reference_limits

    doc = yaml.safe_load(text)
    doc = localise_references(document_routes(document_scaling(reference_limits(doc))))
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _openapi_edits() -> str:
    """:data:`_OPENAPI_EDITS` and a digest of :data:`OPENAPI_COMPONENTS` and
    :data:`OPENAPI_ROUTES` (a changed definition is a new document)."""
    h = hashlib.sha256()
    for path in (OPENAPI_COMPONENTS, OPENAPI_ROUTES):
        with open(path, "rb") as fh:
            h.update(fh.read())
    return f"{_OPENAPI_EDITS},{h.hexdigest()[:16]}"


#: Our routes beside pygeoapi's and the components they and the error answers use
#: (:func:`document_routes`).
OPENAPI_ROUTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi_routes.yml")

#: The response component of each error status (an OGC API exception document; Open311's
#: paths answer GeoReport's ``Open311Error`` instead).
ERROR_RESPONSES = {
    400: "InvalidParameter",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    408: "RequestTimeout",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "ServerError",
    503: "ServiceUnavailable",
}
_ANY = "get head options post put patch delete"
_WRITABLE = "|".join(lid for lid, layer in LAYERS.items() if layer.editable)
_PRIVATE = "|".join(
    lid for lid, layer in LAYERS.items() if not access.can_read(layer, access.PUBLIC)
)
#: The error statuses each operation answers, beside what pygeoapi documents: ``(methods,
#: path pattern, statuses)``; every rule whose methods and pattern match an operation applies.
ERROR_ANSWERS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    # any request: a malformed or unknown parameter, or a body on a GET (400); an unknown API
    # key (401); a fault (500)
    (_ANY, r".*", (400, 401, 500)),
    # a request body too large (413) or too slow to arrive (408)
    ("post put patch", r".*", (408, 413)),
    # what reads the store: it is down, or a statement took too long
    (
        _ANY,
        r"/collections/[^/]+/(items.*|tiles/[^/]+/.+)|/cases/\{caseNo\}/.+|/supervision.*"
        r"|/key-tasks/.+"
        r"|/screen/.*|/tiles/[^/]+/.+|/open311/.*|/processes/[^/]+/execution",
        (503,),
    ),
    # a collection, feature, process, job, tileset, tile, style or case that does not exist
    (
        _ANY,
        r"/collections/.+|/processes/.+|/jobs/.+|/tiles/.+|/styles/.+|/cases/\{caseNo\}/.+"
        r"|/key-tasks/\{taskNo\}/.+"
        r"|/open311/v2/(services|requests)/.+",
        (404,),
    ),
    # a collection of personal data the caller's role may not read
    (_ANY, rf"/collections/({_PRIVATE})(/.*)?", (403,)),
    # a heavy read (a big page, CSV, a coverage, a query with a geometry) over the caller's
    # limit, and a whole coverage over the answer's limit
    ("get post", r"/collections/[^/]+/(items|coverage)", (429,)),
    ("get", r"/collections/[^/]+/coverage", (413,)),
    # writes: the caller's role, If-Match, the stage machine
    ("post put patch delete", rf"/collections/({_WRITABLE})/items(/\{{featureId\}})?", (403,)),
    ("put patch delete", rf"/collections/({_WRITABLE})/items/\{{featureId\}}", (412,)),
    ("patch", rf"/collections/({_WRITABLE})/items/\{{featureId\}}", (409,)),
    ("post", r"/cases/\{caseNo\}/transitions", (403, 409)),
    ("get", r"/cases/\{caseNo\}/history|/supervision/overdue", (403,)),
    ("get", r"/key-tasks/\{taskNo\}/history", (403,)),
    ("post", r"/open311/v2/requests\.\{format\}", (403,)),
    # a process on data the caller may not read; too many jobs of the caller's
    ("post", r"/processes/[^/]+/execution", (403, 429)),
)
#: Success responses pygeoapi describes with another answer's media types, or none: (path
#: pattern, method, status) -> ours.
_RESPONSES_OF = {
    (r"/openapi", "get", "200"): "OpenAPI",
    (r"/collections/[^/]+/(queryables|schema)", "get", "200"): "JSONSchema",
    (r"/collections/[^/]+/items", "post", "200"): "FeaturesQuery",
    (rf"/collections/({_WRITABLE})/items", "post", "201"): "Created",
    (r"/processes/[^/]+", "get", "200"): "ProcessDescription",
    (r"/jobs", "get", "200"): "JobList",
    (r"/jobs/\{jobId\}", "get", "200"): "JobStatus",
    (r"/jobs/\{jobId\}/results", "get", "200"): "JobResults",
    (r"/jobs/\{jobId\}", "delete", "200"): "JobStatus",
    (r"/collections/[^/]+/items", "options", "200"): "ItemsOptions",
    (r"/collections/[^/]+/items/\{featureId\}", "options", "200"): "ItemOptions",
}
#: Statuses pygeoapi documents that the server never answers: (path pattern, method, status).
_NOT_ANSWERED = ((r"/jobs/\{jobId\}", "delete", "204"),)
#: Operations pygeoapi documents that the server does not offer (a 405): (path pattern,
#: method). None today: a milestone is also replaced (re-planned) and deleted
#: (:mod:`tianya.tasks_api`).
_NOT_SERVED: tuple[tuple[str, str], ...] = ()
_SECURED = {"bearerKey": []}, {"apiKeyHeader": []}
_FILTER_PARAMETERS = ("filter", "filter-lang", "filter-crs")
_TILE_TEMPLATE = "/collections/{collectionId}/tiles"


def document_routes(doc: dict, definitions: str | None = None) -> dict:
    """The OpenAPI document with our routes and every error answer of each operation.

    OGC API - Common - Part 1 and Features - Part 1, /req/oas30/completeness: the document
    names every status and response the server answers. pygeoapi 0.24 documents its own
    paths with a few of their errors; this adds, from ``definitions`` (default
    :data:`OPENAPI_ROUTES`), the paths our shell serves (tiles and styles, each point layer's
    tiles, the case workflow and a case's ``PATCH``, supervision, the screen's data, Open311)
    and their components; to every operation the error statuses :data:`ERROR_ANSWERS` says it
    answers (:data:`ERROR_RESPONSES`); to each items ``GET`` the ``filter``, ``filter-lang`` and
    ``filter-crs`` parameters (Part 3, which the shell checks); and the API keys as security
    schemes (optional for the whole API, required for the collections of personal data, the
    writes of a case, its history and the overdue list: /req/oas30/security).

    >>> doc = document_routes({"paths": {"/collections/incidents/items": {"get": {
    ...     "responses": {"200": {"description": "ok"}}}}}})
    >>> ops = doc["paths"]["/collections/incidents/items"]["get"]
    >>> sorted(ops["responses"])
    ['200', '400', '401', '404', '429', '500', '503']
    >>> [p["$ref"].rsplit("/", 1)[1] for p in ops["parameters"]]
    ['filter', 'filter-lang', 'filter-crs']
    >>> doc["paths"]["/open311/v2/requests.{format}"]["post"]["responses"]["403"]
    {'$ref': '#/components/responses/Open311Error'}

    Parameters
    ----------
    doc : dict
        The OpenAPI 3.0 document (changed in place).
    definitions : str, optional
        The YAML file of ``components`` and ``paths``.

    Returns
    -------
    dict
        ``doc``.

    Raises
    ------
    IncompatiblePygeoapi
        pygeoapi's document already has one of our operations or components (each named).
    """
    import copy

    import yaml

    from layers.tiles import point_layers

    with open(definitions or OPENAPI_ROUTES, encoding="utf-8") as fh:
        ours = yaml.safe_load(fh)
    problems = []
    components = doc.setdefault("components", {})
    for kind, defined in ours["components"].items():
        have = components.setdefault(kind, {})
        for name, value in defined.items():
            if have.get(name, value) != value:
                problems.append(f"pygeoapi's document defines components/{kind}/{name} itself")
            have[name] = value
    paths = doc.setdefault("paths", {})
    routes = dict(ours["paths"])
    for template in [p for p in routes if p.startswith(_TILE_TEMPLATE)]:
        item = routes.pop(template)
        kind = template.count("/") - 3  # the tilesets, a tileset, a tile
        for layer in point_layers():
            path = template.replace("{collectionId}", layer.id)
            routes[path] = copy.deepcopy(item)
            for op in routes[path].values():
                op["tags"] = [layer.id]
                # OGC API - Tiles' operationId suffixes (/req/oas30/operation-id)
                what = ("getTileSetsList", "getTileSet", "getTile")[min(kind, 2)]
                op["operationId"] = f"{layer.id}.collection.vector.{what}"
    for path, item in routes.items():
        have = paths.setdefault(path, {})
        for method, op in item.items():
            if method in have:
                problems.append(f"pygeoapi's document has {method.upper()} {path} itself")
            have[method] = op
    if problems:
        raise IncompatiblePygeoapi(
            "the OpenAPI document pygeoapi generated is not the one our edit knows: "
            + "; ".join(problems)
            + " (see tianya/compat.py document_routes)"
        )
    for path in [p for p in paths if re.fullmatch(r"/collections/[^/]+/coverage", p)]:
        # pygeoapi serves a coverage's schema and queryables (its collection links them)
        # without documenting them
        cid = path.split("/")[2]
        name = "".join(w.title() for w in cid.split("_"))
        for what in ("schema", "queryables"):
            paths.setdefault(
                f"/collections/{cid}/{what}",
                {
                    "get": {
                        "tags": [cid],
                        "summary": f"The {what} of {cid} (its range's fields)",
                        "operationId": f"get{name}{what.title()}",
                        "parameters": [
                            {"$ref": "#/components/parameters/f"},
                            {"$ref": "#/components/parameters/lang"},
                        ],
                        "responses": {"200": {"$ref": "#/components/responses/JSONSchema"}},
                    }
                },
            )
    for where, how in _NOT_SERVED:
        for path in [p for p in paths if re.fullmatch(where, p)]:
            for method in how.split():
                paths[path].pop(method, None)
    doc["security"] = [{}, *_SECURED]
    for path, item in paths.items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            statuses = sorted(
                {
                    s
                    for methods, pattern, codes in ERROR_ANSWERS
                    if method in methods.split() and re.fullmatch(pattern, path)
                    for s in codes
                }
            )
            for (where, how, status), name in _RESPONSES_OF.items():
                if how == method and re.fullmatch(where, path):
                    op["responses"][status] = {"$ref": f"#/components/responses/{name}"}
            for where, how, status in _NOT_ANSWERED:
                if how == method and re.fullmatch(where, path):
                    op["responses"].pop(status, None)
            for status in statuses:
                name = "Open311Error" if path.startswith("/open311/") else ERROR_RESPONSES[status]
                op["responses"].setdefault(str(status), {"$ref": f"#/components/responses/{name}"})
            op["responses"] = dict(sorted(op["responses"].items()))
            if _PRIVATE and re.fullmatch(rf"/collections/({_PRIVATE})(/.*)?", path):
                op["security"] = list(_SECURED)  # personal data: a key of a role reading it
            if method in ("put", "delete") and re.fullmatch(
                rf"/collections/({_WRITABLE})/items/\{{featureId\}}", path
            ):
                op["security"] = list(_SECURED)
                params = op.setdefault("parameters", [])
                if_match = {"$ref": "#/components/parameters/If-Match"}
                if if_match not in params:
                    params.append(if_match)
            if method == "get" and path.endswith("/coverage"):
                # pygeoapi gives a coverage the features' f (json, html, jsonld)
                params = op.get("parameters") or []
                op["parameters"] = [
                    {"$ref": "#/components/parameters/f-coverage"}
                    if p == {"$ref": "#/components/parameters/f"}
                    else p
                    for p in params
                ]
            if method == "get" and path.endswith("/items"):
                params = op.setdefault("parameters", [])
                for name in _FILTER_PARAMETERS:
                    ref = {"$ref": f"#/components/parameters/{name}"}
                    if ref not in params:
                        params.append(ref)
    return doc


#: Where pygeoapi refers to a response written for another answer: (path, the component it
#: names once localised) -> the one that describes what the path answers.
_ANSWERED_AS = (
    (r"/collections", "#/components/responses/LandingPage", "#/components/responses/Collections"),
    (
        r"/conformance",
        "#/components/responses/LandingPage",
        "#/components/responses/ConformanceDeclaration",
    ),
    (
        r"/collections/[^/]+/coverage",
        "#/components/responses/Features",
        "#/components/responses/Coverage",
    ),
)


def localise_references(doc: dict, definitions: str | None = None) -> dict:
    """The OpenAPI document with every ``$ref`` to another host's document replaced by a
    ``$ref`` to a component of its own.

    pygeoapi 0.24 refers to OGC API responses, parameters and schemas on
    schemas.opengis.net and GitHub: offline, Swagger UI cannot show an operation and
    ReDoc shows nothing. ``definitions`` (default :data:`OPENAPI_COMPONENTS`) defines each
    component, written from the OGC standards and from what this server answers, and says
    which external reference it replaces; ``/collections``, ``/conformance`` and coverages,
    to which pygeoapi gives the landing page's and the features' response, get their own.
    Also, for the document to be valid OpenAPI 3.0 and say what the server does: a string
    schema's ``contentEncoding`` (JSON Schema 2019-09, a process's binary output) becomes
    the ``format`` OpenAPI 3.0 uses (``binary``, ``byte``), and the free-form
    ``vendorSpecificParameters`` are dropped (items answers 400 to a parameter it does not
    list).

    Parameters
    ----------
    doc : dict
        The OpenAPI 3.0 document (changed in place).
    definitions : str, optional
        The YAML file of ``components`` and ``replaces``.

    Returns
    -------
    dict
        ``doc``.

    Raises
    ------
    IncompatiblePygeoapi
        A ``$ref`` to another host that ``definitions`` does not replace, a local ``$ref``
        that resolves to nothing, or a component of ours whose name pygeoapi's document
        already uses for something else (each named).
    """
    import yaml

    where = definitions or OPENAPI_COMPONENTS
    with open(where, encoding="utf-8") as fh:
        ours = yaml.safe_load(fh)
    replaces: dict[str, str] = ours["replaces"]
    components = doc.setdefault("components", {})
    problems = []
    for kind, defined in ours["components"].items():
        have = components.setdefault(kind, {})
        for name, value in defined.items():
            if have.get(name, value) != value:
                problems.append(f"pygeoapi's document defines components/{kind}/{name} itself")
            have[name] = value

    def local(node, path: str | None):
        if isinstance(node, list):
            for v in node:
                local(v, path)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                if ref in replaces:
                    node["$ref"] = ref = replaces[ref]
                else:
                    problems.append(f"unknown $ref {ref}: {where} does not define it")
            for pattern, was, now in _ANSWERED_AS:
                if ref == was and path is not None and re.fullmatch(pattern, path):
                    node["$ref"] = now
            encoding = node.get("contentEncoding")
            if node.get("type") == "string" and encoding in ("binary", "base64"):
                del node["contentEncoding"]
                node["format"] = "binary" if encoding == "binary" else "byte"
            for v in node.values():
                local(v, path)

    for path, item in (doc.get("paths") or {}).items():
        local(item, path)
        for op in item.values():
            if isinstance(op, dict) and isinstance(op.get("parameters"), list):
                op["parameters"] = [p for p in op["parameters"] if p != _FREE_FORM]
    local(components, None)
    params = components.get("parameters") or {}
    if "vendorSpecificParameters" in params and not _refers_to(doc, _FREE_FORM["$ref"]):
        del params["vendorSpecificParameters"]
    problems += reference_problems(doc)
    if problems:
        raise IncompatiblePygeoapi(
            "the OpenAPI document pygeoapi generated is not the one our edit knows: "
            + "; ".join(dict.fromkeys(problems))
            + " (see tianya/compat.py localise_references)"
        )
    return doc


_FREE_FORM = {"$ref": "#/components/parameters/vendorSpecificParameters"}


def _refs(doc: dict):
    """Every ``$ref`` value of ``doc``."""
    todo: list = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            todo += node.values()
        elif isinstance(node, list):
            todo += node


def _refers_to(doc: dict, ref: str) -> bool:
    return any(r == ref for r in _refs(doc))


def reference_problems(doc: dict) -> list[str]:
    """Each ``$ref`` of an OpenAPI document that leaves it or resolves to nothing in it.

    >>> for p in reference_problems({"components": {"schemas": {"a": {}}}, "paths": {"/": {
    ...     "get": {"responses": {"200": {"$ref": "#/components/schemas/a"},
    ...                           "400": {"$ref": "#/components/schemas/b"},
    ...                           "500": {"$ref": "https://example.org/x.yaml"}}}}}}):
    ...     print(p)
    $ref #/components/schemas/b resolves to nothing
    $ref https://example.org/x.yaml leaves the document
    """
    found = []
    for ref in sorted(set(_refs(doc))):
        if not ref.startswith("#/"):
            found.append(f"$ref {ref} leaves the document")
            continue
        node: object = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                found.append(f"$ref {ref} resolves to nothing")
                break
            node = node[part]
    return found


#: The ``scale-size`` parameter of a coverage (OGC API Coverages, scaling), as documented.
SCALE_SIZE_PARAMETER = {
    "name": "scale-size",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": False,
    "description": (
        "The answer's size in cells per axis, as `Long(width),Lat(height)`: exactly that many "
        "cells over exactly the requested bbox or subset (the cell under each centre, or the "
        "mean of the cells covered when coarser than the grid). `scaleSize` is taken as well."
    ),
    "schema": {"type": "string", "pattern": r"^\w+\(\d+\),\w+\(\d+\)$"},
}


#: The ``range-subset`` parameter of a coverage (OGC API Coverages, coverage-rangesubset).
RANGE_SUBSET_PARAMETER = {
    "name": "range-subset",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": False,
    "description": (
        "The bands to answer, in that order: band names (the `rangeType` fields' names) or "
        "indexes from 0, with `*` first or last for every other band before or after them."
    ),
    "schema": {"type": "string"},
}


def document_scaling(doc: dict) -> dict:
    """The OpenAPI document with ``scale-size`` and ``range-subset`` among each coverage
    path's parameters, and its 204 answer (an area holding no cell of the grid).

    >>> doc = {"paths": {"/collections/dem/coverage": {"get": {"parameters": []}}}}
    >>> document_scaling(doc)["paths"]["/collections/dem/coverage"]["get"]["parameters"]
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'$ref': '#/components/parameters/scale-size'},
     {'$ref': '#/components/parameters/range-subset'}]
    """
    components = doc.setdefault("components", {}).setdefault("parameters", {})
    components["scale-size"] = SCALE_SIZE_PARAMETER
    components["range-subset"] = RANGE_SUBSET_PARAMETER
    refs = [{"$ref": f"#/components/parameters/{n}"} for n in ("scale-size", "range-subset")]
    for path, item in (doc.get("paths") or {}).items():
        get = item.get("get") if path.endswith("/coverage") else None
        for ref in refs if get is not None else ():
            if ref not in get.setdefault("parameters", []):
                get["parameters"].append(dict(ref))
        if get is not None:
            get.setdefault("responses", {}).setdefault(
                "204", {"description": "The requested area holds no cell of the coverage."}
            )
    return doc


def load_app(settings, config_path: str):
    """pygeoapi's Flask app for ``config_path``, configured from ``settings``, with every
    replacement installed. Call :func:`check` first."""
    configure(settings, config_path)
    from pygeoapi.flask_app import APP  # reads what configure() set, at import

    install()
    return APP


def openapi_document() -> dict:
    """pygeoapi's OpenAPI document, as the server loaded it."""
    from pygeoapi.flask_app import OPENAPI

    return OPENAPI


# --- our errors as pygeoapi's --------------------------------------------------------------------


def pygeoapi_error(err: TianyaError, kind: str = "provider"):
    """``err`` as the pygeoapi exception a ``kind`` (``provider`` or ``process``) raises.

    pygeoapi answers a provider's or processor's exception with its ``http_status_code`` and
    ``ogc_exception_code`` (checked by :func:`check`): ours carry the status and OGC code of
    ``err`` (:mod:`layers.errors`, the one mapping) and the message the user sees. A provider's
    404, 400 and 503 are instances of pygeoapi's own classes for them (its handlers catch
    ``ProviderItemNotFoundError`` and ``ProviderConnectionError`` by class).
    """
    from pygeoapi.process.base import ProcessorExecuteError
    from pygeoapi.provider.base import (
        ProviderConnectionError,
        ProviderGenericError,
        ProviderInvalidQueryError,
        ProviderItemNotFoundError,
    )

    if kind == "process":
        cls = ProcessorExecuteError
    else:
        cls = {
            404: ProviderItemNotFoundError,
            400: ProviderInvalidQueryError,
            503: ProviderConnectionError,
        }.get(err.status, ProviderGenericError)
    msg = str(err)
    exc = cls(msg, user_msg=msg)
    exc.http_status_code = err.status
    exc.ogc_exception_code = err.ogc_code
    return exc


# --- the module-level replacements ----------------------------------------------------------------


def install() -> None:
    """Apply every replacement (idempotent)."""
    _use_orjson_for_items()
    _redact_logs()
    _log_errors_by_status()
    _skip_identity_bbox_transform()
    _parse_filters_as_cql2()
    _list_readable_collections_only()
    _describe_collections()
    _scale_coverages()
    _label_codes_in_html()
    _our_templates_for_tile_matrix_sets()
    _link_base_map_from_landing_page()
    _declare_json_schema_2020_12()
    _monitor_link_on_sync_results()
    _failed_job_results()
    _dismissed_job_status()
    _declare_conformance()


def _declare_conformance() -> None:
    """``/conformance`` lists :data:`tianya.conformance.DECLARED`, in JSON and HTML."""
    import pygeoapi.api as core

    from tianya.conformance import DECLARED

    original = inspect.unwrap(core.conformance)

    def conformance(api, request):
        headers, status, content = original(api, request)
        if int(status) != 200:
            return headers, status, content
        doc = {"conformsTo": list(DECLARED)}
        if request.format == core.F_HTML:
            templates = api.config["server"]["templates"]
            content = core.render_j2_template(
                api.tpl_config, templates, "conformance.html", doc, request.locale
            )
        else:
            content = core.to_json(doc, api.pretty_print)
        return headers, status, content

    conformance.__wrapped__ = original  # type: ignore[attr-defined]
    core.conformance = conformance


def _monitor_link_on_sync_results() -> None:
    """A synchronous result links its job: ``Link: <.../jobs/{id}>; rel="monitor"``.

    OGC API - Processes 1.0, /req/core/job-results-success-sync: a job created for a
    synchronous execution is linked from the response (our manager records every run; pygeoapi
    gives its URL as ``Location`` only).
    """
    import pygeoapi.api.processes as processes

    original = inspect.unwrap(processes.execute_process)

    def execute_process(api, request, process_id):
        headers, status, content = original(api, request, process_id)
        job = headers.get("Location")
        if int(status) == 200 and job:
            link = f'<{job}>; rel="monitor"'
            headers["Link"] = f"{headers['Link']}, {link}" if headers.get("Link") else link
        return headers, status, content

    execute_process.__wrapped__ = original  # type: ignore[attr-defined]
    processes.execute_process = execute_process

    get_jobs_original = inspect.unwrap(processes.get_jobs)

    def get_jobs(api, request, job_id=None):
        """``/jobs/{id}`` of no job: pygeoapi's 404 says ``InvalidParameterValue``; the spec's
        (/req/core/job-exception-no-such-job) is ``no-such-job``, as for its results. A
        synchronous run's job links no results: they were its response and are not kept."""
        headers, status, content = get_jobs_original(api, request, job_id)
        if job_id is not None and int(status) == 404:
            content = _with_exception_type(content, "NoSuchJob", api.pretty_print)
        elif int(status) == 200 and str(headers.get("Content-Type", "")).endswith("json"):
            content = _without_unkept_results(api, content)
        return headers, status, content

    get_jobs.__wrapped__ = get_jobs_original  # type: ignore[attr-defined]
    processes.get_jobs = get_jobs


def _unkept_result(api, job_id: str) -> bool:
    """Whether ``job_id`` is a successful job without a kept result (a synchronous run's)."""
    try:
        job = api.manager.get_job(job_id)
    except Exception:  # no such job: pygeoapi answers it
        return False
    return job.get("status") == "successful" and not job.get("location")


def _without_unkept_results(api, content):
    """A job status document (or job list) without the results link of unkept results."""
    import orjson

    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content
    jobs = doc.get("jobs", [doc]) if isinstance(doc, dict) else []
    changed = False
    for job in jobs:
        if isinstance(job, dict) and _unkept_result(api, str(job.get("jobID"))):
            links = job.get("links") or []
            kept = [ln for ln in links if not str(ln.get("rel", "")).endswith("/results")]
            changed |= len(kept) != len(links)
            job["links"] = kept
    return orjson.dumps(doc).decode() if changed else content


def _failed_job_results() -> None:
    """``/jobs/{id}/results`` of a failed job answers the failure's exception.

    OGC API - Processes 1.0, /req/core/job-results-failed: the status and ``type`` correspond
    to the reason of the failure (pygeoapi answers every failed job with a generic 400
    ``InvalidParameterValue``, "job failed"); the job manager keeps the reason
    (:meth:`tianya.plugins.jobs.JobManager.failure`).
    """
    import pygeoapi.api.processes as processes
    from pygeoapi.process.base import JobNotFoundError

    original = inspect.unwrap(processes.get_job_result)

    def get_job_result(api, request, job_id):
        failure = getattr(api.manager, "failure", None)
        try:
            failed = failure(job_id) if failure is not None else None
        except JobNotFoundError:
            failed = None  # pygeoapi's own 404 (no-such-job)
        headers = request.get_response_headers(processes.SYSTEM_LOCALE, **api.api_headers)
        if failed is None and _unkept_result(api, job_id):
            return api.get_exception(
                404,
                headers,
                request.format,
                "NotFound",
                f"job {job_id} ran synchronously: its result was the answer to its execution "
                "and is not kept (execute with 'Prefer: respond-async' to keep a result)",
            )
        if failed is None:
            return original(api, request, job_id)
        return api.get_exception(
            int(failed.get("status") or 500),
            headers,
            request.format,
            failed["code"],
            failed.get("description") or "the job failed",
        )

    get_job_result.__wrapped__ = original  # type: ignore[attr-defined]
    processes.get_job_result = get_job_result


def _dismissed_job_status() -> None:
    """``DELETE /jobs/{id}`` answers a statusInfo document as JSON.

    OGC API - Processes 1.0, /req/dismiss/job-dismiss-success: a 200 whose content follows
    statusInfo.yaml (``jobID``, ``status: dismissed`` and the required ``type: process``).
    pygeoapi's answer had no ``type`` and no headers at all, so it went out as ``text/html``.
    """
    import json

    import pygeoapi.api.processes as processes

    original = inspect.unwrap(processes.delete_job)

    def delete_job(api, request, job_id):
        headers, status, content = original(api, request, job_id)
        if int(status) != 200 or not isinstance(content, str):
            return headers, status, content
        body = json.loads(content)
        body.setdefault("type", "process")
        headers = {**(headers or {}), "Content-Type": "application/json"}
        return headers, status, processes.to_json(body, api.pretty_print)

    delete_job.__wrapped__ = original  # type: ignore[attr-defined]
    processes.delete_job = delete_job


def _link_base_map_from_landing_page() -> None:
    """The JSON landing page links ``/tiles`` and ``/styles`` (the base map, served by the
    shell: :mod:`tianya.tiles`), which pygeoapi does not know of."""
    import orjson
    import pygeoapi.api as core

    original = inspect.unwrap(core.landing_page)

    def landing_page(api, request):
        headers, status, content = original(api, request)
        kind = str(headers.get("Content-Type", ""))
        if int(status) != 200 or not kind.startswith("application/json"):
            return headers, status, content
        doc = orjson.loads(content)
        base = api.base_url.rstrip("/")
        doc.setdefault("links", []).extend(
            [
                {  # OGC API Common Part 1 /req/landing-page/root-success names this relation
                    # (Features Part 1's "conformance" link is pygeoapi's, kept)
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                    "type": "application/json",
                    "title": "Conformance declaration as JSON",
                    "href": f"{base}/conformance",
                },
                {
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                    "type": "application/json",
                    "title": "Base map (vector tiles)",
                    "href": f"{base}/tiles",
                },
                {
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/styles",
                    "type": "application/json",
                    "title": "Base map styles",
                    "href": f"{base}/styles",
                },
            ]
        )
        return headers, status, orjson.dumps(doc).decode()

    landing_page.__wrapped__ = original  # type: ignore[attr-defined]
    core.landing_page = landing_page


#: The JSON Schema dialect of queryables and schemas (OGC API Features Part 3
#: /req/queryables/get-queryables-response; Part 5 for ``/schema``).
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def json_schema_2020_12(doc: dict, uri: str) -> dict:
    """A queryables or schema document of pygeoapi's as JSON Schema 2020-12 naming ``uri``.

    OGC API Features Part 3 (/req/queryables/get-queryables-response): ``$schema`` is
    :data:`JSON_SCHEMA_2020_12` and ``$id`` the resource's URI without query parameters.
    pygeoapi 0.24 writes draft 2019-09 and appends the request's query to the queryables'
    ``$id`` (``…/queryables?f=json``). The rest of the document is kept: its keywords mean
    the same in 2020-12.

    >>> json_schema_2020_12({"$schema": "http://json-schema.org/draft/2019-09/schema",
    ...     "$id": "http://h/collections/a/queryables?f=json", "type": "object"},
    ...     "http://h/collections/a/queryables")  # doctest: +NORMALIZE_WHITESPACE
    {'$schema': 'https://json-schema.org/draft/2020-12/schema',
     '$id': 'http://h/collections/a/queryables', 'type': 'object'}
    """
    doc["$schema"] = JSON_SCHEMA_2020_12
    doc["$id"] = uri
    return doc


def _declare_json_schema_2020_12() -> None:
    """``/collections/{id}/queryables`` and ``/schema`` as JSON Schema 2020-12 documents whose
    ``$id`` has no query (:func:`json_schema_2020_12`); HTML pages and errors pass unchanged.

    The document is encoded again with the items encoder (:func:`_use_orjson_for_items`).
    """
    import orjson
    import pygeoapi.api as core
    import pygeoapi.api.itemtypes as itemtypes

    def wrap(module, name: str, resource: str) -> None:
        original = inspect.unwrap(getattr(module, name))

        def handler(api, request, dataset=None):
            headers, status, content = original(api, request, dataset)
            kind = str(headers.get("Content-Type", ""))
            if int(status) != 200 or not kind.startswith("application/schema+json"):
                return headers, status, content
            uri = f"{api.get_collections_url()}/{dataset}/{resource}"
            doc = json_schema_2020_12(orjson.loads(content), uri)
            layer = LAYERS.get(dataset)
            if resource == "queryables" and layer is not None and layer.geometry_type is None:
                # pygeoapi lists `geometry` for every collection, and a filter on it is refused
                # where there is none (Part 3 /req/queryables/get-queryables-response B)
                doc.get("properties", {}).pop("geometry", None)
            return headers, status, itemtypes.to_json(doc, api.pretty_print)

        handler.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, name, handler)

    wrap(itemtypes, "get_collection_queryables", "queryables")
    wrap(core, "get_collection_schema", "schema")


class ClientErrorLog(logging.Filter):
    """Drops pygeoapi's own ERROR records of the errors it answers.

    pygeoapi's ``API.get_exception`` logs every error it answers at ERROR with the traceback
    of the exception being handled (a mistyped item id is a 404 with a 30-line traceback),
    and the items handler logs a bad filter at ERROR before answering it with a 400.
    :func:`_log_errors_by_status` logs each answer by its status instead.
    """

    #: (logger, function, message prefix) of the records dropped.
    DROPPED = (
        ("pygeoapi.api", "get_exception", ""),
        ("pygeoapi.api.itemtypes", "get_collection_items", "Bad CQL "),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            record.name == name and record.funcName == func and str(record.msg).startswith(pre)
            for name, func, pre in self.DROPPED
        )


def _log_errors_by_status() -> None:
    """pygeoapi's error answers logged by their status (see :class:`ClientErrorLog`).

    A client error (4xx) is one INFO line, ``<status> <code>: <description>``; a server
    fault (5xx) is an ERROR record with the traceback of the exception being handled, once.
    """
    from pygeoapi.api import API

    original = inspect.unwrap(API.get_exception)
    logger = logging.getLogger("pygeoapi.api")

    def get_exception(self, status, headers, format_, code, description):
        _log_answer(logger, int(status), code, description)
        headers, status, content = original(self, status, headers, format_, code, description)
        return headers, status, _with_exception_type(content, code, self.pretty_print)

    get_exception.__wrapped__ = original  # type: ignore[attr-defined]
    API.get_exception = get_exception
    for name in {name for name, _, _ in ClientErrorLog.DROPPED}:
        log = logging.getLogger(name)
        if not any(isinstance(f, ClientErrorLog) for f in log.filters):
            log.addFilter(ClientErrorLog())


#: OGC API - Processes 1.0 exception types (/req/core/process-exception/no-such-process,
#: /req/core/job-exception-no-such-job, /req/core/job-results-exception/results-not-ready)
#: by pygeoapi's code (kept as ``code``; pygeoapi answers the code as the type too).
PROCESS_EXCEPTION_TYPES = {
    code: f"http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/{name}"
    for code, name in (
        ("NoSuchProcess", "no-such-process"),
        ("NoSuchJob", "no-such-job"),
        ("ResultNotReady", "result-not-ready"),
    )
}


def _with_exception_type(content, code: str, pretty: bool):
    """pygeoapi's JSON exception ``content`` as ``code``, with the spec's ``type`` URI for it.

    Examples
    --------
    >>> _with_exception_type('{"code": "NoSuchJob", "type": "NoSuchJob"}', "NoSuchJob", False)
    '{"code":"NoSuchJob","type":"http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job"}'
    """
    kind = PROCESS_EXCEPTION_TYPES.get(code)
    if kind is None or not isinstance(content, str) or not content.lstrip().startswith("{"):
        return content  # HTML, or no type of its own
    import json

    from pygeoapi.util import to_json

    body = json.loads(content)
    body["code"], body["type"] = code, kind
    return to_json(body, pretty)


def _log_answer(logger: logging.Logger, status: int, code: str, description: str) -> None:
    if status < 500:
        logger.info("%d %s: %s", status, code, description)
    else:
        logger.error("%d %s: %s", status, code, description, exc_info=sys.exc_info()[0] is not None)


def _redact_logs() -> None:
    """No personal data or key in pygeoapi's log (it logs refused request bodies), nor in
    the shell's lines of refusals (``tianya.web``: a message may quote a value).

    A logger's filters see only the records logged on that logger, not its children's:
    the filter goes on ``pygeoapi`` and on each of its module loggers (``pygeoapi.api``,
    ``pygeoapi.api.itemtypes`` …), which exist once pygeoapi's app is imported.
    """
    from tianya.safety import RedactFilter

    names = [n for n in logging.root.manager.loggerDict if n.startswith("pygeoapi.")]
    for name in ["pygeoapi", *names, "tianya.web"]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in logger.filters):
            logger.addFilter(RedactFilter())


def _list_readable_collections_only() -> None:
    """``/collections`` lists only what the caller's role may read (as GeoServer does).

    pygeoapi builds the list from its whole configuration; a public caller would
    see ``poverty_relief`` listed, then get 401 on it. The list is filtered with
    :func:`layers.access.can_read` for the request's principal (the shell has set
    it; the ``/collections`` cache is kept per role).
    """
    import pygeoapi.api as api_module

    original = inspect.unwrap(api_module.filter_dict_by_key_value)

    def filter_dict_by_key_value(dict_, key, value):
        found = original(dict_, key, value)
        if value != "collection":
            return found
        return {
            k: v
            for k, v in found.items()
            if k not in LAYERS or access.can_read(LAYERS[k], request.principal())
        }

    filter_dict_by_key_value.__wrapped__ = original
    api_module.filter_dict_by_key_value = filter_dict_by_key_value


def _parse_filters_as_cql2() -> None:
    """pygeoapi's items handler parses ``filter`` and a CQL2 JSON body with ours.

    pygeofilter's CQL2 text grammar refuses ``NOT (a OR b)``, boolean literals and quotes in
    strings, and reads ``a OR b AND c`` as ``(a OR b) AND c``; its JSON parser refuses
    ``between`` with three arguments and GeometryCollections. :mod:`layers.cql2` follows
    the standard and builds the same node classes.
    """
    import json

    import pygeoapi.api.itemtypes as itemtypes

    from layers.query import parse_filter

    def parse_cql2_text(cql_text):
        # a JSON filter in the query string was re-encoded as text by check_items_params
        return parse_filter(cql_text, "cql2-text")

    def parse_cql2_json(cql):
        return parse_filter(cql if isinstance(cql, str) else json.dumps(cql), "cql2-json")

    itemtypes.parse_cql2_text = parse_cql2_text
    itemtypes.parse_cql2_json = parse_cql2_json


def _skip_identity_bbox_transform() -> None:
    """Pass a bbox through when its CRS is the storage CRS.

    pygeoapi transforms every items ``bbox`` to the storage CRS, even CRS84 to
    CRS84, building a pyproj transformer and calling ``CRS.to_epsg()`` each time
    (12 ms a request, a third of a 1000-feature page from PostGIS).
    """
    import pygeoapi.api.itemtypes as itemtypes

    original = inspect.unwrap(itemtypes.transform_bbox)

    def transform_bbox(bbox, from_crs, to_crs, always_xy=False):
        if isinstance(from_crs, str) and from_crs == to_crs:
            return list(bbox)
        return original(bbox, from_crs, to_crs, always_xy)

    transform_bbox.__wrapped__ = original
    itemtypes.transform_bbox = transform_bbox


def _use_orjson_for_items() -> None:
    """Encode items responses with orjson instead of pygeoapi's ``to_json``.

    pygeoapi's encoder is the stdlib's (about 7 ms for a page of 1000 incidents,
    a third of the request) and then rewrites every ``<`` and ``>`` in the text as
    ``&lt;`` / ``&gt;``, which changes the data. orjson is ~12× faster; ``<`` and
    ``>`` are written as the JSON escapes ``\\u003c`` / ``\\u003e``, which keep the
    value intact and still cannot close a ``<script>`` element.
    """
    import orjson
    import pygeoapi.api.itemtypes as itemtypes
    from pygeoapi.util import json_serial

    def to_json(dict_, pretty=False):
        if isinstance(dict_, dict) and dict_.get("type") == "FeatureCollection":
            grow_next_page(dict_)
        opts = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if pretty else 0)
        text = orjson.dumps(dict_, default=json_serial, option=opts).decode("utf-8")
        return text.replace("<", "\\u003c").replace(">", "\\u003e")

    to_json.__wrapped__ = inspect.unwrap(itemtypes.to_json)
    itemtypes.to_json = to_json


#: The smallest page a ``next`` link of a GeoJSON items page asks for: GDAL's default page
#: since 3.8, ten times our default (:data:`tianya.config.DEFAULT_ITEMS`).
NEXT_PAGE_ITEMS = 1000
_LIMIT_PARAM = re.compile(r"([?&])limit=(\d+)(?=&|$)")


def grow_next_page(collection: dict, at_least: int = NEXT_PAGE_ITEMS) -> dict:
    """Make the ``next`` link of an items page ask for at least ``at_least`` features.

    GDAL before 3.8 (3.6 is Debian 12's, under QGIS 3.22-3.28) asks for pages of 10 unless
    told ``-oo PAGE_SIZE``, reads nothing the server documents to size them (neither the
    OpenAPI document nor the collection's), and then follows the ``next`` links as given:
    a 4,000-feature export was 400 requests. The next link is the server's to write (OGC
    API Features: clients follow it and make no assumption about its query), so the pages
    after the first one grow to ``at_least`` (never above the layer's maximum,
    :data:`layers.query.MAX_LIMIT`): every page still holds no more than its own ``limit``,
    nothing is skipped or repeated, and a client asking for pages of 1000 or more (GDAL
    3.8+, pyogrio, QGIS's own provider) sees its link unchanged. The rest of the link
    (filters, ``offset``, ``f``) is kept byte for byte.

    >>> fc = {"type": "FeatureCollection", "links": [
    ...     {"rel": "next", "href": "http://h/collections/x/items?f=json&offset=10&limit=10&bbox=1,2,3,4"},
    ...     {"rel": "self", "href": "http://h/collections/x/items?f=json&limit=10"}]}
    >>> [link["href"] for link in grow_next_page(fc)["links"]]  # doctest: +NORMALIZE_WHITESPACE
    ['http://h/collections/x/items?f=json&offset=10&limit=1000&bbox=1,2,3,4',
     'http://h/collections/x/items?f=json&limit=10']
    >>> grow_next_page({"links": [{"rel": "next", "href": "/items?offset=100"}]})["links"]
    [{'rel': 'next', 'href': '/items?offset=100&limit=1000'}]
    """
    from layers.query import MAX_LIMIT

    size = min(at_least, MAX_LIMIT)
    for link in collection.get("links") or ():
        href = link.get("href")
        if link.get("rel") != "next" or not isinstance(href, str):
            continue
        found = _LIMIT_PARAM.search(href)
        if found is None:
            link["href"] = f"{href}{'&' if '?' in href else '?'}limit={size}"
        elif int(found.group(2)) < size:
            link["href"] = _LIMIT_PARAM.sub(rf"\g<1>limit={size}", href, count=1)
    return collection


def _describe_collections() -> None:
    """Collection documents say what each collection is and how it pages.

    pygeoapi writes ``itemType`` and ``items`` links for feature collections only, as OGC
    API Common says, but GDAL's OAPIF driver reads neither: it lists every collection as a
    vector layer unless ``layerDataType`` says ``Coverage`` (QGIS then fails on the DEM with
    "Invalid provider type"). :func:`tianya.config.describe_collection` adds it.
    """
    import pygeoapi.api as api_module

    from tianya.config import describe_collection

    original = inspect.unwrap(api_module.gen_collection)

    def gen_collection(api, request, dataset, locale_):
        doc = original(api, request, dataset, locale_)
        resource = api.config["resources"][dataset]
        doc = describe_coverage(resource, describe_collection(resource, doc))
        return link_tilesets(dataset, doc, api.base_url)

    gen_collection.__wrapped__ = original
    api_module.gen_collection = gen_collection


#: The media type of GeoTIFF in OGC API links (GDAL's OGCAPI driver takes a coverage link of
#: this type, or of none: not plain ``image/tiff``).
GEOTIFF = "image/tiff; application=geotiff"
_COVERAGE_REL = "http://www.opengis.net/def/rel/ogc/1.0/coverage"


_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


def link_tilesets(dataset: str, doc: dict, base_url: str) -> dict:
    """A point layer's collection document links its vector tilesets (``/tiles``).

    OGC API Tiles /req/geodata-tilesets/desc-links: a collection served as tiles
    (:mod:`tianya.tiles`, which pygeoapi does not know of) links its tilesets list with the
    ``tilesets-vector`` relation. Other collections' documents are returned unchanged.

    >>> link_tilesets("incidents", {"links": []}, "http://h")["links"][0]["href"]
    'http://h/collections/incidents/tiles'
    >>> link_tilesets("rivers", {"links": []}, "http://h")["links"]
    []
    """
    from layers.tiles import point_layers

    if dataset in {lay.id for lay in point_layers()}:
        doc.setdefault("links", []).append(
            {
                "rel": _TILESETS_VECTOR,
                "type": "application/json",
                "title": "Vector tilesets",
                "href": f"{base_url.rstrip('/')}/collections/{dataset}/tiles",
            }
        )
    return doc


#: Largest side, in cells, of the whole coverage that a collection's CoverageJSON and HTML
#: coverage links ask for (a ``scale-size`` of the grid's shape).
WHOLE_COVERAGE_SIDE = 512
_DOMAINSET_REL = "http://www.opengis.net/def/rel/ogc/1.0/coverage-domainset"
_RANGETYPE_REL = "http://www.opengis.net/def/rel/ogc/1.0/coverage-rangetype"


def whole_coverage_size(width: int, height: int, side: int = WHOLE_COVERAGE_SIDE) -> tuple:
    """The (width, height) in cells of a grid scaled to at most ``side`` on its longer axis.

    >>> whole_coverage_size(3600, 4400)
    (419, 512)
    >>> whole_coverage_size(100, 50)
    (100, 50)
    """
    factor = min(1.0, side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def describe_coverage(resource: dict, doc: dict) -> dict:
    """A coverage collection's document, with what a raster client needs to open it.

    GDAL's OGCAPI driver (3.6 and later) opens ``OGCAPI:<collection URL>`` as a raster from
    the collection document alone: the grid's axis names, bounds and resolution from a
    ``domainSet`` and its bands from a ``rangeType`` (members pygeoapi 0.24 does not write;
    without them it guesses the grid from the ``bbox`` at 1e-8 degrees), and the coverage
    URL from a ``coverage`` link typed ``image/tiff; application=geotiff`` (pygeoapi types
    it ``image/tiff``, so the driver answered "API AUTO requested, but not available"). It
    then asks blocks of 256 x 256 cells with ``subset`` and ``scaleSize``
    (:func:`_scale_coverages`). A feature collection's document is returned unchanged.

    OGC API Coverages (/req/coverage/collection-links, /req/geodata-coverage/domainset-op and
    rangetype-op): the document links its own ``domainSet`` and ``rangeType`` by JSON pointer
    (``coverage-domainset``, ``coverage-rangetype``). The CoverageJSON and HTML coverage links
    ask for the whole coverage scaled to at most :data:`WHOLE_COVERAGE_SIDE` cells a side
    (the grid at its own resolution is over the CoverageJSON limit: those links answered 413);
    the GeoTIFF link stays the whole grid.
    """
    from pygeoapi.plugin import load_plugin

    providers = resource.get("providers") or ()
    provider_def = next((p for p in providers if p.get("type") == "coverage"), None)
    if provider_def is None:
        return doc
    for link in doc.get("links") or ():
        if link.get("rel") == _COVERAGE_REL and link.get("type") == "image/tiff":
            link["type"] = GEOTIFF
    provider = load_plugin("provider", provider_def)
    describe = getattr(provider, "describe", None)
    if describe is None:
        return doc
    doc.update(describe())
    ds = provider.dataset
    x, y = provider.axis_labels
    width, height = whole_coverage_size(ds.width, ds.height)
    self_href = next((lk["href"] for lk in doc.get("links") or () if lk.get("rel") == "self"), None)
    for link in doc.get("links") or ():
        if link.get("rel") == _COVERAGE_REL and link.get("type") != GEOTIFF:
            if (width, height) != (ds.width, ds.height):
                link["href"] += f"&scale-size={x}({width}),{y}({height})"
                link["title"] = f"The whole coverage at {width} x {height} cells"
    if self_href:
        here = self_href.split("?")[0] + "?f=json"
        doc["links"].extend(
            [
                {"rel": _DOMAINSET_REL, "type": "application/json",
                 "title": "Domain set (CIS JSON)", "href": f"{here}#/domainSet"},
                {"rel": _RANGETYPE_REL, "type": "application/json",
                 "title": "Range type (CIS JSON)", "href": f"{here}#/rangeType"},
            ]
        )  # fmt: skip
    return doc


def _scale_coverages() -> None:
    """Coverage requests with ``scale-size`` (or GDAL's ``scaleSize``) are resampled.

    pygeoapi 0.24's coverage handler passes its provider only ``bbox``, ``subset``,
    ``properties``, ``datetime`` and the format: a ``scale-size`` is dropped, so GDAL, which
    asks every 256 x 256 block with ``scaleSize``, got the native cells (257 x 257) and
    refused them. The request's value is set in
    :data:`tianya.plugins.raster_provider.SCALE_SIZE` while pygeoapi's handler runs (it
    loads the provider and calls its ``query`` within); the provider parses and applies it.
    """
    import pygeoapi.api.coverages as coverages

    from tianya.plugins.raster_provider import ANSWER, CRS84, RANGE_SUBSET, SCALE_SIZE

    original = inspect.unwrap(coverages.get_collection_coverage)

    def get_collection_coverage(api, request, dataset):
        size = request.params.get("scale-size") or request.params.get("scaleSize")
        token = SCALE_SIZE.set(size or None)
        bands_token = RANGE_SUBSET.set(request.params.get("range-subset"))
        answer: dict = {}
        answer_token = ANSWER.set(answer)
        try:
            headers, status, content = original(api, request, dataset)
        finally:
            ANSWER.reset(answer_token)
            RANGE_SUBSET.reset(bands_token)
            SCALE_SIZE.reset(token)
        return coverage_answer(headers, status, content, answer, CRS84)

    get_collection_coverage.__wrapped__ = original  # type: ignore[attr-defined]
    coverages.get_collection_coverage = get_collection_coverage


def coverage_answer(headers: dict, status, content, answer: dict, crs: str):
    """A coverage answer with what the provider recorded of it (:data:`ANSWER`).

    OGC API Coverages: ``Content-Bbox`` gives the extent of the cells answered and
    ``Content-Crs`` their CRS (core, /req/core/response-headers); an area that holds no cell
    of the grid is a 204 without content (/req/coverage-subset/definition C), which pygeoapi
    answered 400.

    >>> coverage_answer({}, 200, b"x", {"bbox": (1, 2, 3.5, 4)}, "urn:crs")[0]
    {'Content-Bbox': '1,2,3.5,4', 'Content-Crs': '<urn:crs>'}
    >>> coverage_answer({"Content-Type": "a"}, 400, b"x", {"empty": True}, "urn:crs")[1:]
    (204, '')
    """
    if int(status) == 400 and answer.get("empty"):
        headers.pop("Content-Type", None)
        return headers, 204, ""
    if int(status) == 200 and answer.get("bbox"):
        headers["Content-Bbox"] = ",".join(f"{float(v):.10g}" for v in answer["bbox"])
        headers["Content-Crs"] = f"<{crs}>"
    return headers, status, content


def _label_codes_in_html() -> None:
    """Items and item HTML pages show code-list labels; JSON keeps the codes.

    pygeoapi renders the values its provider returned; the HTML pages of a catalogue
    layer get a copy with each code-list value replaced by its label in the page's
    language (:func:`tianya.config.html_labels`).
    """
    import pygeoapi.api.itemtypes as itemtypes

    from tianya.config import html_labels

    original = inspect.unwrap(itemtypes.render_j2_template)
    templates = ("collections/items/index.html", "collections/items/item.html")

    def render_j2_template(config, tpl_config, template, data, locale_=None):
        if template in templates:
            data = html_labels(data, str(locale_ or ""))
        return original(config, tpl_config, template, data, locale_)

    render_j2_template.__wrapped__ = original
    itemtypes.render_j2_template = render_j2_template


def _our_templates_for_tile_matrix_sets() -> None:
    """The ``/TileMatrixSets`` pages use the configured templates too.

    pygeoapi 0.24's ``tilematrixsets`` and ``tilematrixset`` call ``render_j2_template`` with
    the whole configuration as ``tpl_config``, which has no ``path``: those pages were
    rendered from pygeoapi's own templates only (Bootstrap from unpkg.com). The
    configuration's ``server.templates`` is passed instead.
    """
    import pygeoapi.api.tiles as tiles

    original = inspect.unwrap(tiles.render_j2_template)

    def render_j2_template(config, tpl_config, template, data, locale_=None):
        if isinstance(tpl_config, dict) and "path" not in tpl_config and "server" in tpl_config:
            tpl_config = tpl_config["server"].get("templates")
        return original(config, tpl_config, template, data, locale_)

    render_j2_template.__wrapped__ = original  # type: ignore[attr-defined]
    tiles.render_j2_template = render_j2_template
