"""Every replacement of pygeoapi behaviour, in one place.

pygeoapi is used as a library: its Flask app serves, our plugins plug in. Where its
behaviour has to change, the change is made here (never by editing pygeoapi) and
:func:`install` applies them all when the app is created.
"""

from __future__ import annotations

from layers import access
from layers.catalogue import LAYERS
from tianya import request


def install() -> None:
    """Apply every replacement (idempotent)."""
    _use_orjson_for_items()
    _redact_logs()
    _skip_identity_bbox_transform()
    _list_readable_collections_only()


def _redact_logs() -> None:
    """No personal data or key in pygeoapi's log (it logs refused request bodies)."""
    import logging

    from tianya.safety import RedactFilter

    logging.getLogger("pygeoapi").addFilter(RedactFilter())


def _list_readable_collections_only() -> None:
    """``/collections`` lists only what the caller's role may read (as GeoServer does).

    pygeoapi builds the list from its whole configuration; a public caller would
    see ``poverty_relief`` listed, then get 401 on it. The list is filtered with
    :func:`layers.access.can_read` for the request's principal (the shell has set
    it; the ``/collections`` cache is kept per role).
    """
    import pygeoapi.api as api_module

    original = getattr(api_module.filter_dict_by_key_value, "__wrapped__",
                       api_module.filter_dict_by_key_value)

    def filter_dict_by_key_value(dict_, key, value):
        found = original(dict_, key, value)
        if value != "collection":
            return found
        return {k: v for k, v in found.items()
                if k not in LAYERS or access.can_read(LAYERS[k], request.principal())}

    filter_dict_by_key_value.__wrapped__ = original
    api_module.filter_dict_by_key_value = filter_dict_by_key_value


def _skip_identity_bbox_transform() -> None:
    """Pass a bbox through when its CRS is the storage CRS.

    pygeoapi transforms every items ``bbox`` to the storage CRS, even CRS84 to
    CRS84, building a pyproj transformer and calling ``CRS.to_epsg()`` each time
    (12 ms a request, a third of a 1000-feature page from PostGIS).
    """
    import pygeoapi.api.itemtypes as itemtypes

    original = getattr(itemtypes.transform_bbox, "__wrapped__", itemtypes.transform_bbox)

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
        opts = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if pretty else 0)
        text = orjson.dumps(dict_, default=json_serial, option=opts).decode("utf-8")
        return text.replace("<", "\\u003c").replace(">", "\\u003e")

    itemtypes.to_json = to_json
