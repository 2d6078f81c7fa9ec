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
        or a key task issued, a milestone added (:func:`create_key_work`)."""
        from layers import cases

        if self.layer.id in ("key_tasks", "key_task_milestones"):
            try:
                return create_key_work(self.store, self.layer.id, cases.parse_body(item))
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


#: Members of a key task's or milestone's Feature besides ``properties`` and ``geometry``.
_FEATURE_MEMBERS = {"type", "id", "geometry", "properties", "bbox", "links", "note"}


def crs84(content_crs: str | None) -> None:
    """Key-task geometries are taken in CRS84 only: 400 for another ``Content-Crs``."""
    from layers.cases import check_crs
    from layers.errors import InvalidFeature

    crs = check_crs(content_crs)
    if crs != "OGC:CRS84":
        raise InvalidFeature(
            f"Content-Crs {crs}: key task geometries are taken in OGC:CRS84 (longitude, "
            "latitude) only"
        )


def create_key_work(store: Store, layer_id: str, doc: dict) -> str:
    """A POST to the items of ``key_tasks`` (a task issued, with a ``milestones`` member
    listing ``{title, due_date}``) or of ``key_task_milestones`` (a milestone added: a Feature
    with a null geometry and properties ``task_no``, ``title``, ``due_date``); its id.

    The rules are :mod:`layers.key_tasks`' (:func:`~layers.key_tasks.create_task`,
    :func:`~layers.key_tasks.add_milestone`); the other writes are :mod:`tianya.tasks_api`.
    """
    from layers import key_tasks, lifecycle
    from layers.cases import now_utc
    from layers.errors import InvalidFeature, NotFound

    who = request.principal()
    if layer_id == "key_tasks":
        crs84(request.content_crs())
        extra = sorted(set(doc) - _FEATURE_MEMBERS - {"milestones"})
        if extra:
            raise InvalidFeature(f"unknown member {extra[0]!r} in the Feature")
        rows = doc.get("milestones") or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidFeature("milestones must be a list of {title, due_date} objects")
        return key_tasks.create_task(store, doc, who, now=now_utc(), milestones=rows)["id"]
    if doc.get("type") != "Feature" or doc.get("geometry") is not None:
        raise InvalidFeature(
            "body must be a GeoJSON Feature with a null geometry and properties task_no, "
            "title and due_date"
        )
    extra = sorted(set(doc) - _FEATURE_MEMBERS)
    if extra:
        raise InvalidFeature(f"unknown member {extra[0]!r} in the Feature")
    props = doc.get("properties")
    if not isinstance(props, dict):
        raise InvalidFeature("properties must be a JSON object")
    props = dict(props)
    task_no = props.pop("task_no", None)
    if not isinstance(task_no, str) or not task_no:
        raise InvalidFeature("property 'task_no' is required: the task the milestone belongs to")
    lifecycle.require_role(who, "add a milestone", key_tasks.EDIT_ROLES)
    try:
        store.get(key_tasks.TASKS, task_no)
    except NotFound:
        raise InvalidFeature(f"property 'task_no': there is no key task {task_no!r}") from None
    return key_tasks.add_milestone(store, task_no, props, who, now=now_utc())["milestone_id"]
