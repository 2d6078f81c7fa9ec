"""What the OpenAPI 3.0 conformance modules share: the served document, and probes.

A :class:`Probe` is one real request with the status the server answers it with today and
the path of the document that describes it. :func:`problems` checks the answer against the
document (/req/oas30/completeness, /req/oas30/exceptions-codes): the path and method are
documented, the URL is an instance of the path, the status has its own response object (not
``default``), the answer's media type is one the response lists and its body validates
against that media type's schema, and the headers the response documents are sent.
:func:`unknown_parameter` tells a 400 that refuses a parameter as unknown (the document
listed a parameter the server does not take: /req/oas30/oas-impl).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from conftest import KEYS
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV30SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT4

#: The media type of the JSON API definition (Common 19-072 /req/oas30/oas-definition-1).
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
_DOC = "urn:tianya:openapi"
_JSON_TYPES = re.compile(r"^application/([a-z.+-]*\+)?json$|^application/schema\+json$")
#: Headers a response documents that are not sent on every answer (only when known).
_SOMETIMES = {"retry-after", "accept-patch"}
_DOCS: dict[tuple[str, str | None], dict] = {}


_LIMITED: dict[str, object] = {}


def no_heavy_reads_server(store_kind: str, request):
    """A live server on the session sample (GeoPackage or PostGIS) that refuses every heavy
    read (``TIANYA_HEAVY_READS=0``): its 429 answers, as documented, without racing clients.
    Started once a store, stopped when the test process exits."""
    if store_kind not in _LIMITED:
        import atexit

        from conftest import LiveServer

        data = request.getfixturevalue(
            "pg_sample_url" if store_kind == "postgis" else "sample_gpkg"
        )
        server = _LIMITED[store_kind] = LiveServer(data, extra_env={"TIANYA_HEAVY_READS": "0"})
        atexit.register(server.stop)
    return _LIMITED[store_kind]


def headers(role: str | None = None, **extra: str) -> dict[str, str]:
    """Request headers with the API key of ``role`` (``"nope"``: an unknown key)."""
    h = dict(extra)
    if role == "nope":
        h["Authorization"] = "Bearer not-a-key"
    elif role:
        h["Authorization"] = f"Bearer {KEYS[role]}"
    return h


def document(server, role: str | None = "admin") -> dict:
    """The OpenAPI document ``server`` serves to ``role`` (fetched once)."""
    key = (server.url, role)
    if key not in _DOCS:
        r = requests.get(f"{server.url}/openapi?f=json", headers=headers(role), timeout=60)
        assert r.status_code == 200, r.text[:300]
        _DOCS[key] = r.json()
    return _DOCS[key]


def spec_errors(doc: dict) -> list[str]:
    """What makes ``doc`` invalid OpenAPI 3.0 (openapi-spec-validator)."""
    return [
        f"{'/'.join(map(str, e.path))}: {e.message[:300]}"
        for e in OpenAPIV30SpecValidator(doc).iter_errors()
    ]


def resolve(doc: dict, node: dict) -> dict:
    """``node``, or what its local ``$ref`` names."""
    while isinstance(node, dict) and "$ref" in node:
        target: object = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
        node = target  # type: ignore[assignment]
    return node


def template(path: str) -> re.Pattern:
    """The URL paths an OpenAPI path template stands for.

    >>> bool(template("/open311/v2/services/{service_code}.{format}").fullmatch(
    ...     "/open311/v2/services/road.json"))
    True
    """
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/.]+" if p.startswith("{") else re.escape(p) for p in parts))


def schema_errors(doc: dict, schema: dict, value) -> list[str]:
    """What makes ``value`` invalid against ``schema`` (a schema of ``doc``)."""
    registry = Registry().with_resource(_DOC, DRAFT4.create_resource(doc))
    if "$ref" in schema:
        schema = {"$ref": _DOC + schema["$ref"]}
    else:  # an inline schema: its local $refs name the document's components
        schema = {**schema, "components": doc["components"]}
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in OAS30Validator(schema, registry=registry).iter_errors(value)
    ]


@dataclass(frozen=True)
class Probe:
    """A request, the status the server answers it with, and the path documenting it."""

    method: str
    url: str
    path: str
    status: int
    role: str | None = None
    body: object = None
    content_type: str | None = None
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        who = f" as {self.role}" if self.role else ""
        return f"{self.method} {self.url}{who} -> {self.status}"

    def send(self, server, values: dict[str, str] | None = None) -> requests.Response:
        """The answer of ``server`` (``{name}`` in the URL filled from ``values``)."""
        url = self.url.format(**(values or {}))
        h = headers(self.role, **self.extra)
        data = self.body
        if data is not None and not isinstance(data, bytes | str):
            data = json.dumps(data)
        if self.content_type:
            h["Content-Type"] = self.content_type
        return requests.request(self.method, server.url + url, data=data, headers=h, timeout=120)


def problems(doc: dict, probe: Probe, r: requests.Response) -> list[str]:
    """Where the answer ``r`` to ``probe`` is not what ``doc`` says (see the docstring)."""
    out = []
    if r.status_code != probe.status:
        return [f"{probe}: answered {r.status_code} {r.text[:200]}"]
    if not template(probe.path).fullmatch(urlsplit(r.request.url).path):
        out.append(f"{probe}: the URL is not an instance of {probe.path}")
    item = doc["paths"].get(probe.path)
    if item is None:
        return [*out, f"{probe}: {probe.path} is not in the document"]
    op = item.get(probe.method.lower())
    if op is None:
        return [*out, f"{probe}: {probe.method} {probe.path} is not documented"]
    response = op["responses"].get(str(probe.status))
    if response is None:
        listed = sorted(op["responses"])
        return [*out, f"{probe}: status {probe.status} is not documented ({listed})"]
    response = resolve(doc, response)
    content = response.get("content") or {}
    if probe.method == "HEAD" or probe.status in (204, 304):
        if r.content:
            out.append(f"{probe}: a body on a {probe.status}")
    elif r.content:
        parts = [p.strip() for p in r.headers.get("Content-Type", "").split(";")]
        full = ";".join([parts[0], *(p for p in parts[1:] if not p.lower().startswith("charset"))])
        media = full if full in content else parts[0]  # a type with its parameters, or without
        if media not in content:
            out.append(f"{probe}: {media!r} is not among the documented {sorted(content)}")
        else:
            schema = content[media].get("schema") or {}
            if not resolve(doc, schema):
                out.append(f"{probe}: {media} has an empty schema")
            elif _JSON_TYPES.match(media):
                out += [f"{probe}: {e}" for e in schema_errors(doc, schema, r.json())]
    elif content:
        out.append(f"{probe}: no body, but the document gives {sorted(content)}")
    for name in response.get("headers") or {}:
        if name.lower() not in _SOMETIMES and name not in r.headers:
            out.append(f"{probe}: the documented header {name} is not sent")
    return out


def unknown_parameter(r: requests.Response, name: str) -> bool:
    """Whether ``r`` refuses the parameter ``name`` as one the resource does not take."""
    if r.status_code != 400:
        return False
    text = r.text
    q = re.escape(repr(name))
    return bool(
        re.search(rf"{q} is not a valid (\w+ )?parameter|unknown (\w+ )?parameter {q}", text)
        or re.search(rf"{q} is not valid here", text)
    )


def example(doc: dict, param: dict):
    """A value for ``param`` from its schema (enum, default or example), or ``None``."""
    schema = resolve(doc, param.get("schema") or {})
    for value in (param.get("example"), schema.get("example"), schema.get("default")):
        if value is not None:
            return value
    if schema.get("enum"):
        return schema["enum"][0]
    items = resolve(doc, schema.get("items") or {})
    if items.get("enum"):
        return items["enum"][0]
    return None


def operations(doc: dict, pattern: str, methods: tuple[str, ...] = ("get",)):
    """``(path, method, operation)`` of ``doc`` whose path matches ``pattern`` fully."""
    for path, item in doc["paths"].items():
        if re.fullmatch(pattern, path):
            for method, op in item.items():
                if method in methods and isinstance(op, dict):
                    yield path, method, op


def landing_links(server) -> dict[str, dict]:
    """The landing page's links by ``rel`` (the first of each)."""
    r = requests.get(f"{server.url}/?f=json", timeout=60)
    assert r.status_code == 200, r.text[:300]
    out: dict[str, dict] = {}
    for link in r.json()["links"]:
        out.setdefault(link["rel"], link)
    return out
