"""Opinion posts and topics in a store, for the serving and access tests (issue 14).

:func:`opinion_frames` runs the library (:func:`geodata.opinion.generate_posts`, then
:func:`analytics.opinion.pipeline.understand` and ``summarize_topics``) over a few weeks of
the sample and shapes the result as the catalogue's ``public_opinion`` and ``opinion_topics``
rows, with recognisable personal fields planted (:data:`PLANTED`): every post's handle,
author id, profile and source URL, and the @mention of its original text carry them, so a
test can grep any public answer for them.
:func:`load_opinion` writes both into a store.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd

from layers.catalogue import LAYERS

#: A recognisable personal value: no public body may ever contain it.
PLANTED = "PLANTEDhandle7q"
#: Planted values of each hidden field of a post.
HIDDEN = {
    "handle": PLANTED,
    "author_id": "PLANTEDauthor7q",
    "profile_url": "https://weibo.example/PLANTEDprofile7q",
    "source_url": "https://weibo.example/PLANTEDsource7q",
}
#: Every planted string (what a public answer must not contain).
MARKERS = ("PLANTED",)
START, END = dt.date(2026, 10, 26), dt.date(2026, 11, 22)


def opinion_frames(sample_frames, n_posts: int = 2500, seed: int = 7):
    """``(posts, topics, understood)``: the catalogue rows of a month of posts and the
    library's own output (``understood``) for independent checks."""
    from analytics.opinion.gazetteer import build_gazetteer
    from analytics.opinion.pipeline import summarize_topics, understand
    from geodata.opinion import generate_posts

    raw = generate_posts(sample_frames, seed=seed, n_posts=n_posts, start=START, end=END)
    u = understand(raw, build_gazetteer(sample_frames))
    tid = u["topic_id"].astype("Int64").astype(str).where(u["topic_id"].notna(), None)
    lon = u["lon"].where(u["lon"].notna(), u["place_lon"])
    lat = u["lat"].where(u["lat"].notna(), u["place_lat"])
    comm = sample_frames["communities"]
    names = dict(zip(comm["code"], comm["name"], strict=True))
    posts = pd.DataFrame(
        {
            "post_id": u["post_id"],
            "platform": u["platform"],
            "posted_at": u["posted_at"],
            "text": u["text"],
            "repost_of": u["repost_of"],
            "reply_to": u["reply_to"],
            "place_id": u["place_id"],
            "place_name": [names.get(c) for c in u["community_code"]],
            "place_kind": u["place_kind"],
            "community_code": u["community_code"],
            "confidence": u["confidence"],
            "place_method": u["place_method"],
            "category": u["category"],
            "actionable": u["actionable"],
            "topic_id": tid,
            "case_id": None,
            "ingested_at": u["posted_at"] + pd.Timedelta(minutes=20),
            **{k: [f"{v}{i}" for i in range(len(u))] for k, v in HIDDEN.items()},
        }
    )
    # a mention names a person: the text shows it masked, the original keeps it (hidden)
    posts["original_text"] = [f"{t} @{PLANTED}m{i}" for i, t in enumerate(u["text"])]
    posts["text"] = [f"{t} @***" for t in u["text"]]
    geom = gpd.points_from_xy(lon, lat)
    geom = [None if pd.isna(x) else g for g, x in zip(geom, lon, strict=True)]
    posts = gpd.GeoDataFrame(posts, geometry=gpd.GeoSeries(geom, crs=4326), crs=4326)
    s = summarize_topics(u, now=u["posted_at"].max())
    topics = gpd.GeoDataFrame(
        {
            "topic_id": s["topic_id"].astype(str),
            "category": s["category"],
            "community_code": s["community_code"],
            "place_id": s["place_id"],
            "place_name": [names.get(c) for c in s["community_code"]],
            "first_at": s["first_at"],
            "last_at": s["last_at"],
            "posts": s["posts"].astype("int64"),
            "actionable": True,
            "case_id": None,
            "status": "open",
            "reply_note": None,
            "replied_at": None,
            "replied_by": f"{PLANTED}-replier",
        },
        geometry=gpd.points_from_xy(s["lon"], s["lat"]),
        crs=4326,
    )
    return posts, topics, u


def load_opinion(store, posts, topics) -> None:
    """Write the posts and topics into ``store`` (replacing those layers); a field the
    frames lack is written empty."""
    for lid, frame in (("public_opinion", posts), ("opinion_topics", topics)):
        frame = frame.copy()
        for f in LAYERS[lid].fields:
            if f.name not in frame.columns:
                frame[f.name] = None
        store.write_frame(LAYERS[lid], frame)


_SERVERS: dict = {}


def opinion_server(kind: str, sample_gpkg: str, sample_frames):
    """``(server, posts, topics, understood)``: one live server a process per store kind on
    a private copy of the sample holding :func:`opinion_frames` (stopped at exit)."""
    if kind not in _SERVERS:
        import atexit

        from conftest import LiveServer
        from stores import writable_copy

        from layers.stores import open_store

        posts, topics, understood = opinion_frames(sample_frames)
        location = writable_copy(kind, sample_gpkg, "opinion_c")
        with open_store(location) as store:
            load_opinion(store, posts, topics)
        srv = LiveServer(location)
        atexit.register(srv.stop)
        _SERVERS[kind] = (srv, posts, topics, understood)
    return _SERVERS[kind]
