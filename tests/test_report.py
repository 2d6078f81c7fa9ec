"""The weekly report (issue 13, item 5) against an independent computation.

Everything expected here is computed with pandas from the raw incidents of the sample (never
with :mod:`analytics.report` or :mod:`layers.supervision`): the ISO week's Beijing days, the
completion by week end and to date (as of the data day), and the catalogue labels that must
stand where codes of code lists used to. The charts are checked for overlapping text, legends
and bars.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import matplotlib
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from analytics.errors import AnalyticsError
from analytics.report import weekly_report
from layers.catalogue import LAYERS

matplotlib.use("Agg")

BJ = "Asia/Shanghai"
INC = LAYERS["incidents"]
#: Code lists of the incidents layer (channel, category, department, status, ...).
CODED = {f.name: {c.code: (c.zh, c.en) for c in f.codes} for f in INC.fields if f.codes}
ALL_CODES = set().union(*CODED.values())


@pytest.fixture(scope="module")
def inc(sample_data):
    return sample_data["incidents"]


@pytest.fixture(scope="module")
def w47(sample_data):
    r = weekly_report(
        sample_data["incidents"], sample_data["communities"], "2026-W47", keep_charts=True
    )
    yield r
    import matplotlib.pyplot as plt

    for fig in r.charts.values():
        plt.close(fig)


def _week(week: str) -> tuple[dt.date, pd.Timestamp, pd.Timestamp]:
    """Monday of the ISO week and its Beijing [start, end) as UTC instants."""
    monday = dt.date.fromisocalendar(int(week[:4]), int(week[-2:]), 1)
    start = pd.Timestamp(f"{monday} 00:00", tz=BJ).tz_convert("UTC")
    return monday, start, start + pd.Timedelta(days=7)


def _done_by(frame: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """Completed (核查结案, then maybe 综合评价) by the instant ``at``: closed at or before it."""
    return frame["closed_at"].notna() & (frame["closed_at"] <= at)


def _data_day_end(inc: pd.DataFrame) -> pd.Timestamp:
    stamps = ["reported_at", "registered_at", "dispatched_at", "handled_at", "closed_at"]
    latest = max(inc[c].max() for c in [*stamps, "evaluated_at"])
    day = latest.tz_convert(BJ).date()
    return pd.Timestamp(f"{day + dt.timedelta(days=1)} 00:00", tz=BJ).tz_convert("UTC")


def _text(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    for s in soup(["style", "script"]):
        s.decompose()
    return soup


# --- Week ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize("week", ["2026-W47", "2026-W01"])
def test_week_range_in_beijing_days(inc, sample_data, week):
    """W47 is Mon 11-16 to Sun 11-22 (the report said 11-15 – 11-22); W01 crosses the year."""
    r = weekly_report(inc, sample_data["communities"], week, keep_charts=True)
    monday, start, end = _week(week)
    sunday = monday + dt.timedelta(days=6)
    if week == "2026-W47":
        assert (str(monday), str(sunday)) == ("2026-11-16", "2026-11-22")
    if week == "2026-W01":
        assert (str(monday), str(sunday)) == ("2025-12-29", "2026-01-04")
    f = r.figures
    assert (f["first_day"], f["last_day"]) == (str(monday), str(sunday))
    assert pd.Timestamp(f["start"]) == start and pd.Timestamp(f["end"]) == end
    assert f["start"].startswith(str(monday)) and f["start"].endswith("+08:00")
    soup = _text(r.html)
    head = soup.select_one("#week-range").get_text(" ", strip=True)
    assert f"{monday} (周一 Mon) – {sunday} (周日 Sun)" in head
    wrong = (start.strftime("%Y-%m-%d"), (end - pd.Timedelta(days=1)).strftime("%Y-%m-%d"))
    assert f"{wrong[0]} –" not in soup.get_text(" ")  # the UTC day before the Monday
    assert f"{monday} – {sunday}" in soup.title.get_text()
    # the week's cases are the ones reported on those Beijing days
    local_day = inc["reported_at"].dt.tz_convert(BJ).dt.date
    assert f["received"] == int(((local_day >= monday) & (local_day <= sunday)).sum()) > 0
    # the daily chart's seven days, the trend's Mondays, the previous week and hot spot window
    ticks = [t.get_text() for t in r.charts["daily"].axes[0].get_xticklabels()]
    days = [monday + dt.timedelta(days=i) for i in range(7)]
    assert [t.split("\n")[0] for t in ticks] == [d.strftime("%m-%d") for d in days]
    assert ticks[0].endswith("Mon") and ticks[-1].endswith("Sun")
    for row in f["trend"]:
        m = dt.date.fromisoformat(row["first_day"])
        assert m.weekday() == 0 and m.isocalendar()[:2] == (
            int(row["week"][:4]),
            int(row["week"][-2:]),
        )
        assert row["last_day"] == str(m + dt.timedelta(days=6))
    prev = monday - dt.timedelta(days=7)
    assert (f["previous"]["first_day"], f["previous"]["last_day"]) == (
        str(prev),
        str(prev + dt.timedelta(days=6)),
    )
    assert f["hotspot_days"] == [str(monday - dt.timedelta(days=21)), str(sunday)]
    assert f"{f['hotspot_days'][0]} – {sunday}" in soup.get_text(" ")
    import matplotlib.pyplot as plt

    for fig in r.charts.values():
        plt.close(fig)


# --- Completion: one definition, with its as-of date ------------------------------------------


def test_completion_by_week_end_and_as_of_data_day(inc, w47):
    """The overview's 67.0 % and the trend's ~99 % for W46 were two definitions under one name.

    The report's rate is completion by week end; completion to date (as of the data day) is
    labelled as such. Overview, week-over-week table and trend chart plot the same numbers.
    """
    f = w47.figures
    data_end = _data_day_end(inc)
    assert f["as_of_text"] == "2026-11-22 24:00" and not f["partial_week"]
    assert pd.Timestamp(f["as_of"]) == data_end
    expected = {}
    for row in f["trend"]:
        _, start, end = _week(row["week"])
        wk = inc[(inc["reported_at"] >= start) & (inc["reported_at"] < end)]
        at = min(end, data_end)
        by_end, as_of = _done_by(wk, at).mean(), _done_by(wk, data_end).mean()
        expected[row["week"]] = (by_end, as_of)
        assert row["received"] == len(wk)
        assert row["completion_rate"] == pytest.approx(by_end, abs=1e-4), row["week"]
        assert row["completion_rate_as_of"] == pytest.approx(as_of, abs=1e-4), row["week"]
    assert len(f["trend"]) == 12 and f["trend"][-1]["week"] == "2026-W47"
    # the numbers: W46 is 67.0 % by its week end and ~99 % as of the data day
    w46_end, w46_now = expected["2026-W46"]
    assert f"{w46_end:.1%}" == "67.0%" and w46_now > 0.98
    assert f["previous"]["completion_rate"] == pytest.approx(w46_end, abs=1e-4)
    assert f["previous"]["completion_rate_as_of"] == pytest.approx(w46_now, abs=1e-4)
    assert f["completion_rate"] == pytest.approx(expected["2026-W47"][0], abs=1e-4)
    # the trend chart plots those numbers: solid = by week end, dashed = as of the data day
    ax2 = w47.charts["trend"].axes[1]
    solid, dashed = ax2.lines
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    by_end = [v[0] * 100 for v in expected.values()]
    assert list(solid.get_ydata()) == pytest.approx(by_end, abs=0.01)
    assert list(dashed.get_ydata()) == pytest.approx(
        [v[1] * 100 for v in expected.values()], abs=0.01
    )
    legend = [t.get_text() for t in w47.charts["trend"].legends[0].get_texts()]
    assert any("当周办结率 Completion by week end" in t for t in legend)
    assert any("累计办结率 Completion to date" in t and "2026-11-22 24:00" in t for t in legend)
    # the document: the W46 cell of the by-week-end row is 67.0 %, the as-of row 99.x %
    soup = _text(w47.html)
    row = [td.get_text(" ", strip=True) for td in soup.select("#wow-completion td")]
    assert row[2].startswith("67.0%") and "as of 2026-11-15 24:00" in row[2]
    assert row[1].startswith(f"{expected['2026-W47'][0]:.1%}") and "2026-11-22 24:00" in row[1]
    row = [td.get_text(" ", strip=True) for td in soup.select("#wow-completion-as-of td")]
    assert row[2] == f"{w46_now:.1%}" and "2026-11-22 24:00" in row[0]
    kpi = soup.select_one("#completion_rate").parent.get_text(" ", strip=True)
    assert "当周办结率 Completion by week end" in kpi and "as of 2026-11-22 24:00" in kpi
    defs = soup.select_one("#definitions").get_text(" ", strip=True)
    assert "当周办结率 Completion by week end" in defs and "累计办结率 Completion to date" in defs


def test_every_rate_states_its_as_of(w47):
    """Each table, card or paragraph that prints a percentage names the instant it is taken at."""
    soup = _text(w47.html)
    blocks = soup.select("table") + soup.select("#kpi > div") + soup.select("p")
    pct = re.compile(r"\d+\.\d%")
    with_rates = [b for b in blocks if pct.search(b.get_text())]
    assert len(with_rates) >= 8
    for b in with_rates:
        text = " ".join(b.get_text(" ").split())
        assert re.search(r"(截至|as of) ?\d{4}-\d\d-\d\d 24:00", text), text[:200]


def test_group_rates_independent(inc, w47):
    """Per channel / department: cases and completion by week end from the raw incidents."""
    _, start, end = _week("2026-W47")
    wk = inc[(inc["reported_at"] >= start) & (inc["reported_at"] < end)].assign(
        done=lambda d: _done_by(d, end)
    )
    for by in ("channel", "department"):
        got = {r[by]: (r["cases"], r["completion_rate"]) for r in w47.figures["by"][by]}
        g = wk.groupby(by)["done"]
        exp = {k: (int(n), m) for k, n, m in zip(g.size().index, g.size(), g.mean(), strict=True)}
        assert got.keys() == exp.keys()
        for k, (n, m) in exp.items():
            assert got[k][0] == n and got[k][1] == pytest.approx(m, abs=1e-4)


def test_partial_week_says_so(inc, sample_data):
    """Data ending on Wednesday: rates as of Wednesday 24:00, and the header says so."""
    cut = pd.Timestamp("2026-11-19 00:00", tz=BJ).tz_convert("UTC")
    df = inc[inc["reported_at"] < cut].copy()
    for c in ("registered_at", "dispatched_at", "handled_at", "closed_at", "evaluated_at"):
        df[c] = df[c].where(df[c] <= cut)
    df.loc[df["status"].eq("evaluated") & df["evaluated_at"].isna(), "status"] = "closed"
    df.loc[df["status"].eq("closed") & df["closed_at"].isna(), "status"] = "handling"
    r = weekly_report(df, sample_data["communities"], "2026-W47", charts=False)
    f = r.figures
    _, start, _ = _week("2026-W47")
    wk = df[df["reported_at"] >= start]
    assert f["partial_week"] and f["as_of_text"] == "2026-11-18 24:00"
    assert f["received"] == len(wk)
    assert f["completion_rate"] == pytest.approx(_done_by(wk, cut).mean(), abs=1e-4)
    assert "非完整周" in r.html and "as of 2026-11-18 24:00" in r.html
    with pytest.raises(AnalyticsError, match="2026-11-18"):
        weekly_report(df, week="2026-W48", charts=False)


# --- Labels, not codes --------------------------------------------------------------------------


def test_labels_not_codes(inc, w47):
    """No code of a code list in the document or the charts; their zh/en labels instead."""
    soup = _text(w47.html)
    assert not _codes_in(soup.get_text(" ")), _codes_in(soup.get_text(" "))
    _, start, end = _week("2026-W47")
    wk = inc[(inc["reported_at"] >= start) & (inc["reported_at"] < end)]
    for by, table in (("channel", "#by-channel"), ("category", "#by-category")):
        cells = {
            tr.select("td")[0].get_text("|", strip=True)
            for tr in soup.select(f"{table} tr")
            if tr.select("td")
        }
        assert cells == {"|".join(CODED[by][c]) for c in wk[by].unique()}
    # the sentence that read "public_opinion 4, wechat 24"
    counts = wk["channel"].value_counts()
    para = soup.select_one("#opinion").get_text(" ", strip=True)
    for code in ("public_opinion", "wechat"):
        zh, en = CODED["channel"][code]
        assert f"{zh} {counts.get(code, 0)} 件" in para
        assert f"{en} {counts.get(code, 0)}" in para
    assert "舆情监测 4 件" in para and "微信 24 件" in para
    # chart axes: the bilingual labels, no code
    for name, by in (("channel", "channel"), ("category", "category")):
        ticks = [t.get_text() for t in w47.charts[name].axes[0].get_yticklabels()]
        top = wk[by].value_counts()
        assert set(ticks) <= {" ".join(CODED[by][c]) for c in top.index}
        assert len(ticks) == min(12, len(top))
    for fig in w47.charts.values():
        for t in fig.findobj(matplotlib.text.Text):
            assert not _codes_in(t.get_text()), t.get_text()


def _codes_in(text: str) -> list[str]:
    """Codes of the code lists standing as words in ``text`` once their labels are removed.

    English labels may contain a code word ("Illegal advertising", "12345 hotline"): the
    labels go first, the longest first.
    """
    labels = sorted(
        {lab for codes in CODED.values() for pair in codes.values() for lab in pair},
        key=len,
        reverse=True,
    )
    for lab in labels:
        text = text.replace(lab, " ")
    return sorted(set(re.findall(r"\b[a-z][a-z_]*[a-z]\b", text)) & ALL_CODES)


# --- Charts: nothing overlaps -------------------------------------------------------------------


def _drawn(fig, monkeypatch) -> list:
    """The text artists matplotlib actually draws (ticks outside the view are not drawn)."""
    from matplotlib.text import Text

    drawn = []
    orig = Text.draw

    def draw(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return orig(self, renderer)

    with monkeypatch.context() as m:
        m.setattr(Text, "draw", draw)
        fig.canvas.draw()
    return drawn


def _overlap(a, b, tol: float = 0.5) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


@pytest.mark.parametrize("week", ["2026-W47", "2026-W01", "2026-W40"])
def test_charts_do_not_overlap(sample_data, week, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rep = weekly_report(
        sample_data["incidents"], sample_data["communities"], week, keep_charts=True
    )
    assert set(rep.charts) == {"daily", "trend", "channel", "category", "hotspots"}
    try:
        _no_overlap(rep.charts, monkeypatch, Rectangle)
    finally:
        for fig in rep.charts.values():
            plt.close(fig)


def _no_overlap(charts, monkeypatch, Rectangle) -> None:
    for name, fig in charts.items():
        texts = _drawn(fig, monkeypatch)
        r = fig.canvas.get_renderer()
        boxes = [(t.get_text(), t.get_window_extent(r)) for t in texts]
        assert len(boxes) >= (1 if name == "hotspots" else 8), name
        for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
            assert not _overlap(a, b), f"{name}: {ta!r} overlaps {tb!r}"
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        for leg in legends:
            lb = leg.get_window_extent(r)
            for ax in fig.axes:
                assert not _overlap(lb, ax.get_window_extent(r)), f"{name}: legend over the plot"
            own = {id(t) for t in leg.get_texts()}
            for t in texts:
                if id(t) not in own and t is not leg.get_title():
                    assert not _overlap(lb, t.get_window_extent(r)), f"{name}: legend on {t}"
        for ax in fig.axes:
            bars = [p.get_window_extent(r) for p in ax.patches if isinstance(p, Rectangle)]
            for a, b in itertools.combinations(bars, 2):
                assert not _overlap(a, b), f"{name}: bars overlap"


def test_week_after_the_data_is_refused(inc):
    with pytest.raises(AnalyticsError, match="2026-11-22"):
        weekly_report(inc, week="2026-W50", charts=False)


def test_summary_line_names_definition_and_as_of(inc, w47):
    """The terminal line (for ``tianya report``) prints the days and the rate's definition."""
    _, start, end = _week("2026-W47")
    wk = inc[(inc["reported_at"] >= start) & (inc["reported_at"] < end)]
    line = w47.summary()
    assert line.startswith("2026-W47 (2026-11-16 – 2026-11-22): ")
    assert f"received {len(wk)}," in line
    assert f"completion by week end {_done_by(wk, end).mean():.1%} as of 2026-11-22 24:00" in line


# --- Outlook (issue 16) -------------------------------------------------------------------------


def _cut(inc: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    """The incidents as they stood at ``cut``: later cases dropped, later stamps cleared."""
    df = inc[inc["reported_at"] < cut].copy()
    for c in ("registered_at", "dispatched_at", "handled_at", "closed_at", "evaluated_at"):
        df[c] = df[c].where(df[c] <= cut)
    df.loc[df["status"].eq("evaluated") & df["evaluated_at"].isna(), "status"] = "closed"
    df.loc[df["status"].eq("closed") & df["closed_at"].isna(), "status"] = "handling"
    return df


def _weekly(inc: pd.DataFrame, by: str | None, end: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Cases per Beijing week (rows, the ``weeks`` before ``end``) and ``by`` (columns)."""
    df = inc[inc["reported_at"] < end]
    week = ((end - df["reported_at"]) // pd.Timedelta(days=7)).rename("ago")
    key = df[by] if by else pd.Series("all", index=df.index, name="key")
    t = df.groupby([week, key]).size().unstack(fill_value=0)
    return t.reindex(range(weeks), fill_value=0)


def test_outlook_next_week_by_category_with_warnings(inc, w47, sample_data):
    o = w47.figures["outlook"]
    _, _, end = _week("2026-W47")
    assert (o["week"], o["first_day"], o["last_day"]) == ("2026-W48", "2026-11-23", "2026-11-29")
    assert o["horizon"] == 1 and o["origin_week"] == "2026-W47" and o["note"] is None
    # the usual level: mean of the 13 weeks up to the report week's end (pandas, here)
    cat = _weekly(inc, "major_class", end, 13).mean()
    assert {c["major_class"]: c["usual"] for c in o["categories"]} == pytest.approx(
        cat.round(1).to_dict(), abs=0.051
    )
    total = _weekly(inc, None, end, 13).mean()["all"]
    assert o["total"]["usual"] == pytest.approx(total, abs=0.051)
    for c in [*o["categories"], o["total"]]:
        assert 0 <= c["lo"] <= c["expected"] <= c["hi"]
    # the categories' expected loads roughly add up to the total's own forecast
    assert sum(c["expected"] for c in o["categories"]) == pytest.approx(
        o["total"]["expected"], rel=0.15
    )
    # the sample's emerging cluster shows in its final week: that community warns
    com = _weekly(inc, "community_code", end, 13)
    jumped = com.columns[(com.loc[0] > 3 * com.mean()) & (com.loc[0] >= 10)]
    warned = {w["community_code"] for w in o["warnings"]}
    assert set(jumped) <= warned and warned
    names = sample_data["communities"].set_index("code")["name"].to_dict()
    soup = _text(w47.html)
    table = soup.find(id="outlook-warnings").get_text(" ")
    assert all(names[c] in table for c in warned)
    rows = soup.find(id="outlook").find_all("tr")[1:]
    assert [r.find("td").get_text(" ").split()[0] for r in rows[:-1]] == [
        c["label"] for c in o["categories"]
    ]
    assert "ETS" in soup.find(id="outlook-method").get_text()


def test_outlook_reads_nothing_after_the_report_week(inc, sample_data):
    """The W40 outlook is the same from all the data and from the data as they stood then."""
    _, _, end = _week("2026-W40")
    full = weekly_report(inc, sample_data["communities"], "2026-W40", charts=False)
    then = weekly_report(_cut(inc, end), sample_data["communities"], "2026-W40", charts=False)
    assert full.figures["outlook"] == then.figures["outlook"]
    assert full.figures["outlook"]["week"] == "2026-W41"


def test_outlook_of_a_partial_week_starts_from_the_week_before(inc, sample_data):
    cut = pd.Timestamp("2026-11-19 00:00", tz=BJ).tz_convert("UTC")
    o = weekly_report(_cut(inc, cut), sample_data["communities"], "2026-W47", charts=False)
    o = o.figures["outlook"]
    assert (o["origin_week"], o["horizon"], o["week"]) == ("2026-W46", 2, "2026-W48")
    _, start, _ = _week("2026-W47")
    usual = _weekly(inc, "major_class", start, 13).mean()  # the partial week is not read
    assert {c["major_class"]: c["usual"] for c in o["categories"]} == pytest.approx(
        usual.round(1).to_dict(), abs=0.051
    )


def test_outlook_needs_weeks_of_history_and_can_be_left_out(inc, sample_data):
    short = weekly_report(inc, sample_data["communities"], "2025-W50", charts=False)
    assert "at least 8 weeks" in short.figures["outlook"]["note"]
    assert "暂无预判" in short.html
    off = weekly_report(inc, sample_data["communities"], "2026-W47", charts=False, outlook=False)
    assert off.figures["outlook"] is None and "九、预判" not in off.html


def test_key_task_section_against_pandas(sample_data):
    """Issue 15 item 3: the report's key-work section, recomputed with pandas from raw rows."""
    from test_key_task_figures import _random_tables

    tasks, ms = _random_tables(11, 80)
    tasks["start_date"] = (pd.to_datetime(tasks["start_date"]) + pd.Timedelta(days=280)).astype(
        str
    )  # some tasks start after the report week: they are left out
    r = weekly_report(
        sample_data["incidents"],
        sample_data["communities"],
        "2026-W47",
        charts=False,
        outlook=False,
        key_tasks=(tasks, ms),
    )
    k = r.figures["key_tasks"]
    last, day = "2026-11-22", "2026-11-23"  # the week's Sunday; as of Monday 00:00
    t = tasks[tasks["start_date"] <= last]
    assert 0 < len(t) < len(tasks)
    m = ms[ms["task_no"].isin(t["task_no"])].merge(t[["task_no", "lead_department"]])
    done = m["done_date"].notna() & (m["done_date"] <= last)
    due = done | (m["due_date"] < day)
    on_time = done & (m["done_date"] <= m["due_date"])
    assert k["all"]["due"] == due.sum() > k["all"]["on_time"] == on_time.sum() > 0
    overdue = t[(t["status"] != "accepted") & (t["deadline"] < day)]
    assert k["all"]["overdue_tasks"] == len(overdue) > 0
    assert sorted(x["task_no"] for x in k["overdue_tasks"]) == sorted(overdue["task_no"])
    rate = on_time.groupby(m["lead_department"]).sum() / due.groupby(m["lead_department"]).sum()
    ranked = [x["department"] for x in k["ranking"] if x["on_time_rate"] is not None]
    assert [rate[d] for d in ranked] == sorted(rate.dropna(), reverse=True)
    soup = BeautifulSoup(r.html, "html.parser")
    rows = soup.select("#key-ranking tr")[1:]
    assert len(rows) == len(k["ranking"])
    first = rows[0].find_all("td")
    dep = k["ranking"][0]["department"]
    assert CODED["department"][dep][0] in first[1].get_text()  # labels, not codes
    assert first[6].get_text().strip() == f"{rate[dep] * 100:.1f}%"
    assert len(soup.select("#key-overdue-tasks tr")) == len(overdue) + 1
    assert soup.select_one("#key-on-time").get_text().strip() == (
        f"{on_time.sum() / due.sum() * 100:.1f}%"
    )
    # without key tasks there is no section
    plain = weekly_report(sample_data["incidents"], week="2026-W47", charts=False, outlook=False)
    assert plain.figures["key_tasks"] is None and "key-ranking" not in plain.html
