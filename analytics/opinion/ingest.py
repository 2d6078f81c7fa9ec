"""Store monitored posts: understood, grouped into topics, and topics into cases (issue 14).

:func:`ingest` runs :func:`~analytics.opinion.pipeline.understand` on a batch of posts with
the topic state carried in the store, and writes in ONE store transaction:

- the new posts (``public_opinion``; a ``post_id`` already stored is skipped, so a post
  seen twice is stored once),
- their topics (``opinion_topics``: inserted or updated: post count, last post),
- the cases opened from topics that became actionable (:data:`CaseRule`), through the
  normal intake (:func:`layers.cases.create_case`, channel ``public_opinion``,
  dispatched like any case), linked both ways (``topic.case_id`` and each post's
  ``case_id``); a later post of a topic that has a case attaches to that case,
- the topic state (:data:`STATE`, a table outside the catalogue, not served).

A crash anywhere in a batch rolls the whole batch back: the next run finds the same
posts unseen and the same state, so nothing is lost or doubled and a case is opened once
(its creation and the topic's link commit together).

:func:`reply_topic` records a reply or resolution note against a topic.

Examples
--------
>>> import geopandas as gpd, pandas as pd, shapely
>>> from analytics.opinion.gazetteer import build_gazetteer
>>> from layers.gpkg import GeoPackageStore
>>> import tempfile, os
>>> comm = gpd.GeoDataFrame({"code": ["C1"], "name": ["红塘村"], "kind": ["village"]},
...     geometry=[shapely.box(109.3, 18.3, 109.4, 18.4)], crs=4326)
>>> store = GeoPackageStore(os.path.join(tempfile.mkdtemp(), "o.gpkg"))
>>> posts = pd.DataFrame({"post_id": ["p1", "p2"], "platform": ["weibo", "forum"],
...     "text": ["红塘村的路灯坏了好几天", "今天天气真好"],
...     "posted_at": pd.to_datetime(["2026-01-01 12:00", "2026-01-01 13:00"], utc=True)})
>>> r = ingest(store, posts, build_gazetteer({"communities": comm}), cases=None)
>>> r.posts, r.topics_new, r.skipped
(2, 1, 0)
>>> ingest(store, posts, build_gazetteer({"communities": comm}), cases=None).skipped
2
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pygeofilter import ast

from analytics.opinion.category import CategoryModel
from analytics.opinion.gazetteer import Gazetteer
from analytics.opinion.pipeline import understand
from analytics.opinion.topics import TopicState
from layers import access
from layers.catalogue import CATEGORIES, OPINION_PLATFORMS, OPINION_STATE, Layer, get_layer
from layers.errors import InvalidFeature, InvalidParameter, NotFound
from layers.query import MAX_LIMIT, Query
from layers.store import Store

__all__ = [
    "STATE",
    "CaseRule",
    "IngestResult",
    "ingest",
    "load_state",
    "mask_mentions",
    "reply_topic",
    "require_reply_role",
    "stored_ids",
    "topic_key",
    "validate_posts",
]

log = logging.getLogger(__name__)

POSTS = get_layer("public_opinion")
TOPICS = get_layer("opinion_topics")

#: The state table (:data:`layers.catalogue.OPINION_STATE`, outside the catalogue: not served).
STATE = OPINION_STATE

#: Default grouping window (hours): a topic stays open this long after its last post.
WINDOW_HOURS = 72.0

_PLATFORMS = frozenset(c.code for c in OPINION_PLATFORMS)
_CATEGORIES = {c.code: c for c in CATEGORIES}
#: Principal that opens cases from topics (trusted: a topic's first post may be old).
MONITOR = access.Principal("public opinion monitor", "dispatcher")
_CHUNK = 500


@dataclass(frozen=True)
class CaseRule:
    """When an actionable topic becomes a case.

    A topic with a known place (a point inside the district) and a category opens ONE case
    when it has at least ``min_posts`` posts, or when one post placed it with a confidence
    of at least ``confident`` (a full name or an exact grid/landmark match: 0.95).
    """

    min_posts: int = 3
    confident: float = 0.95

    def __post_init__(self) -> None:
        if self.min_posts < 1:
            raise InvalidParameter(f"min_posts must be at least 1 (got {self.min_posts})")
        if not 0 < self.confident <= 1.0:
            raise InvalidParameter(f"confident must be in (0, 1] (got {self.confident})")

    def opens(self, posts: int, confidence: float, has_place: bool, category) -> bool:
        """Whether a topic with these figures opens a case."""
        if not has_place or category is None:
            return False
        return posts >= self.min_posts or confidence >= self.confident


@dataclass
class IngestResult:
    """What one :func:`ingest` stored."""

    posts: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    topics_new: int = 0
    topics_updated: int = 0
    cases_opened: list[str] = field(default_factory=list)
    posts_attached: int = 0


_MENTION = re.compile(r"@[^\s@:：,，。.!！?？/）)】]{1,30}")


def mask_mentions(text: str) -> str:
    """``text`` with every @mention masked: a mention names a person (``//@某人:`` → ``//@***:``).

    The public ``text`` of a post; the original is kept in the hidden ``original_text`` (only
    when a mention was masked).

    Examples
    --------
    >>> mask_mentions("转发微博//@老爸茶哥2438: 路灯坏了 @三亚12345 ")
    '转发微博//@***: 路灯坏了 @*** '
    """
    return _MENTION.sub("@***", text)


def topic_key(n: int) -> str:
    """The stored ``topic_id`` of the grouping's topic ``n``: ``T`` + at least 6 digits."""
    return f"T{int(n):06d}"


# --- validation ------------------------------------------------------------------------------


def validate_posts(posts: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Keep the well-formed posts; the others with the reason each is refused.

    A post needs a non-empty ``post_id`` (at most 100 characters), ``text`` (a non-empty
    string), ``posted_at`` (a date-time with its offset, or a tz-aware timestamp) and a
    ``platform`` among the catalogue's codes; ``lon``/``lat``, when given, are numbers in
    range, both or neither. A ``post_id`` repeated within the batch keeps its first row.

    Returns
    -------
    (DataFrame, list of (str, str))
        The valid posts (``posted_at`` as UTC timestamps) and ``(post id, or ``#`` and the
        row's index label, reason)`` for each refused one.
    """
    bad: list[tuple[str, str]] = []
    keep: list[int] = []
    times: list[pd.Timestamp] = []
    seen: set[str] = set()
    cols = set(posts.columns)
    read = [c for c in ("post_id", "text", "platform", "posted_at", "lon", "lat",
                        "repost_of", "reply_to") if c in cols]  # fmt: skip
    n = len(posts)
    columns = [posts[c].tolist() for c in read]
    labels = posts.index.tolist()
    for i in range(n):
        row = {c: col[i] for c, col in zip(read, columns, strict=True)}
        pid = row.get("post_id")
        name = str(pid) if isinstance(pid, str) and pid else f"#{labels[i]}"
        why = _why_bad(row, cols)
        t = None
        if why is None:
            t, why = _parse_time(row.get("posted_at"))
        if why is None and pid in seen:
            why = "post_id repeated in the batch (the first is kept)"
        if why is not None or t is None:
            bad.append((name, why or "no posted_at"))
            continue
        seen.add(str(pid))
        keep.append(i)
        times.append(t)
    good = posts.iloc[keep].copy()
    good["posted_at"] = pd.to_datetime(pd.Series(times, index=good.index, dtype=object), utc=True)
    return good.reset_index(drop=True), bad


def _why_bad(row: dict, cols: set) -> str | None:
    pid = row.get("post_id")
    if not isinstance(pid, str) or not pid.strip():
        return "no post_id (a non-empty string)"
    if len(pid) > 100:
        return f"post_id is {len(pid)} characters long (at most 100)"
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        return "no text"
    plat = row.get("platform")
    if plat not in _PLATFORMS:
        return f"platform {plat!r} is not one of {', '.join(sorted(_PLATFORMS))}"
    if "lon" in cols or "lat" in cols:
        lon, lat = _num(row.get("lon")), _num(row.get("lat"))
        if lon is False or lat is False:
            return f"lon/lat must be numbers (got {row.get('lon')!r}, {row.get('lat')!r})"
        if (lon is None) != (lat is None):
            return "lon and lat come together (one of them is missing)"
        if lon is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return f"lon/lat out of range ({lon}, {lat})"
    for k in ("repost_of", "reply_to"):
        v = row.get(k)
        if v is not None and not isinstance(v, str) and not _is_missing(v):
            return f"{k} must be a post_id string (got {v!r})"
    return None


def _is_missing(v) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _num(v):
    """A float, None for missing, False when not a number."""
    if _is_missing(v):
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        return False
    return float(v)


def _parse_time(v) -> tuple[pd.Timestamp | None, str | None]:
    if _is_missing(v):
        return None, "no posted_at"
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError):
        return None, f"posted_at {str(v)[:40]!r} is not a date-time"
    if t is pd.NaT:
        return None, "no posted_at"
    if t.tzinfo is None:
        return None, f"posted_at {str(v)[:40]!r} has no UTC offset"
    return t.tz_convert("UTC"), None


# --- topic state -----------------------------------------------------------------------------


def _ts(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).isoformat()


def state_to_json(st: TopicState) -> str:
    """Serialize a :class:`~analytics.opinion.topics.TopicState` (JSON, no pickle)."""
    entries: dict[int, list] = {}
    buckets = []
    for (band, cat, h), lst in st.buckets.items():
        for e in lst:
            entries.setdefault(e[5], [_ts(e[0]), sorted(e[1]), e[2], e[3], int(e[4])])
        buckets.append([band, cat, h.hex(), [int(e[5]) for e in lst]])
    doc = {
        "window_s": st.window.total_seconds(),
        "next_topic": st.next_topic,
        "serial": st.serial,
        "open": [[k[0], k[1], int(v[0]), _ts(v[1])] for k, v in st.open.items()],
        "entries": {str(k): v for k, v in entries.items()},
        "buckets": buckets,
        "by_post": {k: int(v) for k, v in st.by_post.items()},
        "last": {str(k): _ts(v) for k, v in st.last.items()},
        "category": {str(k): v for k, v in st.category.items()},
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def state_from_json(text: str) -> TopicState:
    """The inverse of :func:`state_to_json`."""
    doc = json.loads(text)
    entries = {
        int(k): (pd.Timestamp(v[0]), frozenset(v[1]), v[2], v[3], int(v[4]), int(k))
        for k, v in doc["entries"].items()
    }
    return TopicState(
        window=pd.Timedelta(seconds=doc["window_s"]),
        next_topic=int(doc["next_topic"]),
        open={(a, b): (int(t), pd.Timestamp(at)) for a, b, t, at in doc["open"]},
        buckets={
            (int(band), cat, bytes.fromhex(h)): [entries[s] for s in serials]
            for band, cat, h, serials in doc["buckets"]
        },
        serial=int(doc["serial"]),
        by_post={k: int(v) for k, v in doc["by_post"].items()},
        last={int(k): pd.Timestamp(v) for k, v in doc["last"].items()},
        category={int(k): v for k, v in doc["category"].items()},
    )


def load_state(store: Store, window_hours: float = WINDOW_HOURS) -> TopicState:
    """The topic state kept in ``store`` (a fresh one when there is none)."""
    if store.has_layer(STATE):
        try:
            return state_from_json(store.get(STATE, "topics")["properties"]["value"])
        except NotFound:
            pass
    return TopicState(window=pd.Timedelta(hours=window_hours))


def _save_state(store: Store, name: str, value: str, now: dt.datetime) -> None:
    props = {"value": value, "updated_at": now}
    try:
        store.update(STATE, name, props)
    except NotFound:
        store.insert(STATE, [{"geometry": None, "properties": {"name": name, **props}}])


def ensure_tables(store: Store) -> None:
    """Create the state table (and the case tables intake writes) when missing."""
    from layers import lifecycle
    from layers.cases import COUNTERS

    store.ensure_layer(STATE)
    store.ensure_layer(POSTS)
    store.ensure_layer(TOPICS)
    lifecycle.ensure_tables(store)
    store.ensure_layer(COUNTERS)


# --- ingest ----------------------------------------------------------------------------------


def stored_ids(store: Store, layer: Layer, ids: Sequence[str]) -> dict[str, dict]:
    """Features of ``layer`` whose key is among ``ids`` (key -> feature)."""
    out: dict[str, dict] = {}
    ids = list(dict.fromkeys(ids))
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        q = Query(
            where=ast.In(ast.Attribute(layer.key), part, False),
            limit=len(part) + 1,
        )
        for f in store.query(layer, q, count=False).features:
            out[str(f["properties"][layer.key])] = f
    return out


def _next_topic(store: Store) -> int:
    """One more than the highest stored topic number (0 when there is none)."""
    q = Query(sortby=[("topic_id", False)], properties=["topic_id"], skip_geometry=True, limit=1)
    feats = store.query(TOPICS, q, count=False).features
    if not feats:
        return 0
    tail = str(feats[0]["properties"]["topic_id"]).lstrip("T")
    return int(tail) + 1 if tail.isdigit() else 0


def _posts_of_topics(store: Store, topics: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    topics = list(topics)
    for i in range(0, len(topics), _CHUNK):
        part = topics[i : i + _CHUNK]
        offset = 0
        while True:
            q = Query(
                where=ast.In(ast.Attribute("topic_id"), part, False),
                properties=["post_id", "topic_id"],
                sortby=[("post_id", True)],
                skip_geometry=True,
                offset=offset,
                limit=MAX_LIMIT,
            )
            feats = store.query(POSTS, q, count=False).features
            for f in feats:
                p = f["properties"]
                out.setdefault(p["topic_id"], []).append(p["post_id"])
            if len(feats) < MAX_LIMIT:
                break
            offset += MAX_LIMIT
    return out


def _py(v):
    """A plain Python value for the store (None for NaN/NA)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float | np.floating) and math.isnan(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def ingest(
    store: Store,
    posts: pd.DataFrame,
    gazetteer: Gazetteer,
    *,
    classifier: CategoryModel | Callable[[str], str | None] | None = None,
    cases: CaseRule | None = CaseRule(),  # noqa: B008 - a frozen value
    window_hours: float = WINDOW_HOURS,
    now: dt.datetime | None = None,
    checkpoint: tuple[str, str] | None = None,
    pause: Callable[[str], None] | None = None,
) -> IngestResult:
    """Understand a batch of posts and store posts, topics, cases and state in ONE transaction.

    Parameters
    ----------
    store : Store
        A GeoPackage or PostGIS store (:func:`layers.stores.open_store`).
    posts : pandas.DataFrame
        ``post_id``, ``platform``, ``text``, ``posted_at``; optional ``lon``/``lat``
        (GPS), ``repost_of``, ``reply_to`` and the hidden ``handle``, ``author_id``,
        ``profile_url``, ``source_url``. Malformed rows are refused
        (:func:`validate_posts`, in the result's ``rejected``), the rest goes in.
    gazetteer : Gazetteer
        :func:`analytics.opinion.gazetteer.build_gazetteer` of the store's layers.
    classifier : optional
        As :func:`~analytics.opinion.pipeline.understand` (default the keyword rules).
    cases : CaseRule or None
        When topics open cases (None: never, e.g. for a sample or a back-fill).
    window_hours : float
        Grouping window of a fresh state (a stored state keeps its own).
    now : datetime, optional
        The ingest time (``ingested_at``, cases' registration); default now.
    checkpoint : (str, str), optional
        ``(name, value)`` of a source checkpoint saved in the same transaction.
    pause : callable, optional
        Called with a stage name (``posts``: posts written; ``case``: a case created, its
        topic not yet linked) inside the transaction: a test's crash point.

    Returns
    -------
    IngestResult
    """
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    res = IngestResult()
    good, res.rejected = validate_posts(posts)
    ensure_tables(store)
    with store.transaction():
        try:  # the state row, locked: concurrent ingests take turns on a server store
            st_row = store.get_for_update(STATE, "topics")["properties"]["value"]
            state = state_from_json(st_row)
        except NotFound:  # topics already stored (a lost state, a copy): ids continue
            state = TopicState(window=pd.Timedelta(hours=window_hours))
            state.next_topic = _next_topic(store)
        seen = stored_ids(store, POSTS, list(good["post_id"]))
        res.skipped = len(seen)
        fresh = good[~good["post_id"].isin(list(seen))].reset_index(drop=True)
        if len(fresh):
            _store_batch(store, fresh, gazetteer, classifier, state, cases, now, res, pause)
            _save_state(store, "topics", state_to_json(state), now)
        if checkpoint is not None:
            _save_state(store, checkpoint[0], checkpoint[1], now)
    return res


def _store_batch(store, fresh, gazetteer, classifier, state, rule, now, res, pause) -> None:
    """Understand ``fresh`` (unseen posts) and write posts, topics and cases."""
    from layers.cases import create_case

    out = understand(fresh, gazetteer, classifier=classifier, state=state)
    n = len(out)
    col = {c: [_py(v) for v in out[c].tolist()] for c in out.columns}
    tids = [None if t is None else topic_key(int(t)) for t in col["topic_id"]]
    stored = stored_ids(store, TOPICS, sorted({t for t in tids if t is not None}))
    # topics: figures of this batch, merged with the stored ones
    acc: dict[str, dict] = {}
    for i, t in enumerate(tids):
        if t is None:
            continue
        a = acc.setdefault(t, {"first": None, "cats": Counter(), "times": [], "conf": 0.0})
        a["times"].append(col["posted_at"][i])
        a["conf"] = max(a["conf"], float(col["confidence"][i] or 0.0))
        if col["category"][i] is not None:
            a["cats"][col["category"][i]] += 1
        if a["first"] is None and col["place_id"][i] is not None:
            a["first"] = i
        a.setdefault("texts", []).append(col["text"][i])
    topics: dict[str, dict] = {}
    for t in sorted(acc):
        a = acc[t]
        first = a["first"]
        old = stored.get(t)
        op = old["properties"] if old else {}
        place_id = op.get("place_id") or (col["place_id"][first] if first is not None else None)
        point = None
        if old and old.get("geometry"):
            point = shapely.geometry.shape(old["geometry"])
        elif first is not None and col["place_lon"][first] is not None:
            point = shapely.Point(col["place_lon"][first], col["place_lat"][first])
        cat = op.get("category") or a["cats"].most_common(1)[0][0]
        topics[t] = {
            "geometry": point,
            "new": old is None,
            "props": {
                "topic_id": t,
                "category": cat,
                "community_code": op.get("community_code")
                or (col["community_code"][first] if first is not None else None),
                "place_id": place_id,
                "place_name": op.get("place_name")
                or (gazetteer.places[place_id].name if place_id else None),
                "first_at": min(a["times"] + ([pd.Timestamp(op["first_at"])] if old else [])),
                "last_at": max(a["times"] + ([pd.Timestamp(op["last_at"])] if old else [])),
                "posts": int(op.get("posts") or 0) + len(a["times"]),
                "actionable": True,
                "case_id": op.get("case_id"),
                "status": op.get("status") or "open",
            },
            "confidence": a["conf"],
            "texts": a["texts"],
        }
    # posts
    names = [f.name for f in POSTS.fields if f.name in col]
    feats: list[dict[str, Any]] = []
    for i in range(n):
        t = tids[i]
        place = col["place_id"][i]
        gps = (
            col.get("lon", [None] * n)[i] is not None and col.get("lat", [None] * n)[i] is not None
        )
        if place is None:
            geom = None
        elif gps:
            geom = shapely.Point(col["lon"][i], col["lat"][i])
        else:
            geom = shapely.Point(col["place_lon"][i], col["place_lat"][i])
        props = {k: col[k][i] for k in names}
        masked = mask_mentions(col["text"][i])
        props.update(
            text=masked,
            original_text=col["text"][i] if masked != col["text"][i] else None,
            place_name=gazetteer.places[place].name if place else None,
            confidence=round(float(col["confidence"][i] or 0.0), 3),
            topic_id=t,
            case_id=topics[t]["props"]["case_id"] if t is not None else None,
            actionable=bool(col["actionable"][i]),
            ingested_at=now,
        )
        feats.append({"geometry": geom, "properties": props})
    store.insert(POSTS, feats)
    res.posts = len(feats)
    res.posts_attached = sum(1 for f in feats if f["properties"]["case_id"] is not None)
    if pause is not None:
        pause("posts")
    # topics
    new = [
        {"geometry": v["geometry"], "properties": v["props"]} for v in topics.values() if v["new"]
    ]
    if new:
        store.insert(TOPICS, new)
    res.topics_new = len(new)
    for t, v in topics.items():
        if not v["new"]:
            p = v["props"]
            store.update(TOPICS, t, {k: p[k] for k in ("first_at", "last_at", "posts")})
            res.topics_updated += 1
    # cases: a topic that meets the rule and has none opens one; its posts link to it
    if rule is None:
        return
    for t, v in topics.items():
        p = v["props"]
        if p["case_id"] is not None or v["geometry"] is None:
            continue
        if not rule.opens(p["posts"], v["confidence"], p["place_id"] is not None, p["category"]):
            continue
        try:
            case = create_case(store, _case_doc(v), MONITOR, now=now)
        except InvalidFeature as e:  # e.g. a point outside the district: the topic stays open
            log.warning("opinion topic %s opens no case: %s", t, e)
            continue
        case_no = case["id"]
        if pause is not None:
            pause("case")
        store.update(TOPICS, t, {"case_id": case_no, "status": "case_opened"})
        for pid in _posts_of_topics(store, [t]).get(t, []):
            store.update(POSTS, pid, {"case_id": case_no})
        res.cases_opened.append(case_no)


def _case_doc(topic: dict) -> dict:
    """The intake document of the case a topic opens."""
    p = topic["props"]
    cat = _CATEGORIES[p["category"]]
    where = p["place_name"] or ""
    texts = list(dict.fromkeys(mask_mentions(str(x)) for x in topic["texts"]))[:3]
    desc = (
        f"网络舆情话题 {p['topic_id']}：{p['posts']} 条帖文反映{where}{cat.zh}问题"
        f"（{pd.Timestamp(p['first_at']).tz_convert('Asia/Shanghai'):%Y-%m-%d %H:%M} 起）。"
        "摘录：" + " / ".join(t[:80] for t in texts)
    )
    pt = topic["geometry"]
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [pt.x, pt.y]},
        "properties": {
            "title": f"[舆情] {where}{cat.zh}"[:100],
            "description": desc[:1000],
            "category": p["category"],
            "channel": "public_opinion",
            "nature": "complaint",
            "address": where or None,
            "reported_at": pd.Timestamp(p["first_at"]).isoformat(),
        },
    }


# --- replies ---------------------------------------------------------------------------------

#: Roles that may record a reply against a topic.
REPLY_ROLES = ("dispatcher", "admin")
#: Statuses a reply may set.
REPLY_STATUSES = ("replied", "closed")


def require_reply_role(who: access.Principal) -> None:
    """401 for the public, 403 for a role that may not reply (:data:`REPLY_ROLES` may)."""
    from layers.errors import Forbidden, NotAuthenticated

    if who.role == "public":
        raise NotAuthenticated("recording a reply to an opinion topic needs an API key")
    if who.role not in REPLY_ROLES:
        raise Forbidden(
            f"role {who.role!r} may not reply to opinion topics; roles that may: "
            + ", ".join(REPLY_ROLES)
        )


def reply_topic(
    store: Store,
    topic_id: str,
    note: str,
    who: access.Principal,
    *,
    status: str = "replied",
    now: dt.datetime | None = None,
) -> dict:
    """Record a reply or resolution note against a topic; returns the topic's properties.

    Parameters
    ----------
    topic_id : str
        The topic (``opinion_topics``' key).
    note : str
        The reply or resolution (1..2000 characters).
    who : Principal
        A dispatcher or admin (401 anonymous, 403 another role).
    status : str
        ``replied`` (default) or ``closed``.
    """
    require_reply_role(who)
    if not isinstance(note, str) or not note.strip():
        raise InvalidParameter("'note' is required: the reply or resolution, a non-empty string")
    if len(note) > 2000:
        raise InvalidParameter(f"'note' is {len(note)} characters long (at most 2000)")
    if status not in REPLY_STATUSES:
        raise InvalidParameter(f"'status' {status!r} is not one of {', '.join(REPLY_STATUSES)}")
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    store.require_layer(TOPICS)
    with store.transaction():
        try:
            store.get_for_update(TOPICS, topic_id)
        except NotFound:
            raise NotFound(f"opinion topic {topic_id!r} does not exist") from None
        change = {"reply_note": note.strip(), "replied_at": now, "replied_by": who.name}
        change["status"] = status
        store.update(TOPICS, topic_id, change)
    return store.get(TOPICS, topic_id)["properties"]
