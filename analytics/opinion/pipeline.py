"""Understand a frame of posts: place, category and topic of each (issue 14, item 3).

Examples
--------
>>> import geopandas as gpd, pandas as pd, shapely
>>> from analytics.opinion.gazetteer import build_gazetteer
>>> comm = gpd.GeoDataFrame({"code": ["C1"], "name": ["红塘村"], "kind": ["village"]},
...     geometry=[shapely.box(109.3, 18.3, 109.4, 18.4)], crs=4326)
>>> posts = pd.DataFrame({"text": ["红塘村的路灯坏了好几天", "今天天气真好"],
...     "posted_at": pd.to_datetime(["2026-01-01 12:00", "2026-01-01 13:00"], utc=True)})
>>> out = understand(posts, build_gazetteer({"communities": comm}))
>>> out[["community_code", "category", "topic_id"]].values.tolist()
[['C1', 'street_light', 0], [None, None, <NA>]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from analytics.errors import AnalyticsError
from analytics.opinion.category import CategoryModel, classify_rules
from analytics.opinion.gazetteer import Gazetteer
from analytics.opinion.topics import TopicState, group_topics

__all__ = ["summarize_topics", "understand"]

#: Columns :func:`understand` adds.
COLUMNS = (
    "place_id",
    "place_kind",
    "community_code",
    "confidence",
    "place_method",
    "place_lon",
    "place_lat",
    "category",
    "actionable",
    "topic_id",
)


def understand(
    posts: pd.DataFrame,
    gazetteer: Gazetteer,
    classifier: CategoryModel | Callable[[str], str | None] | None = None,
    window_hours: float = 72.0,
    state: TopicState | None = None,
) -> pd.DataFrame:
    """Place, category and topic of each post.

    Parameters
    ----------
    posts : pandas.DataFrame
        ``text`` and ``posted_at`` (datetime) columns; ``lon``/``lat`` (GPS, NaN when
        absent), ``post_id`` and ``reply_to``/``repost_of`` (the parent's ``post_id``)
        are used when present.
    gazetteer : Gazetteer
        From :func:`analytics.opinion.gazetteer.build_gazetteer`.
    classifier : CategoryModel or callable, optional
        A trained :class:`~analytics.opinion.category.CategoryModel`, or a function
        ``text -> category or None``; default the keyword rules
        (:func:`~analytics.opinion.category.classify_rules`).
    window_hours : float
        Same-issue grouping window (a topic stays open this long after its last post).
    state : TopicState, optional
        Topic state carried from a previous batch (topic ids continue from it).

    Returns
    -------
    pandas.DataFrame
        ``posts`` (in time order) with :data:`COLUMNS` added: the place (``place_id``
        None when unknown), its kind, community, confidence, how it was found, a
        representative point, the category (None when not actionable), ``actionable``
        and ``topic_id`` (None when not actionable).
    """
    for col in ("text", "posted_at"):
        if col not in posts.columns:
            raise AnalyticsError(f"posts need a {col!r} column (have: {', '.join(posts.columns)})")
    df = posts.sort_values("posted_at", kind="stable").reset_index(drop=True)
    texts = df["text"].astype(str).tolist()
    n = len(df)
    lon = df["lon"].to_numpy(float) if "lon" in df.columns else np.full(n, np.nan)
    lat = df["lat"].to_numpy(float) if "lat" in df.columns else np.full(n, np.nan)
    matches = [
        gazetteer.geoparse(t, None if np.isnan(x) else float(x), None if np.isnan(y) else float(y))
        for t, x, y in zip(texts, lon, lat, strict=True)
    ]
    cats = _categories(texts, classifier)
    points = {}
    for m in matches:
        if m.place_id is not None and m.place_id not in points:
            points[m.place_id] = gazetteer.point(m.place_id)
    out = df.copy()
    out["place_id"] = pd.Series([m.place_id for m in matches], dtype=object)
    out["place_kind"] = pd.Series([m.kind for m in matches], dtype=object)
    out["community_code"] = pd.Series([m.community_code for m in matches], dtype=object)
    out["confidence"] = [m.confidence for m in matches]
    out["place_method"] = pd.Series([m.method for m in matches], dtype=object)
    pts = [points.get(m.place_id) if m.place_id else None for m in matches]
    out["place_lon"] = [p[0] if p else np.nan for p in pts]
    out["place_lat"] = [p[1] if p else np.nan for p in pts]
    out["category"] = pd.Series(cats, dtype=object)
    out["actionable"] = [c is not None for c in cats]
    keys = [m.community_code or m.place_id for m in matches]
    parents = None
    if "reply_to" in df.columns or "repost_of" in df.columns:
        reply = df["reply_to"] if "reply_to" in df.columns else pd.Series([None] * n)
        repost = df["repost_of"] if "repost_of" in df.columns else pd.Series([None] * n)
        parents = [
            a if isinstance(a, str) else b if isinstance(b, str) else None
            for a, b in zip(reply, repost, strict=True)
        ]
    state = state or TopicState(window=pd.Timedelta(hours=window_hours))
    topics = group_topics(
        texts,
        list(df["posted_at"]),
        keys,
        cats,
        state=state,
        window_hours=window_hours,
        ids=[str(i) for i in df["post_id"]] if "post_id" in df.columns else None,
        parents=parents,
        candidates=[m.candidates for m in matches],
    )
    # a reply joined its thread's topic: it reports the topic's category
    cats = [
        state.category.get(tp) if c is None and tp is not None else c
        for c, tp in zip(cats, topics, strict=True)
    ]
    out["category"] = pd.Series(cats, dtype=object)
    out["actionable"] = [c is not None for c in cats]
    out["topic_id"] = pd.array(topics, dtype="Int64")
    return out


def _categories(
    texts: Sequence[str], classifier: CategoryModel | Callable[[str], str | None] | None
) -> list[str | None]:
    if classifier is None:
        return [classify_rules(t) for t in texts]
    if isinstance(classifier, CategoryModel):
        return classifier.predict(texts)
    return [classifier(t) for t in texts]


def summarize_topics(
    result: pd.DataFrame,
    now: pd.Timestamp | str | None = None,
    recent_hours: float = 24.0,
) -> pd.DataFrame:
    """One row per topic: what, where, how many posts, and how fast it grows.

    Parameters
    ----------
    result : pandas.DataFrame
        Output of :func:`understand`.
    now : Timestamp or str, optional
        The moment of the summary (default the last post's time); later posts are left out.
    recent_hours : float
        Growth is the posts of the last ``recent_hours`` over those of the
        ``recent_hours`` before (``posts_recent`` / max(1, ``posts_before``)).

    Returns
    -------
    pandas.DataFrame
        ``topic_id``, ``category``, ``place_id``, ``community_code``, ``lon``/``lat``
        (the place's point, or the mean GPS point), ``posts``, ``first_at``,
        ``last_at``, ``posts_recent``, ``posts_before``, ``growth``, ``post_ids`` (when
        the posts have ids), ordered by ``posts_recent`` then ``posts`` (descending): the
        hot topics first.

    Examples
    --------
    >>> r = pd.DataFrame({"topic_id": pd.array([0, 0, None, 1], dtype="Int64"),
    ...     "category": ["street_light", "street_light", None, "waterlogging"],
    ...     "place_id": ["C1", None, None, "C2"], "community_code": ["C1", None, None, "C2"],
    ...     "place_lon": [109.3, None, None, 109.4], "place_lat": [18.3, None, None, 18.2],
    ...     "posted_at": pd.to_datetime(["2026-01-01 08:00", "2026-01-02 09:00",
    ...                                  "2026-01-02 10:00", "2026-01-02 11:00"], utc=True)})
    >>> summarize_topics(r)[["topic_id", "place_id", "posts", "posts_recent"]].values.tolist()
    [[0, 'C1', 2, 1], [1, 'C2', 1, 1]]
    """
    if "topic_id" not in result.columns:
        raise AnalyticsError("summarize_topics needs the output of understand() (no topic_id)")
    df = result[result["topic_id"].notna()]
    t_now = pd.Timestamp(now) if now is not None else df["posted_at"].max()
    if t_now is not pd.NaT and t_now.tzinfo is None and df["posted_at"].dt.tz is not None:
        t_now = t_now.tz_localize("UTC")
    df = df[df["posted_at"] <= t_now]
    cols = [
        "topic_id", "category", "place_id", "community_code", "lon", "lat", "posts",
        "first_at", "last_at", "posts_recent", "posts_before", "growth", "post_ids",
    ]  # fmt: skip
    if df.empty:
        return pd.DataFrame(columns=cols)
    recent = pd.Timedelta(hours=recent_hours)
    rows = []
    for _, g in df.groupby("topic_id", sort=True):
        placed = g[g["place_id"].notna()]
        if len(placed):
            first = placed.iloc[0]
            place, comm = first["place_id"], first["community_code"]
            lon, lat = placed["place_lon"].mean(), placed["place_lat"].mean()
        else:
            place = comm = None
            lon = g["lon"].mean() if "lon" in g.columns else np.nan
            lat = g["lat"].mean() if "lat" in g.columns else np.nan
        n_recent = int((g["posted_at"] > t_now - recent).sum())
        n_before = int(
            ((g["posted_at"] > t_now - 2 * recent) & (g["posted_at"] <= t_now - recent)).sum()
        )
        rows.append(
            {
                "topic_id": int(g["topic_id"].iloc[0]),
                "category": g["category"].mode().iloc[0],
                "place_id": place,
                "community_code": comm,
                "lon": lon,
                "lat": lat,
                "posts": len(g),
                "first_at": g["posted_at"].min(),
                "last_at": g["posted_at"].max(),
                "posts_recent": n_recent,
                "posts_before": n_before,
                "growth": n_recent / max(1, n_before),
                "post_ids": list(g["post_id"]) if "post_id" in g.columns else None,
            }
        )
    out = pd.DataFrame(rows, columns=cols)
    out = out.sort_values(["posts_recent", "posts", "topic_id"], ascending=[False, False, True])
    return out.reset_index(drop=True)
