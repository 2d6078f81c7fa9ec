"""Our pygeoapi feature provider: pygeoapi's arguments in, a store query out.

pygeoapi builds a provider per request, so everything costly (the store and its
connections, the field schema) is cached at module level. Every argument is
applied or refused: ``q`` (free-text search) is refused with a 400, because no
store implements it.
"""

from __future__ import annotations

from functools import lru_cache

from pygeoapi.provider.base import BaseProvider

from layers import access
from layers.catalogue import Layer, get_layer
from layers.errors import InvalidParameter, TianyaError
from layers.query import Query, coerce_value, parse_interval
from layers.store import Store
from layers.stores import open_store
from tianya import request
from tianya.compat import pygeoapi_error
from tianya.settings import data_location

_JSON_TYPES = {
    "string": ("string", None),
    "integer": ("integer", None),
    "number": ("number", None),
    "boolean": ("boolean", None),
    "date": ("string", "date"),
    "datetime": ("string", "date-time"),
}


@lru_cache(maxsize=8)
def store_for(data: str) -> Store:
    """One store per data location for the life of the process."""
    return open_store(data)


def field_schema(layer: Layer, names) -> dict[str, dict]:
    """JSON-schema-like field descriptions (what pygeoapi calls ``fields``)."""
    out = {}
    fmap = layer.field_map
    for n in names:
        f = fmap[n]
        typ, fmt = _JSON_TYPES[f.type]
        d = {"type": typ, "title": f.en, "x-title-zh": f.zh}
        if fmt:
            d["format"] = fmt
        if f.codes is not None:
            d["enum"] = list(f.code_values)
        out[n] = d
    return out


class TianyaProvider(BaseProvider):
    """Feature provider over a :class:`~layers.store.Store` for one catalogue layer.

    Provider definition (``server_config.yml``)::

        - type: feature
          name: tianya.plugins.provider.TianyaProvider
          data: ${TIANYA_DATA:-geodata/tianya.gpkg}
          table: incidents
    """

    def __init__(self, provider_def):
        super().__init__(provider_def)
        try:
            self.layer = get_layer(provider_def.get("table") or provider_def.get("layer"))
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        self.store = store_for(data_location(self.data))
        self.id_field = self.layer.key
        self.time_field = self.layer.temporal
        self.visible = access.visible_fields(self.layer, request.principal())
        self._fields = field_schema(self.layer, self.visible)

    def get_fields(self):
        return self._fields

    def _check_access(self):
        try:
            access.require_read(self.layer, request.principal())
        except TianyaError as err:
            raise pygeoapi_error(err) from None

    def query(
        self,
        offset=0,
        limit=10,
        resulttype="results",
        bbox=None,
        datetime_=None,
        properties=None,
        sortby=None,
        select_properties=None,
        skip_geometry=False,
        q=None,
        filterq=None,
        crs_transform_spec=None,
        language=None,
        **kwargs,
    ):
        self._check_access()
        if q:
            raise pygeoapi_error(
                InvalidParameter("free-text search (q) is not supported by this collection")
            )
        try:
            bb = None
            if bbox:
                bb = tuple(bbox) if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3], bbox[4])
            equals = {k: coerce_value(self.layer, k, v) for k, v in (properties or [])}
            query = Query(
                bbox=bb,
                interval=parse_interval(datetime_) if datetime_ else None,
                where=filterq,
                equals=equals,
                sortby=[(s["property"], s["order"] != "-") for s in (sortby or [])],
                properties=[p for p in (select_properties or self.visible)],
                skip_geometry=bool(skip_geometry),
                offset=int(offset),
                limit=0 if resulttype == "hits" else int(limit),
                visible=self.visible,  # hidden fields refused in any part of the query
            )
            target = crs_transform_spec.target_crs_uri if crs_transform_spec else None
            page = self.store.query(self.layer, query, target_crs=target)
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        return page.to_geojson()

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        self._check_access()
        target = crs_transform_spec.target_crs_uri if crs_transform_spec else None
        try:
            feat = self.store.get(self.layer, str(identifier), target_crs=target)
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        if len(self.visible) != len(self.layer.fields):
            feat["properties"] = {k: v for k, v in feat["properties"].items() if k in self.visible}
        return feat

    # writing (OGC API Features Part 4) -------------------------------------------------------

    def _writable(self):
        if self.layer.id != "incidents":
            raise pygeoapi_error(InvalidParameter(f"collection {self.layer.id!r} is read-only"))

    def create(self, item):
        """Intake of a new case: validation, automatic dispatch, history (one transaction);
        or a key task issued, a milestone added (:func:`tianya.tasks_api.create_item`)."""
        from layers import cases

        if self.layer.id in ("key_tasks", "key_task_milestones"):
            from tianya import tasks_api

            try:
                return tasks_api.create_item(self.store, self.layer.id, cases.parse_body(item))
            except TianyaError as err:
                raise pygeoapi_error(err) from None
        self._writable()
        try:
            feat = cases.create_case(
                self.store,
                cases.parse_body(item),
                who=request.principal(),
                content_crs=request.content_crs(),
            )
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        return feat["id"]

    def update(self, identifier, item):
        """PUT: replace a case's descriptive fields and location (see :func:`replace_case`)."""
        from layers import cases

        self._writable()
        try:
            cases.replace_case(
                self.store,
                str(identifier),
                cases.parse_body(item),
                who=request.principal(),
                content_crs=request.content_crs(),
            )
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        return True

    def delete(self, identifier):
        from layers import lifecycle

        self._writable()
        try:
            lifecycle.delete_case(self.store, str(identifier), who=request.principal())
        except TianyaError as err:
            raise pygeoapi_error(err) from None
        return True
