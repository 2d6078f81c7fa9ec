"""A reply or resolution note recorded against an opinion topic (issue 14, item 4).

==========================================  =====================================================
``POST /opinion/topics/{topicId}/reply``    body ``{"note": "...", "status": "replied"}``
                                            (``status``: ``replied``, the default, or
                                            ``closed``); dispatcher or admin
                                            (:func:`analytics.opinion.ingest.reply_topic`);
                                            answers the topic as the caller may see it
==========================================  =====================================================

Served through :mod:`tianya.opinion_api` (which routes ``/opinion/``). Plain WSGI.
"""

from __future__ import annotations

import re

import shapely

from analytics.opinion.ingest import TOPICS, reply_topic, require_reply_role
from layers import access
from layers.errors import InvalidParameter
from tianya import request
from tianya.web import allow, json_body, query, respond

_REPLY = re.compile(r"^/opinion/topics/([^/]+)/reply/?$")
#: Body members a reply takes.
MEMBERS = ("note", "status")


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path``."""
    return bool(_REPLY.match(path))


def app(environ, start_response):
    """``POST /opinion/topics/{topicId}/reply``: 401/403 by role, then the body (400)."""
    from tianya.api import store

    topic_id = _REPLY.match(environ.get("PATH_INFO", "")).group(1)
    allow(environ, "POST")
    query(environ, ("f",))
    who = request.principal()
    require_reply_role(who)
    doc = json_body(environ, cap=16 * 1024)
    extra = sorted(set(doc) - set(MEMBERS))
    if extra:
        raise InvalidParameter(
            f"unknown member(s) {', '.join(extra)}; a reply takes: {', '.join(MEMBERS)}"
        )
    s = store(environ)
    props = reply_topic(s, topic_id, doc.get("note"), who, status=doc.get("status", "replied"))
    feat = s.get(TOPICS, topic_id)
    seen = set(access.visible_fields(TOPICS, who))
    geom = feat.get("geometry")
    if isinstance(geom, shapely.Geometry):
        geom = shapely.geometry.mapping(geom)
    body = {
        "type": "Feature",
        "id": topic_id,
        "geometry": geom,
        "properties": {k: v for k, v in props.items() if k in seen},
    }
    return respond(environ, start_response, body)
