"""OGC API - Processes adapters: one pygeoapi processor per analysis, and their registry.

Thin adapters, no web framework: each processor checks its inputs, reads a catalogue layer
through the store (:func:`layers.stores.open_store` of the ``data`` setting), calls the
analytics library and returns GeoJSON (CRS84) or, for kernel density, a GeoTIFF.

- ``hot-spots``: Getis-Ord Gi* (:func:`analytics.gistar.hot_spots`), GeoJSON;
- ``optimized-hot-spots``: Optimized Hot Spot Analysis (:mod:`analytics.ohsa`), GeoJSON;
- ``local-moran``: local Moran's I / LISA (:func:`analytics.moran.local_moran`), GeoJSON;
- ``kernel-density``: quartic kernel density (:func:`analytics.density.kernel_density`),
  GeoTIFF (``image/tiff``);
- ``density-clusters``: DBSCAN / HDBSCAN clusters with hull polygons, GeoJSON;
- ``emerging-hot-spots``: Emerging Hot Spot Analysis (:mod:`analytics.emerging`), GeoJSON;
- ``forecast``: case counts per cell, community or major class forecast 1-4 periods ahead
  (:mod:`analytics.forecast`, :mod:`tianya.plugins.forecast_process`), GeoJSON.

The code is in modules named for what they do; this one is the registry pygeoapi loads by
name (``server_config.yml`` names ``tianya.plugins.processes.<Class>``, see
:func:`process_resources`) and the check of the execute request document:

- :mod:`tianya.plugins.options`: :class:`~tianya.plugins.options.Option` (an input's schema
  and check) and the option sets shared by the processes;
- :mod:`tianya.plugins.budgets`: the work budgets, the arithmetic that bounds work before
  it is allocated;
- :mod:`tianya.plugins.analysis`: :class:`~tianya.plugins.analysis.AnalysisProcessor`, the
  shared machinery (input checks, reading the layer, GeoJSON output);
- :mod:`tianya.plugins.hotspots` (Gi*, optimized hot spots, local Moran, emerging hot
  spots) and :mod:`tianya.plugins.density` (kernel density, clusters): the six processors.

Every process takes ``collection`` (a catalogue layer id), an optional ``filter`` (CQL2 text,
or CQL2 JSON as an object or text) and ``datetime`` (an instant or ``start/end`` interval on
the layer's temporal field), plus its analysis options (see each class's ``OPTIONS``).

Errors: invalid inputs raise :class:`~layers.errors.InvalidParameter` (or
:class:`~analytics.errors.AnalyticsError`, its subclass) with a message listing the valid
choices; reading a layer the caller may not see raises
:class:`~layers.errors.NotAuthenticated` / :class:`~layers.errors.Forbidden`.  pygeoapi 0.24
turns *every* exception raised inside ``execute`` into a failed job and HTTP 400, so the job
manager (:class:`~tianya.plugins.jobs.JobManager`) calls
:meth:`AnalysisProcessor.check_inputs` before
the job is created and answers with the error's own status (400, 401, 403) in both
synchronous and asynchronous mode. A synchronous run that fails later keeps its status too
(a data-dependent 400, a store outage's 503, 500 for a fault of ours); the job is recorded
as failed either way.

Work budgets: every input that sizes the work (grid cells, raster pixels and the kernel's
stencil, time steps, neighbours, permutations, DBSCAN's eps) is checked against the ``MAX_*``
settings (``TIANYA_MAX_*``, defaults in :mod:`tianya.plugins.budgets`) before anything is
allocated: in :meth:`AnalysisProcessor.check_inputs` over the layer's extent, again in ``run``
over the selection; over budget is a 400 that states the limit.  The runs themselves execute
in :mod:`tianya.plugins.runner`'s bounded pool of child processes (memory and time limits).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from layers.errors import InvalidParameter
from tianya.plugins.analysis import AnalysisProcessor
from tianya.plugins.density import DensityClustersProcessor, KernelDensityProcessor
from tianya.plugins.forecast_process import ForecastProcessor
from tianya.plugins.hotspots import (
    EmergingHotSpotsProcessor,
    HotSpotsProcessor,
    LocalMoranProcessor,
    OptimizedHotSpotsProcessor,
)
from tianya.plugins.options import Option

__all__ = [
    "PROCESSORS",
    "AnalysisProcessor",
    "DensityClustersProcessor",
    "EmergingHotSpotsProcessor",
    "ForecastProcessor",
    "HotSpotsProcessor",
    "KernelDensityProcessor",
    "LocalMoranProcessor",
    "Option",
    "OptimizedHotSpotsProcessor",
    "check_execute_request",
    "process_resources",
]


def check_execute_request(body: bytes | str) -> None:
    """Check an OGC API execute request document's members (not the inputs' values).

    pygeoapi answers ``subscriber``, ``outputs`` or ``inputs`` of the wrong JSON type, or a
    document that is not an object, with a 500; this raises :class:`InvalidParameter` (400)
    instead.  So is a body pygeoapi cannot parse without a 500: not UTF-8, nested deeper than
    the parser's recursion allows, or an integer of more digits than Python converts (4,300);
    any other body that is not JSON is a 400 too.  An empty body is left to pygeoapi.
    """
    if not body:
        return
    try:
        text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    except UnicodeDecodeError as err:
        raise InvalidParameter(
            f"the execute request is not UTF-8 text (invalid byte at "
            f"position {err.start}); send a JSON object in UTF-8"
        ) from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise InvalidParameter(
            "the execute request nests JSON too deeply to be read; send a JSON object with 'inputs'"
        ) from None
    except ValueError as err:
        raise InvalidParameter(
            f"the execute request is not valid JSON: {err}"[:300]
            + "; send a JSON object with 'inputs' (integers of at most "
            "4,300 digits)"
        ) from None
    if not isinstance(doc, dict):
        raise InvalidParameter(
            "the execute request must be a JSON object with 'inputs' "
            "(and optionally 'outputs', 'response', 'subscriber')"
        )
    for name in ("inputs", "outputs"):
        if doc.get(name) is not None and not isinstance(doc[name], dict):
            raise InvalidParameter(
                f"{name!r} of the execute request must be a JSON object, got {doc[name]!r}"[:300]
            )
    if doc.get("response", "raw") not in ("raw", "document"):
        raise InvalidParameter(
            f"'response' must be 'raw' or 'document', got {doc['response']!r}"[:300]
        )
    sub = doc.get("subscriber")
    if sub:
        if not isinstance(sub, dict):
            raise InvalidParameter(
                "'subscriber' must be a JSON object with 'successUri' "
                "(and optionally 'inProgressUri', 'failedUri')"
            )
        for key in ("successUri", "inProgressUri", "failedUri"):
            if (key == "successUri" or sub.get(key) is not None) and not isinstance(
                sub.get(key), str
            ):
                raise InvalidParameter(f"subscriber {key!r} must be a URL string")
            url = sub.get(key)
            if url is not None and not _callback_url(url):
                raise InvalidParameter(
                    f"subscriber {key!r} must be an http(s) URL with a host, got {url!r}"[:300]
                )


def _callback_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host (a subscriber's callback)."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


#: The processors by process id.
PROCESSORS: dict[str, type[AnalysisProcessor]] = {
    cls.ID: cls
    for cls in (
        HotSpotsProcessor,
        OptimizedHotSpotsProcessor,
        LocalMoranProcessor,
        KernelDensityProcessor,
        DensityClustersProcessor,
        EmergingHotSpotsProcessor,
        ForecastProcessor,
    )
}


def process_resources() -> dict[str, dict]:
    """pygeoapi ``resources`` entries (``type: process``) for every analysis, by process id."""
    return {
        # named through this module, which re-exports every processor class
        pid: {"type": "process", "processor": {"name": f"{__name__}.{cls.__name__}"}}
        for pid, cls in PROCESSORS.items()
    }
