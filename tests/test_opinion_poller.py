"""The public-opinion poller (issue 14, item 2): idempotent, resumable, refusing bad entries.

Each test runs on the GeoPackage and on PostGIS (a private writable copy of the sample).
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from opinionfeedkit import (
    copy_store,
    entries,
    finish,
    kill_at,
    rows,
    sample_posts,
    write_feed,
)

from analytics.opinion.ingest import CaseRule
from layers.catalogue import get_layer
from layers.stores import open_store
from tianya.opinion_poller import BATCH, poll_once, read_feed

STORES = [
    pytest.param("gpkg", id="gpkg"),
    pytest.param("postgis", id="postgis", marks=pytest.mark.postgis),
]
#: What a post's understanding is compared on (not when it was ingested).
POST_FIELDS = ("topic_id", "category", "place_id", "community_code", "confidence", "case_id")
TOPIC_FIELDS = ("category", "community_code", "place_id", "first_at", "last_at", "posts", "status")


@pytest.fixture(scope="module")
def posts(sample_gpkg):
    return sample_posts(sample_gpkg, n=600, days=14)


@pytest.mark.parametrize("kind", STORES)
def test_duplicates_across_polls_are_stored_once(kind, sample_gpkg, posts, tmp_path):
    items = entries(posts)
    first, second = items[:400], items[200:]  # 200 posts in both feeds
    data = copy_store(kind, sample_gpkg, "op_dup")
    s = open_store(data)
    try:
        a = poll_once(s, write_feed(tmp_path / "a.json", first), cases=None)
        b = poll_once(s, write_feed(tmp_path / "b.json", second), cases=None)
        again = poll_once(s, str(tmp_path / "b.json"), cases=None)
    finally:
        s.close()
    assert (a.new, a.stored) == (400, 400)
    assert (b.entries, b.new, b.stored) == (400, 200, 200)
    assert (again.new, again.stored) == (0, 0)
    every = rows(data, "public_opinion", ("post_id", "topic_id"))  # the sample's too
    stored = {k: v for k, v in every.items() if k.startswith("F")}
    assert sorted(stored) == sorted(e["post_id"] for e in items)  # each once, none lost
    # a repost names its source's author ("//@handle:"): the public text masks every mention,
    # the hidden original keeps it
    texts = {k: v for k, v in rows(data, "public_opinion", ("text", "original_text")).items()
             if k in stored}  # fmt: skip
    handles = {e["handle"] for e in items}
    reposts = [p for p in texts.values() if "//@" in (p["original_text"] or "")]
    assert reposts and all("//@***" in p["text"] for p in reposts)
    named = [p["text"] for p in texts.values() if any(f"@{h}" in p["text"] for h in handles)]
    assert not named
    assert all(any(f"@{h}" in p["original_text"] for h in handles) for p in reposts)
    assert all(p["original_text"] is None for p in texts.values() if "@" not in p["text"])
    topics = rows(data, "opinion_topics", ("posts",))
    with_topic = [p for p in every.values() if p["topic_id"] is not None]
    assert sum(t["posts"] for t in topics.values()) == len(with_topic)
    assert {p["topic_id"] for p in with_topic} == set(topics)


@pytest.mark.parametrize("kind", STORES)
def test_malformed_entries_are_refused_with_a_logged_reason(
    kind, sample_gpkg, posts, tmp_path, caplog
):
    good = entries(posts.iloc[:50])
    bad = [
        dict(good[0], post_id="BAD-notext", text=""),
        dict(good[0], post_id="BAD-naive", posted_at="2026-11-20T08:00:00"),
        dict(good[0], post_id="BAD-platform", platform="tiktok"),
        dict(good[0], post_id="BAD-lonely-lon", lon=109.5, lat=None),
        dict(good[0], post_id="BAD-time", posted_at="yesterday"),
        "not an object",
    ]
    feed = write_feed(tmp_path / "bad.json", good[:20] + bad + good[20:])
    data = copy_store(kind, sample_gpkg, "op_bad")
    s = open_store(data)
    try:
        with caplog.at_level(logging.WARNING, logger="tianya.opinion"):
            res = poll_once(s, feed, cases=None)
    finally:
        s.close()
    assert res.stored == 50  # the rest went in
    mine = [k for k in rows(data, "public_opinion") if k.startswith(("F", "BAD"))]
    assert sorted(mine) == sorted(e["post_id"] for e in good)
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(logged) == len(bad)
    reasons = {
        "BAD-notext": "no text",
        "BAD-naive": "has no UTC offset",
        "BAD-platform": "platform 'tiktok' is not one of",
        "BAD-lonely-lon": "lon and lat come together",
        "BAD-time": "is not a date-time",
        "#25": "not an object",
    }
    for name, why in reasons.items():
        assert any(f"entry {name} refused" in m and why in m for m in logged), (name, logged)


def test_rss_and_atom_feeds_are_read():
    rss = b"""<?xml version="1.0"?><rss version="2.0" xmlns:georss="http://www.georss.org/georss">
    <channel><item><guid>r1</guid><description>\xe8\xb7\xaf\xe7\x81\xaf\xe5\x9d\x8f\xe4\xba\x86
    </description><pubDate>Sat, 21 Nov 2026 09:30:00 +0800</pubDate><category>weibo</category>
    <georss:point>18.3 109.5</georss:point></item>
    <item><guid>r2</guid><description>x</description><pubDate>soon</pubDate></item>
    </channel></rss>"""
    got, bad = read_feed(rss)
    assert [(g["post_id"], g["platform"], g["posted_at"], g["lon"], g["lat"]) for g in got] == [
        ("r1", "weibo", "2026-11-21T09:30:00+08:00", 109.5, 18.3)
    ]
    assert got[0]["_pos"] == 0
    assert bad == [("r2", "pubDate 'soon' is not an RFC 822 date")]
    atom = """<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>a1</id>
    <title>t</title><summary>红塘村积水</summary><published>2026-11-21T01:00:00Z</published>
    <author><name>someone</name></author><link href="https://example.org/a1"/></entry></feed>"""
    got, bad = read_feed(atom.encode(), platform="wechat")
    assert bad == []
    assert got[0]["text"] == "红塘村积水" and got[0]["platform"] == "wechat"
    assert (got[0]["handle"], got[0]["source_url"]) == ("someone", "https://example.org/a1")


@pytest.mark.parametrize("kind", STORES)
def test_sigkill_mid_batch_then_restart_loses_and_doubles_nothing(
    kind, sample_gpkg, posts, tmp_path
):
    """A real ``tianya monitor-opinion`` process killed while writing its second batch (posts
    written, transaction open), then run again: the same posts, topics and cases as a run that
    never crashed."""
    feed = write_feed(tmp_path / "feed.json", entries(posts))
    assert len(posts) > 2 * BATCH
    clean = copy_store(kind, sample_gpkg, "op_clean")
    s = open_store(clean)
    try:
        ref = poll_once(s, feed, cases=CaseRule())
    finally:
        s.close()
    assert ref.stored == len(posts) and ref.cases  # some topics opened cases
    crashed = copy_store(kind, sample_gpkg, "op_crash")
    kill_at(crashed, feed, "posts#2", str(tmp_path / "marker"))
    taken = [k for k in rows(crashed, "public_opinion") if k.startswith("F")]
    assert len(taken) == BATCH  # the first batch only: killed mid-batch
    finish(crashed, feed)
    assert _posts(crashed) == _posts(clean)
    assert rows(crashed, "opinion_topics", TOPIC_FIELDS) == rows(
        clean, "opinion_topics", TOPIC_FIELDS
    )
    assert _cases(crashed) == _cases(clean) == len(ref.cases)


def _posts(data):
    out = rows(data, "public_opinion", POST_FIELDS)
    for p in out.values():
        p["case_id"] = p["case_id"] is not None  # numbers depend on the order of the runs
    return out


def _cases(data) -> int:
    inc = rows(data, "incidents", ("channel", "description"))
    return sum(1 for p in inc.values() if (p["description"] or "").startswith("网络舆情话题"))


def test_the_sample_gets_its_posts(sample_gpkg):
    """``tianya generate`` (and the session sample) ingests the sample year's last 12 weeks of
    posts: no cases (the sample's incidents keep their planted patterns), quiet topics replied
    to; a second ingest stores nothing."""
    import datetime as dt

    import pandas as pd

    from geodata.sample import YEAR_END
    from tianya.opinion_poller import SAMPLE_WEEKS, ingest_sample

    data = copy_store("gpkg", sample_gpkg, "op_sample")
    s = open_store(data)
    try:
        n_cases = len(s.read_frame(get_layer("incidents")))
        posts = s.read_frame(get_layer("public_opinion"))
        topics = s.read_frame(get_layer("opinion_topics"))
        again = ingest_sample(s, seed=20261125)
        assert len(s.read_frame(get_layer("incidents"))) == n_cases
    finally:
        s.close()
    assert len(posts) > 5000 and len(topics) > 300
    assert (again.posts, again.skipped) == (0, len(posts))
    local = pd.to_datetime(posts["posted_at"], utc=True).dt.tz_convert("Asia/Shanghai").dt.date
    start = YEAR_END - dt.timedelta(days=7 * SAMPLE_WEEKS - 1)
    assert (local.min(), local.max()) == (start, YEAR_END)
    assert posts["case_id"].isna().all() and topics["case_id"].isna().all()
    closed = topics[topics["status"].eq("closed")]  # quiet topics of 3 posts or more: replied
    assert len(closed) and closed["posts"].ge(3).all() and closed["replied_by"].notna().all()
    assert topics["status"].isin(["open", "closed"]).all()
    assert posts[["author_id", "profile_url", "source_url"]].notna().all().all()
    placed = posts[posts["place_id"].notna()]
    assert placed.geometry.notna().all() and posts[posts["place_id"].isna()].geometry.isna().all()


@pytest.mark.parametrize("kind", STORES)
def test_the_server_polls_the_configured_feed_on_its_schedule(kind, sample_gpkg, posts, tmp_path):
    """``TIANYA_OPINION_FEED`` makes each server process poll the feed (default every 20
    minutes); two processes' ticks on one feed store each post once."""
    from tianya import schedule
    from tianya.settings import Settings

    items = entries(posts)[:150]
    feed = write_feed(tmp_path / "feed.json", items)
    data = copy_store(kind, sample_gpkg, "op_sched")
    assert Settings.from_env({}).opinion_poll_seconds == 1200
    assert schedule.for_server(Settings(data=data, opinion_feed=None)).names == ("escalate",)
    settings = Settings(data=data, opinion_feed=feed, escalate_seconds=0)
    a, b = schedule.for_server(settings), schedule.for_server(settings)  # two workers
    assert a.names == ("poll opinion",)
    now = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
    first = a.tick(now)["poll opinion"]
    second = b.tick(now + dt.timedelta(minutes=20))["poll opinion"]
    assert (first.new, first.stored) == (150, 150)
    assert (second.new, second.stored) == (0, 0)
    stored = [k for k in rows(data, "public_opinion", ("post_id",)) if k.startswith("F")]
    assert sorted(stored) == sorted(e["post_id"] for e in items)
