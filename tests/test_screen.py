"""The command-center screen (``/screen``) in Chromium, offline, on both stores.

Every request to a host other than the server is refused and recorded (``browserkit``): the
screen must load with none refused and none failed, draw the district from the server's own
base map (``/styles/basemap-dark``), label the day its figures are for, show every time in
Beijing time whatever the browser's zone, say so on a day without cases, fly to an overdue
case clicked in the list and show the hot-spot cells at the first view. Expected values are
computed here from the sample with pandas, not read from the page's summary.

One browser for the module (the ``browser`` fixture) and one page on the default view per
store (``screen``); the tests that need another day or time zone open their own page.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from browserkit import OfflinePage, not_blank

from analytics import palettes
from layers import basemap
from layers.district import TZ_NAME as TZ
from layers.district import district_boundary

pytestmark = pytest.mark.both_stores

VIEW = (1920, 1080)  # the hall's screen


def _open(browser, url: str, refreshes: int = 1, **kw) -> OfflinePage:
    """The screen at ``url``, after ``refreshes`` summaries and its base map's tiles."""
    p = OfflinePage(browser, viewport=VIEW, **kw).goto(url, "#map")
    p.page.wait_for_function(
        f"() => Number(document.getElementById('updated').dataset.refreshes) >= {refreshes}",
        timeout=60_000,
    )
    # the base map's tiles drawn and faded in (Leaflet fades a new tile in over 200 ms)
    p.page.wait_for_function(
        """() => { const b = window.tianyaScreen.basemap;
            return b.style && !b.isLoading() && Array.from(b.getContainer()
                .querySelectorAll('.leaflet-tile')).every(t => Number(t.style.opacity) === 1); }""",
        timeout=60_000,
    )
    return p


@pytest.fixture(scope="module")
def screen(browser, live_server):
    """The screen on its default day (no ``?date=``), opened once per store."""
    p = _open(browser, f"{live_server.url}/screen?refresh=600")
    yield p
    p.close()


def _beijing_days(sample_data) -> pd.Series:
    reported = pd.to_datetime(sample_data["incidents"]["reported_at"], utc=True)
    return reported.dt.tz_convert(TZ).dt.date


def _rgb(hex_: str) -> np.ndarray:
    return np.array([int(hex_[i : i + 2], 16) for i in (1, 3, 5)])


def _points(p, lonlats) -> list[tuple[int, int]]:
    """Page pixels of (lon, lat) pairs on the screen's map."""
    return [
        tuple(xy)
        for xy in p.page.evaluate(
            """(pts) => { const m = window.tianyaScreen.map;
                const r = m.getContainer().getBoundingClientRect();
                return pts.map(([lon, lat]) => { const q = m.latLngToContainerPoint([lat, lon]);
                    return [Math.round(r.left + q.x), Math.round(r.top + q.y)]; }); }""",
            [list(map(float, ll)) for ll in lonlats],
        )
    ]


def _near(img, x: int, y: int, colour: str, r: int, tol: int) -> int:
    win = img[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].astype(int)
    return int((np.abs(win - _rgb(colour)).sum(axis=2) <= tol).sum())


# --- offline, with the district drawn ------------------------------------------------------


def test_screen_offline_draws_the_district(screen):
    """Without base tiles the cases floated on a dark void (and OpenStreetMap was asked)."""
    p = screen
    p.assert_clean()
    base = p.page.evaluate(
        """() => { const b = window.tianyaScreen.basemap; return {stats: b.stats,
            error: b.error, tiles: Array.from(document.querySelectorAll('.leaflet-tile'))
            .map(t => [t.tagName, t.dataset.status])}; }"""
    )
    assert base["error"] is None
    assert ["CANVAS", "drawn"] in base["tiles"]
    assert all(s in ("drawn", "empty") for _, s in base["tiles"]), base["tiles"]
    assert base["stats"]["labels"] > 10  # the district's and its communities' names
    img = p.screenshot()
    not_blank(img)
    # the whole district is in the first view, and its boundary is drawn where it runs
    inside = p.page.evaluate(
        """(b) => window.tianyaScreen.map.getBounds().contains([[b[1], b[0]], [b[3], b[2]]])""",
        list(district_boundary().bounds),
    )
    assert inside
    line = basemap.THEMES["dark"]["district_line"]
    ring = max(district_boundary().geoms, key=lambda g: g.area).exterior
    pts = [ring.interpolate(f, normalized=True) for f in np.linspace(0, 1, 60, endpoint=False)]
    hits = [
        _near(img, x, y, line, r=3, tol=60) > 0 for x, y in _points(p, [(q.x, q.y) for q in pts])
    ]
    assert sum(hits) >= 0.6 * len(hits), f"boundary seen at {sum(hits)} of {len(hits)} points"


def test_hot_spot_cells_visible_at_the_first_view(screen):
    """The cells were too small and faint to see at the initial view."""
    p = screen
    cells = p.page.evaluate("() => window.tianyaScreen.summary.hotspots.features")
    assert cells, "the sample's last day has hot cells"
    img = p.screenshot()
    seen = 0
    for f in cells:
        ring = f["geometry"]["coordinates"][0]
        (x0, y0), (x1, y1) = _points(p, [ring[0], ring[2]])
        xs, ys = sorted((x0, x1)), sorted((y0, y1))
        assert xs[1] - xs[0] >= 5 and ys[1] - ys[0] >= 5  # a cell is a few pixels at least
        cx, cy = (xs[0] + xs[1]) // 2, (ys[0] + ys[1]) // 2
        r = (xs[1] - xs[0]) // 2 + 1
        if _near(img, cx, cy, f["properties"]["color"], r=r, tol=60) >= 6:
            seen += 1
    assert seen >= 0.8 * len(cells), f"{seen} of {len(cells)} hot cells visible"


# --- the day the figures are for -----------------------------------------------------------


def test_data_day_is_shown_beside_the_clock(screen, sample_data):
    """The clock showed the wall-clock day while the figures were for the last data day,
    shown only in small footer text."""
    p = screen
    days = _beijing_days(sample_data)
    last = max(days)  # the last day with cases in the sample
    today = pd.Timestamp.now(tz=TZ).date()
    want_kind = "today" if today == last else "latest"
    assert p.page.get_attribute("#dayinfo", "data-kind") == want_kind
    assert p.texts("#day-value") == [str(last)]
    assert p.texts("#day-label") == ["数据日 Data day" if want_kind == "latest" else "今日 Today"]
    # next to the clock, in the header, large
    box = p.page.eval_on_selector(
        "#dayinfo",
        """e => { const r = e.getBoundingClientRect(), c = document.getElementById('clock')
            .getBoundingClientRect(); return {top: r.top, bottom: r.bottom, right: r.right,
            clock: c.left, font: parseFloat(getComputedStyle(e.querySelector('b')).fontSize)}; }""",
    )
    assert box["bottom"] <= 70 and box["right"] <= box["clock"] and box["font"] >= 24
    received = int((days == last).sum())
    assert p.texts("#k-received") == [str(received)]


def test_screen_live(browser, live_server, sample_data):
    """A given day's figures, refreshed (moved whole from test_maps.py)."""
    day = "2026-11-22"
    p = _open(browser, f"{live_server.url}/screen?date={day}&refresh=2", refreshes=2)
    try:
        inc = sample_data["incidents"]
        start = pd.Timestamp(day).tz_localize(TZ).tz_convert("UTC")
        end = start + pd.Timedelta(days=1)
        today = int(((inc["reported_at"] >= start) & (inc["reported_at"] < end)).sum())
        assert p.texts("#k-received") == [str(today)]
        done = inc["status"].isin(["closed", "evaluated"])
        overdue = int((~done & (inc["reported_at"] < end) & (inc["deadline"] < end)).sum())
        assert p.texts("#k-overdue") == [str(overdue)]
        week = int(
            ((inc["reported_at"] >= end - pd.Timedelta(days=7)) & (inc["reported_at"] < end)).sum()
        )
        assert p.page.evaluate("() => window.tianyaScreen.incidents") == week
        assert len(p.texts("#overdue li")) == min(overdue, 30)
        overlays = p.texts(".leaflet-control-layers-overlays label")
        assert len(overlays) == 3
        # the legend's colours come from the summary (analytics.palettes), not the script
        swatches = p.page.eval_on_selector_all(
            ".screen-legend i", "els => els.map(e => e.style.backgroundColor)"
        )
        want = [*(palettes.GI_BIN_COLORS[b] for b in (3, 2, 1)), palettes.OVERDUE]
        assert swatches == [
            "rgb({}, {}, {})".format(*(int(c[i : i + 2], 16) for i in (1, 3, 5))) for c in want
        ]
        # a day asked for is labelled as history
        assert p.page.get_attribute("#dayinfo", "data-kind") == "requested"
        assert p.texts("#day-label") == ["历史回看 History"] and p.texts("#day-value") == [day]
        p.assert_clean()
        not_blank(p.screenshot())
    finally:
        p.close()
    r = live_server.get("/screen/summary.json?date=bad")
    assert r.status_code == 400
    assert live_server.get("/assets/vendor/leaflet/LICENSE").ok
    assert live_server.get("/assets/../tianya/app.py").status_code == 404


def test_screen_parameters_are_checked(live_server):
    assert live_server.get("/screen?basemap=osm").ok
    assert live_server.get("/screen?basemap=tianya&date=2026-11-10").ok
    r = live_server.get("/screen?basemap=google")
    assert r.status_code == 400 and "tianya, osm" in r.text
    assert live_server.get("/screen?date=2026-13-01").status_code == 400
    assert live_server.get("/screen?zoom=3").status_code == 400


def test_an_empty_day_says_so(browser, live_server, sample_data):
    """A day without cases showed zeros that looked like a failure."""
    day = max(_beijing_days(sample_data)) + dt.timedelta(days=1)  # after the sample ends
    assert (_beijing_days(sample_data) == day).sum() == 0
    p = _open(browser, f"{live_server.url}/screen?date={day}&refresh=600")
    try:
        assert p.page.is_visible("#empty-day")
        assert "该日无受理" in p.texts("#empty-day")[0]
        assert p.texts("#categories li") == ["该日无受理 · No cases on this day"]
        assert p.texts("#day-label") == ["历史回看 History"] and p.texts("#day-value") == [str(day)]
        drawn = p.page.evaluate("() => window.tianyaScreen.basemap.stats.drawn")
        assert drawn > 0  # the map is not blank either
        p.assert_clean()
    finally:
        p.close()


# --- one time zone -------------------------------------------------------------------------


def _parse(text: str, fmt: str) -> dt.datetime:
    return dt.datetime.strptime(text, fmt)


def test_beijing_time_whatever_the_browser_zone(browser, live_server, sample_data):
    """The clock and "Updated" were in different time zones."""
    day = "2026-11-22"
    p = _open(
        browser, f"{live_server.url}/screen?date={day}&refresh=600", timezone_id="America/New_York"
    )
    try:
        zone = p.page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert zone == "America/New_York"
        now = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
        now = now.replace(tzinfo=None)
        clock = _parse(p.texts("#clock")[0].split(" 北京")[0], "%Y-%m-%d %H:%M:%S")
        assert abs((clock - now).total_seconds()) < 30, (clock, now)
        updated = p.texts("#updated")[0].removeprefix("更新 Updated ")
        upd = dt.datetime.combine(now.date(), dt.time.fromisoformat(updated))
        assert abs((upd - now).total_seconds()) % 86400 < 60 or (
            abs((upd - now).total_seconds()) > 86400 - 60
        ), (updated, now)
        # a case's time in its popup
        shown = p.page.evaluate(
            """() => { let out = null; window.tianyaScreen.layers.incidents.eachLayer(l => {
                if (!out) { l.openPopup(); out = l.getPopup().getContent(); l.closePopup(); } });
                return out; }"""
        )
        inc = sample_data["incidents"].set_index("case_no")
        case = next(c for c in inc.index if c in shown)
        reported = pd.Timestamp(inc.loc[case, "reported_at"]).tz_convert(TZ)
        assert "受理 " + reported.strftime("%m-%d %H:%M") in shown, shown
        # an overdue case's deadline in the list
        first = p.texts("#overdue li small")[0]
        case = first.split(" ")[0]
        deadline = pd.Timestamp(inc.loc[case, "deadline"]).tz_convert(TZ)
        assert "时限 " + deadline.strftime("%m-%d %H:%M") in first
        assert p.texts("#tz") == [TZ]
        p.assert_clean()
    finally:
        p.close()


# --- overdue cases -------------------------------------------------------------------------


def test_click_an_overdue_case_flies_to_it_and_opens_its_popup(screen, sample_data):
    """A click on a listed case only recentred the map: no popup said which case it was."""
    p = screen
    items = p.page.query_selector_all("#overdue li")
    assert len(items) >= 2
    li = items[1]
    case = li.get_attribute("data-case")
    start = p.page.evaluate("() => window.tianyaScreen.map.getCenter()")
    li.click()
    p.page.wait_for_selector(".leaflet-popup-content", timeout=10_000)
    assert case in p.texts(".leaflet-popup-content")[0]
    pt = sample_data["incidents"].set_index("case_no").geometry[case]
    centre = p.page.evaluate(
        "() => { const m = window.tianyaScreen.map; return [m.getCenter(), m.getZoom()]; }"
    )
    c, zoom = centre
    metres = math.hypot(
        (c["lng"] - pt.x) * 111_320 * math.cos(math.radians(pt.y)), (c["lat"] - pt.y) * 110_574
    )
    assert metres < 150 and zoom >= 16, (metres, zoom)
    assert math.hypot(start["lng"] - pt.x, start["lat"] - pt.y) > 0.002  # it did move
    p.assert_clean()


# --- next week's outlook (issue 16) --------------------------------------------------------


def _expected_outlook(sample_data, day: str):
    """ETS of the weekly counts per major class, from the library on the sample cut at ``day``'s
    end: (rows of the forecast week, warnings per community), not read from the summary."""
    from analytics.early_warning import early_warnings
    from analytics.forecast import count_series, forecast

    inc = sample_data["incidents"]
    d = pd.Timestamp(day)
    monday = d - pd.Timedelta(days=d.day_of_week)
    full = d.day_of_week == 6  # the week of ``day`` is over on its Sunday
    origin = monday if full else monday - pd.Timedelta(days=7)
    h = 1 if full else 2
    cut = (origin + pd.Timedelta(days=7)).tz_localize(TZ).tz_convert("UTC")
    cases = inc[pd.to_datetime(inc["reported_at"], utc=True) < cut]
    panel = count_series(cases, level="category")
    fc = forecast(panel, model="ets", horizon=h, level=0.8, origin=origin)
    rows = fc.frame[fc.frame["horizon"] == h].sort_values("mean", ascending=False, kind="stable")
    com = count_series(cases, level="community")
    cfc = forecast(com, model="ets", horizon=h, level=0.8, origin=origin)
    warn = early_warnings(com, cfc, horizon=h, explain=False).frame
    every = count_series(cases.assign(_all="all"), level="category", key_field="_all")
    tot = forecast(every, model="ets", horizon=h, level=0.8, origin=origin).frame
    return rows, warn[warn["horizon"] == h], tot[tot["horizon"] == h].iloc[0]


def test_next_weeks_expected_load_by_class(screen, sample_data):
    """The panel lists next week's expected cases per major class with 80 % intervals, most
    first, the total (its own series), and one line per community that warns (offline, in
    the browser)."""
    p = screen
    day = p.texts("#day-value")[0]
    rows, warn, tot = _expected_outlook(sample_data, day)
    classes = p.page.eval_on_selector_all(
        "#outlook li[data-class]", "els => els.map(e => [e.dataset.class, e.textContent])"
    )
    assert [c for c, _ in classes] == list(rows["key"])
    for (_, text), r in zip(classes, rows.itertuples(), strict=True):
        assert f"{r.mean:.1f} [{r.lo:.1f}–{r.hi:.1f}]" in text, text
    total = p.texts("#outlook li.total")[0]
    assert f"Total {tot['mean']:.1f} [{tot['lo']:.1f}–{tot['hi']:.1f}]" in total
    listed = p.page.eval_on_selector_all(
        "#warnings li[data-community]", "els => els.map(e => e.dataset.community)"
    )
    assert sorted(listed) == sorted(warn["key"])
    assert listed, "the sample's last week has a community that warns"
    p.assert_clean()


def test_outlook_mid_week_reads_no_later_case(live_server, sample_data):
    """On a Wednesday the week is not over: the forecast starts from the week before, two
    weeks ahead, from cases up to that week only (the summary's figures, checked in pandas)."""
    day = "2026-11-18"
    o = live_server.get(f"/screen/summary.json?date={day}").json()["outlook"]
    rows, _, tot = _expected_outlook(sample_data, day)
    assert (o["horizon"], o["model"]) == (2, "ets")
    got = {c["major_class"]: (c["expected"], c["lo"], c["hi"]) for c in o["categories"]}
    want = {r.key: (round(r.mean, 1), round(r.lo, 1), round(r.hi, 1)) for r in rows.itertuples()}
    assert got == want
    assert o["total"]["expected"] == round(tot["mean"], 1)


def test_key_tasks_panel(screen, live_server, sample_data):
    """Issue 15 item 3: the key-work panel, recomputed in pandas from the sample's raw rows
    at the summary's instant: open and overdue tasks, the on-time milestone rate, the
    escalations, and the departments ranked by their on-time rate (offline, in the browser)."""
    p = screen
    now = pd.Timestamp(live_server.get("/screen/summary.json").json()["now"]).tz_convert(TZ)
    today = str(now.date())
    last = str((now - pd.Timedelta(1, "ns")).date())
    t = pd.DataFrame(sample_data["key_tasks"].drop(columns="geometry"))
    t = t[t["start_date"] <= last]
    m = sample_data["key_task_milestones"]
    m = m[m["task_no"].isin(t["task_no"])].merge(t[["task_no", "lead_department"]])
    done = m["done_date"].notna() & (m["done_date"] <= last)
    due = done | (m["due_date"] < today)
    on_time = done & (m["done_date"] <= m["due_date"])
    overdue = (t["status"] != "accepted") & (t["deadline"] < today)
    assert p.texts("#kt-open")[0].endswith(f" {int((t['status'] != 'accepted').sum())}")
    assert p.texts("#kt-overdue")[0].endswith(f" {int(overdue.sum())}")
    assert p.texts("#kt-ontime")[0].endswith(f"{on_time.sum() / due.sum() * 100:.1f}%")
    acc = p.page.eval_on_selector("#key-tasks [data-level=accountability]", "e => e.textContent")
    assert acc.endswith(f" {int((t['escalation'] == 'accountability').sum())}")
    # this week's escalation entries, counted with SQL on the raw audit table (issue 15)
    from test_key_task_audit_figures import entries_by_sql

    last_day = (now - pd.Timedelta(1, "ns")).normalize()
    monday = last_day - pd.Timedelta(days=last_day.day_of_week)
    week = entries_by_sql(live_server.data, monday.to_pydatetime(), now.to_pydatetime())
    w, a = sum(x for x, _ in week.values()), sum(y for _, y in week.values())
    assert w > 0 and p.texts("#kt-entries")[0].endswith(f"this week {w} · 问责 Accountability {a}")
    rate = on_time.groupby(m["lead_department"]).sum() / due.groupby(m["lead_department"]).sum()
    listed = p.page.eval_on_selector_all(
        "#key-ranking li", "els => els.map(e => [e.dataset.department, e.textContent])"
    )
    assert sorted(d for d, _ in listed) == sorted(t["lead_department"].unique())
    rates = [rate[d] for d, _ in listed if d in rate.index and due[m["lead_department"] == d].any()]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) > 2
    for d, text in listed:
        if d in rate.index and not np.isnan(rate[d]):
            assert f"{rate[d] * 100:.1f}%" in text, text
    p.assert_clean()
