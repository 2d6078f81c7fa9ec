"""Hot topics and hot spots of online public opinion (issue 14, item 5).

Both work on posts as :func:`analytics.opinion.pipeline.understand` returns them or as the
``public_opinion`` collection serves them (``topic_id``, ``posted_at``, ``category``,
``community_code``; a point geometry or ``place_lon``/``place_lat`` for the placed ones).

Hot topics (:func:`hot_topics`)
-------------------------------
A topic is *hot* when it has posts in the recent window ``(since, until]`` (default the
24 hours before ``until``). Two measures, both printed:

``volume``
    ``posts_recent``: the topic's posts in the recent window.
``growth``
    ``posts_recent / max(1, posts_before)``, where ``posts_before`` counts the topic's posts
    in the window of the same length just before (``(since - w, since]``): 3.0 means three
    times as many posts as the period before; a topic new in the window grows by its
    volume (``posts_before`` 0 counts as 1, so one post is no "infinite" growth). The same
    definition as :func:`analytics.opinion.pipeline.summarize_topics`.

``order="volume"`` ranks by volume, then growth; ``order="growth"`` by growth, then volume
(ties: more posts in all, then the older topic). Topic ids are returned as strings, as the
collections hold them.

Hot spots (:func:`opinion_hot_spots`)
-------------------------------------
Getis-Ord Gi* (:func:`analytics.gistar.hot_spots`) of post counts per community (every
community of the given polygons, zeros included; a post counts in its geoparsed
``community_code``) or per fishnet cell over the communities (placed points), k nearest
neighbours. Unplaced posts (place unknown) are left out and counted apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import geopandas as gpd
import pandas as pd

from analytics.errors import AnalyticsError, check_choice, check_positive
from layers.district import UTM

__all__ = [
    "HOT_DEFINITIONS",
    "HOT_ORDERS",
    "HOT_UNITS",
    "hot_topics",
    "opinion_hot_spots",
    "opinion_points",
]

#: The hot-topic measures in plain words, for readers of the API and the report.
HOT_DEFINITIONS = (
    "A topic is hot when it has posts in the window (since, until]. Volume: its posts in the "
    "window. Growth: volume / max(1, its posts in the window of the same length just before); "
    "3.0 is three times as many posts as the period before, and a new topic grows by its "
    "volume. order=volume ranks by volume, then growth; order=growth by growth, then volume "
    "(ties: more posts in all, then the older topic)."
)

#: Orders of :func:`hot_topics`.
HOT_ORDERS = ("volume", "growth")
#: Units of :func:`opinion_hot_spots`.
HOT_UNITS = ("community", "cell")
#: Columns of :func:`hot_topics` (before the topic table's own).
TOPIC_COLUMNS = (
    "topic_id",
    "category",
    "community_code",
    "posts",
    "posts_recent",
    "posts_before",
    "growth",
    "first_at",
    "last_at",
)


def _utc(t) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def hot_topics(
    posts: pd.DataFrame,
    topics: pd.DataFrame | None = None,
    *,
    until=None,
    since=None,
    order: str = "volume",
    limit: int | None = 10,
    category: str | Sequence[str] | None = None,
    community: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The hot topics of the recent window, by volume or growth (see the module docstring).

    Parameters
    ----------
    posts : pandas.DataFrame
        Posts with ``topic_id`` (NA for posts without a topic: left out), ``posted_at``,
        ``category`` and ``community_code``. Only posts up to ``until`` are read; for the
        totals (``posts``: the topic's posts up to ``until``) pass the topics' earlier posts
        too (:func:`read_opinion` does).
    topics : pandas.DataFrame, optional
        One row per topic (the ``opinion_topics`` collection): its columns are joined on
        ``topic_id``; its ``first_at``, ``category`` and ``community_code`` are the topic's
        (``posts`` and ``last_at`` are counted from ``posts`` up to ``until``: the table's
        are as of now).
    until : datetime-like, optional
        End of the recent window (default the latest post's time).
    since : datetime-like, optional
        Start of the recent window (excluded; default 24 hours before ``until``).
    order : {"volume", "growth"}
    limit : int, optional
        Topics returned (default 10; None: all hot topics).
    category, community : str or sequence of str, optional
        Only topics of these categories / communities.

    Returns
    -------
    pandas.DataFrame
        One row per hot topic, hottest first: :data:`TOPIC_COLUMNS` and the columns of
        ``topics``. Empty (with those columns) when nothing was posted in the window.

    Raises
    ------
    AnalyticsError
        A missing column, an unknown ``order``, ``since`` not before ``until``.

    Examples
    --------
    >>> p = pd.DataFrame({"topic_id": pd.array([1, 1, 1, 2, None], dtype="Int64"),
    ...     "category": ["street_light"] * 3 + ["waterlogging", None],
    ...     "community_code": ["C1"] * 3 + ["C2", None],
    ...     "posted_at": pd.to_datetime(["2026-01-01 08:00", "2026-01-02 06:00",
    ...         "2026-01-02 07:00", "2026-01-02 08:00", "2026-01-02 08:00"], utc=True)})
    >>> hot_topics(p)[["topic_id", "posts_recent", "posts_before", "growth"]].values.tolist()
    [['1', 2, 1, 2.0], ['2', 1, 0, 1.0]]
    """
    need = ("topic_id", "posted_at", "category", "community_code")
    missing = [c for c in need if c not in posts.columns]
    if missing:
        raise AnalyticsError(
            f"posts need the columns {', '.join(need)} (missing: {', '.join(missing)})"
        )
    check_choice(order, "order", HOT_ORDERS)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise AnalyticsError(f"limit must be a positive integer, got {limit!r}")
    cols = list(TOPIC_COLUMNS)
    extra = [c for c in (topics.columns if topics is not None else ()) if c not in cols]
    empty = pd.DataFrame(columns=cols + extra)
    df = posts[posts["topic_id"].notna()]
    t = pd.to_datetime(df["posted_at"], utc=True, format="ISO8601")
    if len(df) == 0 and until is None:
        return empty
    t_until = _utc(until) if until is not None else t.max()
    t_since = _utc(since) if since is not None else t_until - pd.Timedelta(hours=24)
    if not t_since < t_until:
        raise AnalyticsError(f"since ({t_since}) must be before until ({t_until})")
    width = t_until - t_since
    df = df.assign(_t=t, topic_id=_topic_ids(df["topic_id"]))
    df = df[df["_t"] <= t_until]
    df = df.assign(
        _recent=(df["_t"] > t_since).astype("int64"),
        _before=((df["_t"] > t_since - width) & (df["_t"] <= t_since)).astype("int64"),
    )
    g = df.groupby("topic_id", sort=True)
    out = pd.DataFrame(
        {
            "posts": g.size(),
            "posts_recent": g["_recent"].sum(),
            "posts_before": g["_before"].sum(),
            "first_at": g["_t"].min(),
            "last_at": g["_t"].max(),
            "category": g["category"].agg(_mode),
            "community_code": g["community_code"].agg(_mode),
        }
    )
    out = out[out["posts_recent"] > 0].reset_index()
    out["growth"] = out["posts_recent"] / out["posts_before"].clip(lower=1)
    if topics is not None and len(out):
        tp = topics.drop(columns=[c for c in ("geometry",) if c in topics.columns])
        tp = tp[tp["topic_id"].notna()]
        tp = tp.assign(topic_id=_topic_ids(tp["topic_id"]))
        keep = [c for c in tp.columns if c not in ("topic_id",)]
        joined = out.merge(tp, on="topic_id", how="left", suffixes=("", "_topic"))
        for c in ("posts", "first_at", "last_at", "category", "community_code"):
            if f"{c}_topic" not in joined.columns:
                continue
            v = joined[f"{c}_topic"]
            if c == "first_at":  # the topic's first post, maybe before the posts given
                v = pd.to_datetime(v, utc=True, format="ISO8601")
                joined[c] = v.where(v.notna() & (v < joined[c]), joined[c])
            elif c in ("category", "community_code"):
                joined[c] = v.where(v.notna(), joined[c])
            # posts and last_at stay counted up to ``until``: the table's are as of now
            joined = joined.drop(columns=f"{c}_topic")
        out = joined[[*cols, *[c for c in keep if c not in cols]]]
    for c in extra:
        if c not in out.columns:
            out[c] = pd.Series(dtype=object)
    if category is not None:
        out = out[out["category"].isin([category] if isinstance(category, str) else category)]
    if community is not None:
        wanted = [community] if isinstance(community, str) else community
        out = out[out["community_code"].isin(wanted)]
    keys = ["posts_recent", "growth"] if order == "volume" else ["growth", "posts_recent"]
    out = out.sort_values(
        [*keys, "posts", "first_at", "topic_id"],
        ascending=[False, False, False, True, True],
        kind="stable",
    )
    out = out[[*cols, *[c for c in out.columns if c not in cols]]].reset_index(drop=True)
    if limit is not None:
        out = out.head(int(limit))
    for c in ("posts", "posts_recent", "posts_before"):
        out[c] = out[c].astype("int64")
    return out


def _topic_ids(s: pd.Series) -> pd.Series:
    """Topic ids as strings (the collections' ``topic_id``), whether given as ints or text."""
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("Int64").astype(str)
    return s.astype(str)


def _mode(s: pd.Series):
    s = s.dropna()
    return s.mode().iloc[0] if len(s) else None


def opinion_points(posts: pd.DataFrame) -> gpd.GeoDataFrame:
    """The placed posts as points (EPSG:4326): a GeoDataFrame's point geometry, else the GPS
    ``lon``/``lat`` or the place's ``place_lon``/``place_lat`` (the collection's point);
    unplaced posts are left out.

    Examples
    --------
    >>> p = pd.DataFrame({"place_lon": [109.3, None], "place_lat": [18.3, None]})
    >>> len(opinion_points(p))
    1
    """
    if isinstance(posts, gpd.GeoDataFrame) and posts.geometry.name in posts.columns:
        g = posts.to_crs(4326) if posts.crs is not None else posts.set_crs(4326)
        ok = g.geometry.notna() & ~g.geometry.is_empty
        return g[ok.to_numpy()].reset_index(drop=True)
    cols = [
        (x, y) for x, y in (("lon", "lat"), ("place_lon", "place_lat")) if x in posts and y in posts
    ]
    if cols:
        x = pd.Series(float("nan"), index=posts.index)
        y = pd.Series(float("nan"), index=posts.index)
        for cx, cy in cols:  # the GPS point first, else the place's point
            take = x.isna() & posts[cx].notna() & posts[cy].notna()
            x, y = x.where(~take, posts[cx]), y.where(~take, posts[cy])
        ok = x.notna()
        return gpd.GeoDataFrame(
            posts[ok].reset_index(drop=True),
            geometry=gpd.points_from_xy(x[ok], y[ok]),
            crs=4326,
        )
    raise AnalyticsError("posts have no point geometry and no place_lon/place_lat columns")


def opinion_hot_spots(
    posts: pd.DataFrame,
    communities: gpd.GeoDataFrame,
    *,
    unit: str = "community",
    cell_size: float = 1000.0,
    k: int = 6,
    fdr: bool = True,
    category: str | None = None,
) -> gpd.GeoDataFrame:
    """Gi* hot spots of the posts per community or per fishnet cell (module docstring).

    Parameters
    ----------
    posts : DataFrame
        Posts (``community_code`` for ``unit="community"``; points, see
        :func:`opinion_points`, for ``"cell"``) -- select the period before.
    communities : GeoDataFrame
        Community polygons with ``code`` (and ``name``): the units, or the area the cells
        cover.
    unit : {"community", "cell"}
    cell_size : float, default 1000
        Fishnet cell in metres (``unit="cell"``).
    k : int, default 6
        Nearest neighbours of each unit (at most the units less one).
    fdr : bool, default True
        FDR-corrected confidence bins.
    category : str, optional
        Only posts of this category.

    Returns
    -------
    GeoDataFrame
        Every unit (EPSG:4326) with ``count``, ``gi_z``, ``gi_p``, ``gi_bin`` (-3..3);
        ``attrs["unplaced"]``: the posts left out because their place is unknown.

    Raises
    ------
    AnalyticsError
        An unknown unit, fewer than 3 units, or counts Gi* cannot analyse (all equal).
    """
    from analytics.aggregate import aggregate_points
    from analytics.gistar import hot_spots

    check_choice(unit, "unit", HOT_UNITS)
    check_positive(cell_size, "cell_size")
    if category is not None:
        posts = posts[posts["category"] == category]
    if "code" not in communities.columns:
        raise AnalyticsError("communities need a 'code' column")
    if unit == "community":
        if "community_code" not in posts.columns:
            raise AnalyticsError("posts need a 'community_code' column for unit='community'")
        known = posts["community_code"].isin(set(communities["code"]))
        counts = posts.loc[known, "community_code"].value_counts()
        units = communities.reset_index(drop=True).to_crs(UTM)
        units["count"] = units["code"].map(counts).fillna(0).astype("int64")
        unplaced = int((~known).sum())
    else:
        pts = opinion_points(posts)
        unplaced = len(posts) - len(pts)
        if len(pts) == 0:
            raise AnalyticsError("no placed post to count in cells")
        units = aggregate_points(
            pts.to_crs(UTM), "fishnet", cell_size=cell_size, polygons=communities.to_crs(UTM)
        )
    if len(units) < 3:
        raise AnalyticsError(f"Gi* needs at least 3 units, got {len(units)}")
    res = hot_spots(units, "count", weights="knn", k=min(int(k), len(units) - 1), fdr=fdr)
    out = res.to_crs(4326)
    out["count"] = out["count"].astype("int64")
    out.attrs["unplaced"] = int(unplaced)
    return out


#: How far before a window :func:`read_opinion` reads a topic's earlier posts.
TOPIC_HISTORY = dt.timedelta(days=31)
#: Post fields the figures read (public ones: no author, no original text).
POST_FIELDS = (
    "post_id",
    "posted_at",
    "topic_id",
    "category",
    "community_code",
    "place_id",
    "actionable",
)


def read_opinion(
    store, since=None, until=None, fields: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The posts (:data:`POST_FIELDS`, posted from ``since`` on) and the topics (their
    public fields; with ``since``, those with a post since) of a store, for
    :func:`hot_topics`, the weekly report and the screen; None when the store has no
    opinion layers (one written before them).

    Parameters
    ----------
    store : layers.store.Store
    since, until : datetime-like, optional
        Only the topics with a post since ``since`` (``last_at``), and the posts from
        ``since`` to ``until`` (default all) -- from those topics' first post on, at most
        :data:`TOPIC_HISTORY` before ``since``, so their totals count.
    fields : sequence of str, optional
        The topic fields to read (default the public ones).
    """
    from layers.catalogue import LAYERS
    from layers.query import Query

    posts_layer, topics_layer = LAYERS["public_opinion"], LAYERS["opinion_topics"]
    if not (store.has_layer(posts_layer) and store.has_layer(topics_layer)):
        return None
    from layers.query import parse_filter

    lo = None if since is None else _utc(since).to_pydatetime()
    hi = None if until is None else _utc(until).to_pydatetime()
    if fields is None:
        fields = [f.name for f in topics_layer.fields if not f.sensitive]
    where = None if lo is None else parse_filter(f"last_at >= TIMESTAMP('{lo.isoformat()}')")
    topics = store.read_frame(topics_layer, Query(where=where, properties=list(fields), limit=0))
    if lo is not None and len(topics):  # the topics' earlier posts, for their totals
        first = pd.to_datetime(topics["first_at"], utc=True, format="ISO8601").min()
        if pd.notna(first):
            lo = min(lo, max(first.to_pydatetime(), lo - TOPIC_HISTORY))
    posts = store.read_frame(
        posts_layer,
        Query(
            interval=None if lo is None and hi is None else (lo, hi),
            properties=list(POST_FIELDS),
            skip_geometry=True,
            limit=0,
        ),
    )
    return pd.DataFrame(posts.drop(columns="geometry", errors="ignore")), topics
