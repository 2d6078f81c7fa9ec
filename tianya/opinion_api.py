"""Online public opinion (网络舆情) served beside the collections (issue 14, item 5).

=====================================  ==========================================================
``GET /opinion/topics``                the hot topics (:func:`analytics.opinion.hot.hot_topics`):
                                       ``since``, ``until``, ``order`` (volume, growth),
                                       ``limit``, ``category``, ``community``, ``f`` (json, html)
``POST /opinion/topics/{id}/reply``    a topic's reply (:mod:`tianya.opinion_reply`)
=====================================  ==========================================================

The posts and topics themselves are the collections ``public_opinion`` and ``opinion_topics``
(items, filters, tiles as any layer); opinion hot spots are the ``hot-spots`` process with
``"collection": "public_opinion"`` (its options and budgets; ``"filter": "actionable = true"``
for the posts that report something). Everything here is public: a
topic shows its public fields only (the caller's :func:`layers.access.visible_fields` of
``opinion_topics``), and no post's author is read at all. Plain WSGI, no framework.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson
import pandas as pd
from jinja2 import Environment

from layers import access
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound, choices
from layers.query import Query, parse_datetime
from layers.store import Store
from tianya import request
from tianya.web import allow, query, respond

POSTS = get_layer("public_opinion")
TOPICS = get_layer("opinion_topics")
#: Topics one answer lists at most (``limit``), and by default.
MAX_LIMIT, DEFAULT_LIMIT = 50, 10
#: The longest recent window (``until - since``): the growth window before it doubles the read.
MAX_WINDOW = dt.timedelta(days=7)
DEFAULT_WINDOW = dt.timedelta(hours=24)
ORDERS = ("volume", "growth")
FORMATS = ("json", "html")
PARAMS = ("since", "until", "order", "limit", "category", "community", "f")
_TOPICS = re.compile(r"^/opinion/topics/?$")


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path``."""
    return path == "/opinion" or path.startswith("/opinion/")


def store(environ=None) -> Store:
    """The server's store (:func:`tianya.api.store`)."""
    from tianya.api import store as server_store

    return server_store(environ)


def app(environ, start_response):
    """Serve the routes in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    if _TOPICS.match(path):
        allow(environ, "GET", "HEAD")
        doc = hot_topics_document(environ)
        if doc["f"] == "html":
            return respond(
                environ, start_response, topics_html(doc), content_type="text/html; charset=utf-8"
            )
        return respond(environ, start_response, doc)
    from tianya import opinion_reply

    if opinion_reply.handles(path):
        return opinion_reply.app(environ, start_response)  # a topic's reply (POST)
    raise NotFound(f"no resource at {path}: the opinion resource is /opinion/topics")


def _instant(params: dict, name: str) -> dt.datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return parse_datetime(text)
    except InvalidParameter:
        raise
    except ValueError:
        raise InvalidParameter(
            f"{name} must be an RFC 3339 instant like 2026-11-22T08:00:00Z, got {text!r}"
        ) from None


def check_params(environ, s: Store) -> dict:
    """The request's parameters, checked (400 naming the problem and the choices)."""
    p = query(environ, PARAMS)
    f = p.get("f") or "json"
    if f not in FORMATS:
        raise InvalidParameter(choices(f, FORMATS, "f"))
    order = p.get("order") or "volume"
    if order not in ORDERS:
        raise InvalidParameter(choices(order, ORDERS, "order"))
    limit_text = p.get("limit") or str(DEFAULT_LIMIT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise InvalidParameter(
            f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit_text!r}"
        )
    category = p.get("category") or None
    codes = [c.code for c in POSTS.field("category").codes or ()]
    if category is not None and category not in codes:
        raise InvalidParameter(choices(category, codes, "category"))
    community = p.get("community") or None
    names = _community_names(s)
    if community is not None and community not in names:
        raise InvalidParameter(choices(community, sorted(names), "community"))
    until, since = _instant(p, "until"), _instant(p, "since")
    until_kind = "requested"
    if until is None:
        now = dt.datetime.now(dt.UTC)
        _, temporal = s.extent(POSTS)
        latest = temporal[1] if temporal else None
        latest = parse_datetime(str(latest)) if latest else None
        until, until_kind = (latest, "latest_post") if latest and latest < now else (now, "now")
    if since is None:
        since = until - DEFAULT_WINDOW
    if not since < until:
        raise InvalidParameter(
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        )
    if until - since > MAX_WINDOW:
        raise InvalidParameter(
            f"the window since .. until may span at most {MAX_WINDOW.days} days "
            f"(got {since.isoformat()} .. {until.isoformat()})"
        )
    return {
        "f": f,
        "order": order,
        "limit": int(limit_text),
        "category": category,
        "community": community,
        "since": since,
        "until": until,
        "until_kind": until_kind,
        "names": names,
    }


def _community_names(s: Store) -> dict[str, str]:
    frame = s.read_frame(get_layer("communities"), Query(properties=["code", "name"], limit=0))
    return dict(zip(frame["code"], frame["name"], strict=True))


def hot_topics_document(environ) -> dict:
    """``GET /opinion/topics``: the hot topics of the window as a JSON-ready dict."""
    from analytics.opinion import hot

    s = store(environ)
    c = check_params(environ, s)
    since, until = c["since"], c["until"]
    visible = access.visible_fields(TOPICS, request.principal())
    # the posts of both windows, the topics with a post since the first (bounded by the week)
    tables = hot.read_opinion(s, since=since - (until - since), until=until, fields=visible)
    if tables is None:
        raise NotFound("this server's data hold no opinion posts (written before issue 14)")
    posts, topics = tables
    if "geometry" in topics.columns:  # the topic's place as lon/lat
        pts = topics.geometry
        topics = pd.DataFrame(topics.drop(columns="geometry"))
        topics["lon"] = [None if g is None or g.is_empty else round(g.x, 6) for g in pts]
        topics["lat"] = [None if g is None or g.is_empty else round(g.y, 6) for g in pts]
    table = hot.hot_topics(
        posts,
        topics,
        until=pd.Timestamp(until),
        since=pd.Timestamp(since),
        order=c["order"],
        limit=c["limit"],
        category=c["category"],
        community=c["community"],
    )
    cat = POSTS.field("category")
    status = TOPICS.field("status")
    rows = orjson.loads(table.to_json(orient="records", date_format="iso"))
    allowed = {*hot.TOPIC_COLUMNS, *visible, "lon", "lat"}
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if k in allowed}
        r["category_label"] = cat.label(r["category"], "zh") if r.get("category") else None
        r["category_label_en"] = cat.label(r["category"], "en") if r.get("category") else None
        r["community"] = c["names"].get(r.get("community_code"), r.get("community_code"))
        if r.get("status"):
            r["status_label"] = status.label(r["status"], "zh")
        out.append(r)
    return {
        "f": c["f"],
        "since": since.isoformat(),
        "until": until.isoformat(),
        "until_kind": c["until_kind"],
        "order": c["order"],
        "limit": c["limit"],
        "category": c["category"],
        "community": c["community"],
        "definitions": hot.HOT_DEFINITIONS,
        "number_returned": len(out),
        "topics": out,
    }


_HTML = Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>网络舆情热点话题 Hot topics</title>
<style>body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;
font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px}td.n{text-align:right}</style>
</head><body><h1>网络舆情热点话题 Hot topics</h1>
<p id="window">{{ d.since }} – {{ d.until }} ({{ d.until_kind }}) · 排序 order: {{ d.order }}</p>
<table id="topics"><tr><th>话题 Topic</th><th>类别 Category</th><th>社区(村) Community</th>
<th>地点 Place</th><th>近期帖文 Recent</th><th>此前 Before</th><th>增长 Growth</th>
<th>帖文总数 Posts</th><th>案卷 Case</th><th>状态 Status</th><th>回应 Reply</th></tr>
{% for t in d.topics %}<tr><td>{{ t.topic_id }}</td><td>{{ t.category_label or '—' }}</td>
<td>{{ t.community or '—' }}</td><td>{{ t.place_name or '—' }}</td>
<td class="n">{{ t.posts_recent }}</td><td class="n">{{ t.posts_before }}</td>
<td class="n">{{ '%.1f' % t.growth }}</td><td class="n">{{ t.posts }}</td>
<td>{{ t.case_id or '—' }}</td><td>{{ t.status_label or t.status or '—' }}</td>
<td>{{ t.reply_note or '—' }}</td></tr>{% endfor %}</table>
{% if not d.topics %}<p id="none">此时段无热点话题。No topic was posted about in this
 window.</p>{% endif %}
<p id="definitions">{{ d.definitions }}</p>
</body></html>
""")


def topics_html(doc: dict) -> str:
    """The HTML page of :func:`hot_topics_document`'s answer (no asset from anywhere)."""
    return _HTML.render(d=doc)
