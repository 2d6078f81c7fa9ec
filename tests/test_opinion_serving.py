"""Serving online public opinion (issue 14, items 5 and 6): hot topics, opinion hot spots.

The library (:mod:`analytics.opinion.hot`) against plain counting of the posts, and the
route ``/opinion/topics`` and the ``hot-spots`` process on ``public_opinion`` against the
posts written into the server's store (``tests/opinionkit.py``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from opinionkit import opinion_server

from analytics.errors import AnalyticsError
from analytics.opinion.hot import hot_topics, opinion_hot_spots

DAY = pd.Timedelta(hours=24)


def _by_hand(posts, until, since, topics_posts=None):
    """Hot topics counted post by post: {topic: (recent, before, growth)}."""
    width = until - since
    recent, before = Counter(), Counter()
    for t, at in zip(posts["topic_id"], posts["posted_at"], strict=True):
        if t is None or pd.isna(t) or at > until:
            continue
        if since < at <= until:
            recent[str(t)] += 1
        elif since - width < at <= since:
            before[str(t)] += 1
    return {t: (n, before[t], n / max(1, before[t])) for t, n in recent.items()}


@pytest.fixture(scope="module")
def served(sample_gpkg, sample_data):
    return opinion_server("gpkg", sample_gpkg, sample_data)


# --- the library ---------------------------------------------------------------------------


def test_hot_topics_count_the_window_and_the_one_before_as_posts_do(served):
    _, posts, _, understood = served
    until = pd.Timestamp("2026-11-12T12:00:00Z")
    since = until - 3 * DAY
    expected = _by_hand(understood, until, since)
    got = hot_topics(understood, until=until, since=since, limit=None)
    assert len(got) == len(expected) > 5
    for r in got.itertuples():
        assert (r.posts_recent, r.posts_before, r.growth) == expected[r.topic_id]
    # ordered by volume, then growth
    keys = list(zip(got["posts_recent"], got["growth"], strict=True))
    assert keys == sorted(keys, reverse=True)
    by_growth = hot_topics(understood, until=until, since=since, order="growth", limit=None)
    keys = list(zip(by_growth["growth"], by_growth["posts_recent"], strict=True))
    assert keys == sorted(keys, reverse=True)
    assert set(by_growth["topic_id"]) == set(expected)


def test_hot_topics_filter_and_limit(served):
    _, _, _, u = served
    until = u["posted_at"].max()
    all_ = hot_topics(u, limit=None)
    cat = all_["category"].iloc[0]
    only = hot_topics(u, limit=None, category=cat)
    assert set(only["topic_id"]) == set(all_.loc[all_["category"] == cat, "topic_id"])
    comm = all_["community_code"].dropna().iloc[0]
    only = hot_topics(u, limit=None, community=comm)
    assert set(only["topic_id"]) == set(all_.loc[all_["community_code"] == comm, "topic_id"])
    assert len(hot_topics(u, limit=2)) == min(2, len(all_))
    assert hot_topics(u, until=until).equals(hot_topics(u))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"order": "hottest"}, "order"),
        ({"limit": 0}, "limit must be a positive integer"),
        ({"since": "2026-11-20", "until": "2026-11-19"}, "must be before until"),
    ],
)
def test_hot_topics_refuse_bad_arguments(served, kw, message):
    with pytest.raises(AnalyticsError, match=message):
        hot_topics(served[3], **kw)


def test_hot_topics_refuse_posts_without_topics():
    with pytest.raises(AnalyticsError, match="missing: topic_id"):
        hot_topics(pd.DataFrame({"posted_at": [], "category": [], "community_code": []}))


def test_opinion_hot_spots_count_each_community_and_find_a_planted_cluster(sample_data):
    comm = sample_data["communities"]
    utm = comm.to_crs(32649)
    target = comm["code"].iloc[0]
    # the target and its 3 nearest communities get 30 posts each, every other 1
    c = utm.geometry.centroid
    d = c.distance(c.iloc[0]).sort_values()
    cluster = list(comm["code"].iloc[d.index[:4]])
    rows = []
    for code in comm["code"]:
        rows += [{"community_code": code, "category": "street_light"}] * (
            30 if code in cluster else 1
        )
    rows += [{"community_code": None, "category": "street_light"}] * 7
    posts = pd.DataFrame(rows)
    out = opinion_hot_spots(posts, comm, unit="community", k=4)
    counts = dict(zip(out["code"], out["count"], strict=True))
    assert counts == {c: (30 if c in cluster else 1) for c in comm["code"]}
    assert out.attrs["unplaced"] == 7
    hot = set(out.loc[out["gi_bin"] > 0, "code"])
    assert target in hot
    # Gi* counts a unit with its neighbours: a hot unit is in the cluster or next to it
    from analytics.weights import knn_weights

    w = knn_weights(utm.reset_index(drop=True), k=4)
    codes = list(utm["code"])
    near = {
        codes[i] for i in range(len(codes)) if {codes[j] for j in w[[i], :].indices} & set(cluster)
    }
    assert hot <= set(cluster) | near
    assert hot & set(cluster)
    far = set(codes) - set(cluster) - near
    assert far and not (hot & far)


def test_opinion_hot_spots_per_cell_count_the_placed_points(served, sample_data):
    _, _, _, u = served
    out = opinion_hot_spots(u, sample_data["communities"], unit="cell", cell_size=1000)
    placed = u["place_lon"].notna() | u["lon"].notna()
    assert out["count"].sum() <= placed.sum()
    assert out.attrs["unplaced"] == int((~placed).sum())
    # every placed point inside the communities is counted in exactly one cell
    pts = gpd.GeoSeries(
        gpd.points_from_xy(
            u["lon"].where(u["lon"].notna(), u["place_lon"])[placed],
            u["lat"].where(u["lat"].notna(), u["place_lat"])[placed],
        ),
        crs=4326,
    )
    inside = pts.within(shapely.union_all(sample_data["communities"].geometry.values)).sum()
    assert inside <= out["count"].sum()
    assert set(out["gi_bin"]) <= {-3, -2, -1, 0, 1, 2, 3}
    with pytest.raises(AnalyticsError, match="unit"):
        opinion_hot_spots(u, sample_data["communities"], unit="street")


# --- the route -----------------------------------------------------------------------------


def test_topics_route_answers_the_hot_topics_of_the_posts_stored(served):
    srv, posts, _, _ = served
    r = srv.get("/opinion/topics?limit=50")
    assert r.status_code == 200, r.text
    doc = r.json()
    until = posts["posted_at"].max()
    assert pd.Timestamp(doc["until"]) == until and doc["until_kind"] == "latest_post"
    assert pd.Timestamp(doc["since"]) == until - DAY
    expected = _by_hand(posts, until, until - DAY)
    got = {
        t["topic_id"]: (t["posts_recent"], t["posts_before"], t["growth"]) for t in doc["topics"]
    }
    assert got == expected  # fewer than 50 hot topics in a day of the sample
    assert doc["number_returned"] == len(doc["topics"]) > 0
    totals = posts.groupby("topic_id").size()
    for t in doc["topics"]:
        assert t["posts"] == totals[t["topic_id"]]  # the topic's whole life
        assert t["community"] and t["category_label"]
    # the measures in plain words (it echoed the module's docstring, Sphinx roles and all)
    assert "max(1," in doc["definitions"] and ":func:" not in doc["definitions"]
    assert "Hot spots" not in doc["definitions"] and len(doc["definitions"]) < 600


def test_topics_route_window_order_and_filters(served):
    srv, posts, _, _ = served
    until = pd.Timestamp("2026-11-15T12:00:00Z")
    since = until - pd.Timedelta(hours=72)
    q = f"since={since.isoformat().replace('+00:00', 'Z')}&until=2026-11-15T12:00:00Z"
    doc = srv.get(f"/opinion/topics?{q}&order=growth&limit=5").json()
    assert doc["until_kind"] == "requested" and doc["order"] == "growth"
    expected = _by_hand(posts, until, since)
    ranked = sorted(expected.values(), key=lambda v: (v[2], v[0]), reverse=True)[:5]
    assert [(t["posts_recent"], t["posts_before"], t["growth"]) for t in doc["topics"]] == ranked
    upto = posts[posts["posted_at"] <= until].groupby("topic_id").size()
    for t in doc["topics"]:  # a topic's posts as of until, not as of now
        assert t["posts"] == upto[t["topic_id"]]
        assert pd.Timestamp(t["last_at"]) <= until
    cat = doc["topics"][0]["category"]
    doc = srv.get(f"/opinion/topics?{q}&category={cat}&limit=50").json()
    cats = {str(t): c for t, c in zip(posts["topic_id"], posts["category"], strict=True)}
    want = {t for t in expected if cats[t] == cat}
    assert {t["topic_id"] for t in doc["topics"]} == want


def test_topics_route_html_is_a_page_of_the_same_topics(served):
    srv, _, _, _ = served
    doc = srv.get("/opinion/topics?limit=5").json()
    r = srv.get("/opinion/topics?limit=5&f=html")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<script" not in r.text and "http://" not in r.text and "https://" not in r.text
    for t in doc["topics"]:
        assert f"<td>{t['topic_id']}</td>" in r.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("order=hottest", "must be one of: volume, growth"),
        ("limit=0", "limit must be an integer from 1 to 50"),
        ("limit=51", "limit must be an integer from 1 to 50"),
        ("limit=ten", "limit must be an integer from 1 to 50"),
        ("category=potholes", "must be one of: exposed_garbage"),
        ("community=nowhere", "not a valid community"),
        ("f=xml", "must be one of: json, html"),
        ("since=yesterday", "since must be an RFC 3339 instant"),
        ("since=2026-11-20T00:00:00Z&until=2026-11-19T00:00:00Z", "must be before until"),
        ("since=2026-11-01T00:00:00Z&until=2026-11-19T00:00:00Z", "at most 7 days"),
        ("handle=x", "'handle' is not a valid query parameter"),
        ("limit=3&limit=4", "given more than once"),
    ],
)
def test_topics_route_refuses_bad_parameters_naming_them(served, query, message):
    r = served[0].get(f"/opinion/topics?{query}")
    assert r.status_code == 400, r.text
    assert message in r.json()["description"]


def test_topics_route_is_read_only(served):
    import requests

    r = requests.post(served[0].url + "/opinion/topics", json={}, timeout=30)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert served[0].get("/opinion/nothing").status_code == 404


# --- the process ---------------------------------------------------------------------------


def test_hot_spots_process_counts_the_posts_of_each_community(served, sample_data):
    import requests

    srv, posts, _, _ = served
    body = {
        "inputs": {
            "collection": "public_opinion",
            "aggregation": "communities",
            "datetime": "2026-11-09T00:00:00Z/2026-11-22T23:59:59Z",
        }
    }
    r = requests.post(srv.url + "/processes/hot-spots/execution", json=body, timeout=120)
    assert r.status_code == 200, r.text
    got = {f["properties"]["code"]: f["properties"]["count"] for f in r.json()["features"]}
    lo, hi = pd.Timestamp("2026-11-09T00:00:00Z"), pd.Timestamp("2026-11-22T23:59:59Z")
    sel = posts[(posts["posted_at"] >= lo) & (posts["posted_at"] <= hi) & posts.geometry.notna()]
    joined = gpd.sjoin(sel[["geometry"]], sample_data["communities"][["code", "geometry"]])
    joined = joined[~joined.index.duplicated()]
    expected = defaultdict(int, joined["code"].value_counts().to_dict())
    assert got == {c: expected[c] for c in got}
    assert sum(got.values()) > 0


def test_hot_spots_process_on_posts_is_bounded_as_on_cases(served):
    import requests

    srv = served[0]
    body = {"inputs": {"collection": "public_opinion", "aggregation": "fishnet", "cell_size": 1}}
    r = requests.post(srv.url + "/processes/hot-spots/execution", json=body, timeout=60)
    assert r.status_code == 400 and "cell_size" in r.json()["description"]


def test_window_limit_is_a_week():
    from tianya.opinion_api import MAX_WINDOW

    assert MAX_WINDOW == dt.timedelta(days=7)


# --- the weekly report ---------------------------------------------------------------------


def test_weekly_report_public_opinion_section_counts_the_weeks_posts_and_topics(
    served, sample_data
):
    from analytics.report import weekly_report

    _, posts, topics, _ = served
    topics = topics.copy()
    in_w46 = posts[
        (posts["posted_at"] >= pd.Timestamp("2026-11-09T00:00:00+08:00"))
        & (posts["posted_at"] < pd.Timestamp("2026-11-16T00:00:00+08:00"))
    ]
    first = str(in_w46["topic_id"].dropna().iloc[0])  # a topic of the week gets a case
    topics.loc[topics["topic_id"] == first, ["case_id", "status", "reply_note"]] = [
        "C2026-000001",
        "replied",
        "已清理 <b>done</b>",
    ]
    rep = weekly_report(
        sample_data["incidents"],
        sample_data["communities"],
        "2026-W46",
        charts=False,
        outlook=False,
        opinion=(posts, topics),
        top_topics=200,
    )
    op = rep.figures["public_opinion"]
    ot = op["topics"]
    assert op["cases"] >= 0 and "channels" in op  # the online channels' cases are kept
    # by hand: Beijing Monday 2026-11-09 .. Sunday 2026-11-15
    start = pd.Timestamp("2026-11-09T00:00:00+08:00")
    end = start + pd.Timedelta(days=7)
    week = [r for r in posts.to_dict("records") if start <= r["posted_at"] < end]
    placed = [r for r in week if not pd.isna(r["place_id"])]
    act = [r for r in week if r["actionable"]]
    assert ot["posts"] == len(week) > 0
    assert (ot["placed"], ot["unknown"]) == (len(placed), len(week) - len(placed))
    assert ot["actionable"] == len(act)
    assert ot["actionable_unknown"] == len([r for r in act if r not in placed])
    in_week = Counter(str(r["topic_id"]) for r in week if not pd.isna(r["topic_id"]))
    before = Counter(
        str(r["topic_id"])
        for r in posts.to_dict("records")
        if not pd.isna(r["topic_id"]) and start - pd.Timedelta(days=7) <= r["posted_at"] < start
    )
    assert ot["topics"] == len(in_week)
    firsts = dict(zip(topics["topic_id"], topics["first_at"], strict=True))
    assert ot["new_topics"] == sum(firsts[t] >= start for t in in_week)
    rows = {r["topic_id"]: r for r in ot["top"]}
    assert set(rows) == set(in_week)  # fewer than 200 topics in the week
    upto = Counter(str(t) for t, at in zip(posts["topic_id"], posts["posted_at"], strict=True)
                   if not pd.isna(t) and at < end)  # fmt: skip
    for t, n in in_week.items():
        assert (rows[t]["posts_week"], rows[t]["posts_before"]) == (n, before[t])
        assert rows[t]["growth"] == round(n / max(1, before[t]), 2)
        assert rows[t]["posts"] == upto[t]  # as the report's week ended, not as of now
    weeks = [r["posts_week"] for r in ot["top"]]
    assert weeks == sorted(weeks, reverse=True)
    assert rows[first]["case_opened"] and rows[first]["status"] == "replied"
    assert rows[first]["case_id"] == "C2026-000001"
    assert "已清理 &lt;b&gt;done&lt;/b&gt;" in rep.html  # a reply is text, not markup
    assert ot["cases_opened"] == 1
    assert sum(r["case_opened"] for r in ot["top"]) == 1
    assert 'id="opinion-topics"' in rep.html and f"<td>{ot['top'][0]['topic_id']}</td>" in rep.html
    plain = weekly_report(
        sample_data["incidents"], sample_data["communities"], "2026-W46", charts=False,
        outlook=False,
    )  # fmt: skip
    assert plain.figures["public_opinion"]["topics"] is None
    assert 'id="opinion-topics"' not in plain.html and 'id="opinion"' in plain.html


def test_report_command_reads_the_stores_posts_into_the_opinion_section(served, tmp_path):
    import json

    from click.testing import CliRunner

    from tianya.cli import main

    srv, posts, _, _ = served
    out = tmp_path / "figures.json"
    res = CliRunner().invoke(
        main,
        ["report", "--data", srv.data, "--week", "2026-W46", "-o", str(tmp_path / "r.html"),
         "--json", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    ot = json.loads(out.read_text())["public_opinion"]["topics"]
    start = pd.Timestamp("2026-11-09T00:00:00+08:00")
    week = posts[(posts["posted_at"] >= start) & (posts["posted_at"] < start + 7 * DAY)]
    assert ot["posts"] == len(week) > 0
    assert ot["topics"] == week["topic_id"].nunique()


# --- the screen ------------------------------------------------------------------------------


def test_screen_shows_the_days_hot_topics_offline(served, browser):
    """Today's hot topics panel, in a real browser with every other host refused: the topics
    of the day's posts by their posts that day (counted here from the stored posts)."""
    from browserkit import OfflinePage

    srv, posts, _, _ = served
    day = "2026-11-12"
    p = OfflinePage(browser, viewport=(1920, 1080)).goto(
        f"{srv.url}/screen?date={day}&refresh=600", "#map"
    )
    p.page.wait_for_function(
        "() => Number(document.getElementById('updated').dataset.refreshes) >= 1",
        timeout=60_000,
    )
    start = pd.Timestamp(f"{day}T00:00:00+08:00")
    today = posts[(posts["posted_at"] >= start) & (posts["posted_at"] < start + DAY)]
    counts = Counter(str(t) for t in today["topic_id"].dropna())
    listed = p.page.eval_on_selector_all(
        "#opinion-topics li",
        "els => els.map(e => [e.dataset.topic, Number(e.querySelector('b.n').textContent)])",
    )
    assert listed, "no topic drawn"
    assert [n for _, n in listed] == sorted(counts.values(), reverse=True)[: len(listed)]
    assert len(listed) == min(8, len(counts))
    for topic, n in listed:
        assert counts[topic] == n
    head = p.texts("#opinion-count")[0]
    assert f"posts {len(today)} " in head and f"actionable {int(today['actionable'].sum())}" in head
    summary = srv.get(f"/screen/summary.json?date={day}").json()["opinion"]
    assert [t["topic_id"] for t in summary["topics"]] == [t for t, _ in listed]
    p.assert_clean()
    p.close()


# --- through the real ingest ----------------------------------------------------------------


def test_ingested_posts_serve_hot_topics_and_the_report_with_their_cases(
    sample_gpkg, sample_data, tmp_path
):
    """Posts stored by :func:`analytics.opinion.ingest.ingest` (topics opening cases) read
    back by :func:`read_opinion`: the hot topics count the stored posts, and the report marks
    exactly the topics that opened a case."""
    import shutil

    from analytics.opinion.gazetteer import build_gazetteer
    from analytics.opinion.hot import read_opinion
    from analytics.opinion.ingest import ingest
    from analytics.report import weekly_report
    from geodata.opinion import generate_posts
    from layers.catalogue import LAYERS
    from layers.stores import open_store

    path = str(tmp_path / "ingested.gpkg")
    shutil.copy(sample_gpkg, path)
    raw = generate_posts(
        sample_data, seed=3, n_posts=900, start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 15)
    )
    raw = raw[[c for c in raw.columns if not c.startswith("true_")]].copy()
    for c in ("post_id", "repost_of", "reply_to"):  # apart from any post the sample holds
        raw[c] = ["X3-" + v if isinstance(v, str) else v for v in raw[c]]
    with open_store(path) as store:
        res = ingest(
            store, raw, build_gazetteer(sample_data), now=dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
        )
        assert res.posts == len(raw) and res.cases_opened
        posts, topics = read_opinion(store)
        stored = store.read_frame(LAYERS["public_opinion"])
    assert "handle" not in posts.columns and "replied_by" not in topics.columns
    until = pd.Timestamp("2026-11-12T00:00:00Z")
    hot = hot_topics(posts, topics, since=until - 2 * DAY, until=until, limit=None)
    stored["posted_at"] = pd.to_datetime(stored["posted_at"], utc=True, format="ISO8601")
    assert {r.topic_id: (r.posts_recent, r.posts_before) for r in hot.itertuples()} == {
        t: v[:2] for t, v in _by_hand(stored, until, until - 2 * DAY).items()
    }
    rep = weekly_report(
        sample_data["incidents"], sample_data["communities"], "2026-W45", charts=False,
        outlook=False, opinion=(posts, topics), top_topics=500,
    )  # fmt: skip
    ot = rep.figures["public_opinion"]["topics"]
    with_case = set(topics.loc[topics["case_id"].notna(), "topic_id"].astype(str))
    listed = {r["topic_id"]: r for r in ot["top"]}
    assert {t for t, r in listed.items() if r["case_opened"]} == with_case & set(listed)
    assert ot["cases_opened"] == len(with_case & set(listed)) > 0
