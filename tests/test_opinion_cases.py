"""Topics to cases (issue 14, item 4): an actionable topic opens ONE case through the normal
intake, later posts attach to it, exactly once even when killed between the case and its
link, and a reply can be recorded against a topic. Both stores."""

from __future__ import annotations

import pandas as pd
import pytest
import requests
import shapely
from conftest import KEYS, LiveServer
from opinionfeedkit import copy_store, entries, finish, kill_at, sample_posts, write_feed

from analytics.opinion.ingest import CaseRule, ingest, reply_topic
from layers import access, lifecycle
from layers.catalogue import get_layer
from layers.errors import Forbidden, InvalidParameter, NotAuthenticated, NotFound
from layers.stores import open_store
from tianya.opinion_poller import gazetteer_of

STORES = [
    pytest.param("gpkg", id="gpkg"),
    pytest.param("postgis", id="postgis", marks=pytest.mark.postgis),
]
INCIDENTS = get_layer("incidents")
TOPICS = get_layer("opinion_topics")
POSTS = get_layer("public_opinion")
HONGTANG = "460204004201"  # 红塘村 of the sample
#: After the sample's posts (to 2026-11-22) and the 72 h grouping window: no sample topic open.
T0 = pd.Timestamp("2026-11-26T09:00:00+08:00")


def post(pid, text, hours, platform="weibo"):
    return {
        "post_id": pid,
        "platform": platform,
        "text": text,
        "posted_at": T0 + pd.Timedelta(hours=hours),
        "handle": f"user_{pid}",
    }


def batch(*posts):
    return pd.DataFrame(list(posts))


@pytest.fixture(params=STORES)
def store(request, sample_gpkg):
    s = open_store(copy_store(request.param, sample_gpkg, "op_cases"))
    yield s
    s.close()


def _monitor_cases(store) -> pd.DataFrame:
    inc = store.read_frame(INCIDENTS)
    return inc[
        inc["channel"].eq("public_opinion") & inc["description"].str.startswith("网络舆情话题")
    ]


def test_actionable_topic_opens_one_case_and_later_posts_attach(store):
    gz = gazetteer_of(store)
    before = len(store.read_frame(INCIDENTS))
    # an alias (0.85) and a typo (0.75): not confident enough alone; the third post opens it
    r1 = ingest(store, batch(post("h1", "红塘那边路灯不亮，晚上很黑", 0)), gz)
    r2 = ingest(store, batch(post("h2", "红堂村路灯还是不亮", 1, "forum")), gz)
    assert (r1.cases_opened, r2.cases_opened) == ([], [])
    (tid,) = {p["topic_id"] for k, p in rows_of(store, POSTS).items() if k in ("h1", "h2")}
    topic = store.get(TOPICS, tid)["properties"]
    assert (topic["posts"], topic["case_id"], topic["status"]) == (2, None, "open")
    assert len(store.read_frame(INCIDENTS)) == before
    r3 = ingest(store, batch(post("h3", "红塘那边的路灯坏了好几天", 2)), gz)
    (case_no,) = r3.cases_opened
    case = store.get(INCIDENTS, case_no)
    p = case["properties"]
    assert (p["channel"], p["category"], p["status"]) == (
        "public_opinion",
        "street_light",
        "dispatched",
    )
    assert p["department"] and p["community_code"] == HONGTANG
    assert "红塘村" in p["title"] and "路灯不亮" in p["title"]
    assert p["description"].startswith(f"网络舆情话题 {tid}：3 条帖文")
    topic_feat = store.get(TOPICS, tid)
    assert shapely.geometry.shape(case["geometry"]).equals_exact(
        shapely.geometry.shape(topic_feat["geometry"]), 1e-9
    )
    assert [h["to_status"] for h in lifecycle.history(store, case_no)] == [
        "collected",
        "registered",
        "dispatched",
    ]
    topic = topic_feat["properties"]
    assert (topic["case_id"], topic["status"], topic["posts"]) == (case_no, "case_opened", 3)
    mine = {k: v["case_id"] for k, v in rows_of(store, POSTS).items() if k in ("h1", "h2", "h3")}
    assert mine == dict.fromkeys(("h1", "h2", "h3"), case_no)
    # a later post of the topic attaches to the case: no second case
    r4 = ingest(store, batch(post("h4", "红塘路灯还没修好，第二天了", 20)), gz)
    assert (r4.cases_opened, r4.posts_attached) == ([], 1)
    assert store.get(POSTS, "h4")["properties"]["case_id"] == case_no
    assert store.get(TOPICS, tid)["properties"]["posts"] == 4
    assert len(store.read_frame(INCIDENTS)) == before + 1
    # the same posts again: stored once, nothing opened
    again = ingest(store, batch(post("h3", "红塘那边的路灯坏了好几天", 2)), gz)
    assert (again.posts, again.skipped, again.cases_opened) == (0, 1, [])


def test_the_rule(store):
    gz = gazetteer_of(store)
    one = batch(post("c1", "红塘村的路灯坏了好几天", 0))  # the full name: confidence 0.95
    assert ingest(store, one, gz, cases=None).cases_opened == []  # no rule, no case
    assert CaseRule().opens(1, 0.95, True, "street_light")
    assert not CaseRule().opens(2, 0.85, True, "street_light")
    assert not CaseRule().opens(9, 0.95, False, "street_light")  # no place: no location
    r = ingest(store, batch(post("c2", "红塘村路灯不亮", 1)), gz)
    assert len(r.cases_opened) == 1  # the topic had none: a confident post opens it
    noise = ingest(store, batch(post("c3", "今天三亚湾的晚霞真好看", 2)), gz)
    assert noise.cases_opened == [] and noise.topics_new == 0
    with pytest.raises(InvalidParameter, match="min_posts"):
        CaseRule(min_posts=0)


def rows_of(store, layer):
    f = store.read_frame(layer)
    return {r[layer.key]: r for r in f.drop(columns="geometry").to_dict("records")}


@pytest.mark.parametrize("kind", STORES)
def test_case_exactly_once_after_a_kill_between_case_and_link(kind, sample_gpkg, tmp_path):
    """Killed after creating a case, before linking its topic: the restart opens each case
    once, each linked to its topic and posts."""
    feed = write_feed(tmp_path / "feed.json", entries(sample_posts(sample_gpkg, n=300, days=10)))
    data = copy_store(kind, sample_gpkg, "op_case_kill")
    s = open_store(data)
    before = len(_monitor_cases(s))
    s.close()
    kill_at(data, feed, "case#2", str(tmp_path / "marker"))
    s = open_store(data)
    try:
        assert len(_monitor_cases(s)) == before  # the killed batch left nothing
        assert s.read_frame(POSTS)["post_id"].str.startswith("F").sum() < 300
    finally:
        s.close()
    finish(data, feed)
    s = open_store(data)
    try:
        cases = _monitor_cases(s)
        topics = s.read_frame(TOPICS)
        posts = s.read_frame(POSTS)
    finally:
        s.close()
    linked = topics[topics["case_id"].notna()]
    assert len(cases) - before == len(linked) > 1
    assert set(linked["case_id"]) == set(cases["case_no"])  # one case a topic, each linked
    assert linked["case_id"].is_unique
    for _, t in linked.iterrows():
        assert (
            cases.set_index("case_no")
            .loc[t["case_id"], "description"]
            .startswith(f"网络舆情话题 {t['topic_id']}：")
        )
        mine = posts[posts["topic_id"].eq(t["topic_id"])]
        assert mine["case_id"].eq(t["case_id"]).all()


def test_reply_is_recorded_against_a_topic(store):
    gz = gazetteer_of(store)
    ingest(store, batch(post("r1", "红塘村的路灯坏了好几天", 0)), gz)
    tid = store.get(POSTS, "r1")["properties"]["topic_id"]
    admin = access.Principal("duty officer", "dispatcher")
    with pytest.raises(NotAuthenticated):
        reply_topic(store, tid, "已修复", access.PUBLIC)
    with pytest.raises(Forbidden, match="dispatcher, admin"):
        reply_topic(store, tid, "已修复", access.Principal("r", "reporter"))
    with pytest.raises(InvalidParameter, match="'note' is required"):
        reply_topic(store, tid, "  ", admin)
    with pytest.raises(InvalidParameter, match="replied, closed"):
        reply_topic(store, tid, "已修复", admin, status="done")
    with pytest.raises(NotFound, match="T999999"):
        reply_topic(store, "T999999", "已修复", admin)
    got = reply_topic(store, tid, "路灯已于11月21日修复。", admin, status="closed")
    assert (got["reply_note"], got["status"], got["replied_by"]) == (
        "路灯已于11月21日修复。",
        "closed",
        "duty officer",
    )
    assert got["replied_at"] is not None


def test_reply_route(sample_gpkg):
    """POST /opinion/topics/{id}/reply: 401, 403, 400, 404, then 200 with the public fields."""
    data = copy_store("gpkg", sample_gpkg, "op_reply_route")
    s = open_store(data)
    ingest(s, batch(post("w1", "红塘村的路灯坏了好几天", 0)), gazetteer_of(s))
    tid = s.get(POSTS, "w1")["properties"]["topic_id"]
    s.close()
    server = LiveServer(data)
    try:
        url = f"{server.url}/opinion/topics/{tid}/reply"

        def post_(body, role=None, path=url):
            h = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
            return requests.post(path, json=body, headers=h, timeout=60)

        assert post_({"note": "已修复"}).status_code == 401
        assert post_({"note": "已修复"}, "reporter").status_code == 403
        r = post_({"note": "已修复", "extra": 1}, "dispatcher")
        assert r.status_code == 400 and "a reply takes: note, status" in r.text
        nf = post_({"note": "x"}, "dispatcher", f"{server.url}/opinion/topics/T999999/reply")
        assert nf.status_code == 404
        r = post_({"note": "已修复", "status": "replied"}, "dispatcher")
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["reply_note"] == "已修复"
        assert r.json()["properties"]["replied_by"]  # a dispatcher sees who replied
        items = f"{server.url}/collections/opinion_topics/items/{tid}?f=json"
        pub = requests.get(items, timeout=60)
        assert pub.status_code == 200
        props = pub.json()["properties"]
        assert props["status"] == "replied" and "replied_by" not in props
        assert requests.get(url, timeout=60).status_code == 405
    finally:
        server.stop()


def test_a_lost_state_does_not_reuse_topic_ids(store):
    """Without its state row (a store copied without it, or deleted), the grouping starts
    afresh but its topic ids continue after the stored ones: topic T000000 of the sample
    took a new post's figures and opened a case on its first post (PostGIS copies lacked
    the state before layers.pgload copied it)."""
    from analytics.opinion.ingest import STATE

    top = max(store.read_frame(TOPICS)["topic_id"])
    store.delete(STATE, "topics")
    r = ingest(store, batch(post("s1", "红塘那边路灯不亮，晚上很黑", 0)), gazetteer_of(store))
    assert (r.topics_new, r.topics_updated, r.cases_opened) == (1, 0, [])
    tid = store.get(POSTS, "s1")["properties"]["topic_id"]
    assert tid == f"T{int(top[1:]) + 1:06d}"
    assert store.get(TOPICS, tid)["properties"]["posts"] == 1
