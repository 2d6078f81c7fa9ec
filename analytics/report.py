"""The weekly report (每周通报): figures, charts and an HTML (or PDF) document.

:func:`weekly_report` takes the incidents, the communities and an ISO week in Beijing time
(``"2026-W47"``: Monday 00:00 to the next Monday 00:00, UTC+8) and returns a
:class:`WeeklyReport` with

* ``figures``: a JSON-ready dict: received (reported in the week), closed (``closed_at`` in
  the week), completion and on-time rates of the week's cases, the same by channel,
  category, department and community, week over week, the overdue list, top hot spots and
  the public-opinion section;
* ``html``: the document, charts (matplotlib) embedded as PNG data URIs, so one file;
* :meth:`WeeklyReport.pdf`: the same document through WeasyPrint (optional dependency).

Every rate comes from :mod:`layers.supervision` (one definition for the API, the screen and
the report), computed on the state of the cases **as of the end of the week**
(:func:`snapshot`): timestamps after the week end are dropped and a case closed later counts
as open then. For the latest week the snapshot equals the stored state.

Hot spots: Gi* (:func:`analytics.ohsa.optimized_hot_spots`, 500 m fishnet, FDR) over the
four weeks ending with the report week — one week of cases is too thin for a stable pattern.
Public opinion: cases from online channels (:data:`ONLINE_CHANNELS`). No sensitive field is
read.
"""

from __future__ import annotations

import base64
import datetime as dt
import html as html_mod
import io
import re
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from jinja2 import Template

from analytics.errors import AnalyticsError
from analytics.hotcells import gi_cells, significant_cells
from analytics.palettes import CHART_COLORS, FEATURE_EDGE, MUTED
from layers import supervision
from layers.catalogue import LAYERS
from layers.district import TZ_NAME as TZ
from layers.district import UTM

__all__ = ["ONLINE_CHANNELS", "WeeklyReport", "snapshot", "week_bounds", "weekly_report"]

#: Intake channels counted as online public opinion (舆情): monitoring of Weibo/forums and WeChat.
ONLINE_CHANNELS = ("public_opinion", "wechat")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_INC = LAYERS["incidents"]
_COMPLETED_AT = {"closed": "closed_at", "evaluated": "evaluated_at"}


def week_bounds(week: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of ISO ``week`` (``"2026-W47"``) in Beijing time.

    Returns
    -------
    start, end : pandas.Timestamp
        ``[start, end)``; Monday 00:00 Beijing time is Sunday 16:00 UTC.
    """
    m = _WEEK.match(str(week))
    if not m:
        raise AnalyticsError(f"week must look like 2026-W47, got {week!r}")
    try:
        monday = dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as err:
        raise AnalyticsError(f"{week!r} is not an ISO week: {err}") from None
    start = pd.Timestamp(monday).tz_localize(TZ).tz_convert("UTC")
    return start, start + pd.Timedelta(days=7)


def _week_label(ts: pd.Timestamp) -> str:
    y, w, _ = ts.tz_convert(TZ).isocalendar()
    return f"{y}-W{w:02d}"


def snapshot(incidents: pd.DataFrame, at) -> pd.DataFrame:
    """The incidents as they stood at instant ``at`` (UTC).

    Rows reported at or after ``at`` are dropped; timestamps after ``at`` become missing; a
    case whose completion (``closed_at`` / ``evaluated_at``) lies after ``at`` gets status
    ``closed`` if it was closed by then, else ``handling`` (or ``feedback`` when handled).
    """
    at = pd.Timestamp(at)
    df = incidents.copy()
    for c in (
        "reported_at",
        "registered_at",
        "dispatched_at",
        "handled_at",
        "closed_at",
        "evaluated_at",
        "deadline",
    ):
        if c in df:
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    df = df[df["reported_at"] < at].copy()
    for c in ("registered_at", "dispatched_at", "handled_at", "closed_at", "evaluated_at"):
        if c in df:
            df[c] = df[c].where(df[c] <= at)
    status = df["status"].astype(object).copy()
    ev = status.eq("evaluated") & df["evaluated_at"].isna()
    status[ev] = "closed"
    cl = status.eq("closed") & df["closed_at"].isna()
    status[cl & df["handled_at"].notna()] = "feedback"
    status[cl & df["handled_at"].isna()] = "handling"
    df["status"] = status
    return df


def _in(s: pd.Series, start, end) -> pd.Series:
    t = pd.to_datetime(s, utc=True, format="ISO8601")
    return (t >= start) & (t < end)


def _num(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.integer | int):
        return int(v)
    return round(float(v), 4)


def _table(frame: pd.DataFrame, by: str, now) -> list[dict]:
    fig = supervision.figures(frame, by=by, now=now)
    field = {"channel": "channel", "category": "category", "department": "department"}.get(by)
    rows = supervision.to_records(fig)
    for r in rows:
        code = r[by]
        r["label"] = _INC.field(field).label(code, "zh") if field and code else code
        r["label_en"] = _INC.field(field).label(code, "en") if field and code else code
    return sorted(rows, key=lambda r: (-r["cases"], str(r[by])))


def _summary(frame_all: pd.DataFrame, start, end) -> dict:
    """Headline figures of the week ``[start, end)`` from the snapshot at ``end``."""
    snap = snapshot(frame_all, end)
    week = snap[_in(snap["reported_at"], start, end)]
    fig = cast(pd.Series, supervision.figures(week, now=end).loc["all"])
    closed = int(_in(snap["closed_at"], start, end).sum())
    overdue_all = supervision.open_cases(snap, now=end, overdue_only=True)
    return {
        "received": int(len(week)),
        "closed": closed,
        "completed": int(fig["completed"]),
        "open": int(fig["open"]),
        "overdue": int(fig["overdue"]),
        "completion_rate": _num(fig["completion_rate"]),
        "on_time_rate": _num(fig["on_time_rate"]),
        "median_dispatch_h": _num(fig["median_dispatch_h"]),
        "median_close_h": _num(fig["median_close_h"]),
        "overdue_total": int(len(overdue_all)),
        "_snap": snap,
        "_week": week,
        "_overdue": overdue_all,
    }


@dataclass
class WeeklyReport:
    """A weekly report: ``figures`` (JSON-ready), ``html`` (one self-contained file)."""

    week: str
    figures: dict
    html: str

    def pdf(self, path) -> str:
        """Write the report as PDF with WeasyPrint (``pip install weasyprint``)."""
        try:
            import weasyprint
        except ImportError as err:
            raise AnalyticsError("PDF output needs weasyprint (pip install weasyprint)") from err
        weasyprint.HTML(string=self.html).write_pdf(str(path))
        return str(path)


def weekly_report(
    incidents,
    communities=None,
    week: str | None = None,
    *,
    hotspot_weeks: int = 4,
    top: int = 5,
    max_overdue: int = 50,
    charts: bool = True,
) -> WeeklyReport:
    """Build the weekly report of ``week`` (see the module docstring).

    Parameters
    ----------
    incidents : GeoDataFrame
        The incidents layer (all of it: the overdue list and the previous week need history).
    communities : GeoDataFrame, optional
        Community polygons (names in tables; the hot spot map's outlines).
    week : str, optional
        ISO week in Beijing time (``"2026-W47"``); default the week of the latest report.
    hotspot_weeks : int, default 4
        Weeks of cases (ending with ``week``) in the hot spot analysis.
    top : int, default 5
        Hot spots listed.
    max_overdue : int, default 50
        Rows of the overdue list printed (the count is always complete).
    charts : bool, default True
        Draw the matplotlib charts.

    Returns
    -------
    WeeklyReport
    """
    if week is None:
        latest = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601").max()
        week = _week_label(latest)
    start, end = week_bounds(week)
    prev_start = start - pd.Timedelta(days=7)
    cur = _summary(incidents, start, end)
    prev = _summary(incidents, prev_start, start)
    snap, wk, overdue = cur.pop("_snap"), cur.pop("_week"), cur.pop("_overdue")
    for k in ("_snap", "_week", "_overdue"):
        prev.pop(k)
    names = {}
    if communities is not None:
        names = dict(zip(communities["code"], communities["name"], strict=False))
    by = {b: _table(wk, b, end) for b in ("channel", "category", "department", "community")}
    for r in by["community"]:
        r["label"] = names.get(r["community"], r["community"])
        r["label_en"] = r["label"]
    wow = {}
    for k in ("received", "closed", "completion_rate", "on_time_rate", "overdue_total"):
        a, b = cur[k], prev[k]
        wow[k] = None if a is None or b is None else _num(a - b)
    od = overdue.sort_values("deadline")
    od_rows = []
    for _, r in od.head(max_overdue).iterrows():
        od_rows.append(
            {
                "case_no": r["case_no"],
                "title": r["title"],
                "category": _INC.field("category").label(r["category"], "zh"),
                "department": _INC.field("department").label(r["department"], "zh"),
                "community": names.get(r["community_code"], r["community_code"]),
                "reported_at": _bj(r["reported_at"]),
                "deadline": _bj(r["deadline"]),
                "overdue_h": round((end - r["deadline"]) / pd.Timedelta(hours=1), 1),
            }
        )
    online = wk[wk["channel"].isin(ONLINE_CHANNELS)]
    opinion = {
        "cases": int(len(online)),
        "by_channel": {c: int((online["channel"] == c).sum()) for c in ONLINE_CHANNELS},
        "completion_rate": _num(supervision.figures(online, now=end).loc["all", "completion_rate"]),
        "categories": _table(online, "category", end) if len(online) else [],
        "rows": [
            {
                "case_no": r["case_no"],
                "title": r["title"],
                "channel": _INC.field("channel").label(r["channel"], "zh"),
                "status": _INC.field("status").label(r["status"], "zh"),
                "community": names.get(r["community_code"], r["community_code"]),
            }
            for _, r in online.sort_values("reported_at").head(30).iterrows()
        ],
    }
    hs_start = end - pd.Timedelta(days=7 * hotspot_weeks)
    hs_frame = snap[_in(snap["reported_at"], hs_start, end)]
    hotspots, hot_cells = _hotspots(hs_frame, communities, top)
    figures = {
        "week": week,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "previous_week": _week_label(prev_start),
        **cur,
        "previous": prev,
        "week_over_week": wow,
        "by": by,
        "overdue_list": od_rows,
        "public_opinion": opinion,
        "hotspots": hotspots,
        "hotspot_window": [hs_start.isoformat(), end.isoformat()],
    }
    images = _charts(snap, wk, by, start, end, hot_cells, hs_frame, communities) if charts else {}
    doc = _TEMPLATE.render(f=figures, img=images, pct=_pct, num=_fmt, e=html_mod.escape)
    return WeeklyReport(week, figures, doc)


def _bj(ts) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).tz_convert(TZ).strftime("%Y-%m-%d %H:%M")


def _hotspots(frame, communities, top):
    cells = gi_cells(frame)
    if cells is None:
        return [], None
    pts = frame.to_crs(UTM)
    comm = communities.to_crs(UTM) if communities is not None else None
    rows = []
    for _, c in significant_cells(cells, "hot", top=top).iterrows():
        inside = pts[pts.within(c.geometry)]
        cat = inside["category"].value_counts()
        centre = c.geometry.centroid
        name = ""
        if comm is not None and len(comm):
            name = comm["name"].iloc[int(np.argmin(comm.distance(centre).to_numpy()))]
        lon, lat = _lonlat(centre)
        rows.append(
            {
                "community": name,
                "count": c["count"],
                "gi_z": c["gi_z"],
                "gi_bin": c["gi_bin"],
                "top_category": _INC.field("category").label(cat.index[0], "zh")
                if len(cat)
                else "",
                "lon": round(lon, 5),
                "lat": round(lat, 5),
            }
        )
    return rows, cells


def _lonlat(pt):
    from pyproj import Transformer

    t = Transformer.from_crs(UTM, 4326, always_xy=True)
    return t.transform(pt.x, pt.y)


def _pct(v) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v * 100:.1f}%"


def _fmt(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


# --- Charts -------------------------------------------------------------------------------------

_FONTS = [
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "DejaVu Sans",
]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _charts(snap, wk, by, start, end, hot_cells, hs_frame, communities) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = ["sans-serif"]
    plt.rcParams["font.sans-serif"] = _FONTS
    plt.rcParams["axes.unicode_minus"] = False
    out = {}
    # daily received vs closed
    days = pd.date_range(start.tz_convert(TZ).normalize(), periods=7, freq="D")
    rec = pd.to_datetime(snap["reported_at"], utc=True).dt.tz_convert(TZ).dt.normalize()
    clo = pd.to_datetime(snap["closed_at"], utc=True).dt.tz_convert(TZ).dt.normalize()
    r = rec.value_counts().reindex(days, fill_value=0)
    c = clo.value_counts().reindex(days, fill_value=0)
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    x = np.arange(7)
    ax.bar(x - 0.2, r.to_numpy(), 0.4, label="受理 received", color=CHART_COLORS["received"])
    ax.bar(x + 0.2, c.to_numpy(), 0.4, label="办结 closed", color=CHART_COLORS["closed"])
    ax.set_xticks(x, [d.strftime("%m-%d") for d in days])
    ax.legend(frameon=False)
    ax.set_title("每日受理与办结 Daily received and closed")
    out["daily"] = _png(fig)
    # by category
    cats = by["category"][:12]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    colors = {c.code: c.color for c in _INC.field("category").codes or ()}
    ax.barh(
        [x["label"] for x in cats][::-1],
        [x["cases"] for x in cats][::-1],
        color=[colors.get(x["category"], MUTED) for x in cats][::-1],
    )
    ax.set_title("按类别 By category")
    out["category"] = _png(fig)
    # by channel
    ch = by["channel"]
    fig, ax = plt.subplots(figsize=(6.4, 2.4))
    ax.bar([x["label"] for x in ch], [x["cases"] for x in ch], color=CHART_COLORS["channel"])
    ax.set_title("按来源渠道 By channel")
    out["channel"] = _png(fig)
    # 12-week trend
    wk_all = supervision.figures(snap, by="week", now=end).tail(12)
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    ax.bar(
        range(len(wk_all)),
        wk_all["cases"],
        color=CHART_COLORS["weekly_received"],
        label="受理 received",
    )
    ax.set_xticks(range(len(wk_all)), [w[5:] for w in wk_all.index], fontsize=7)
    ax2 = ax.twinx()
    ax2.plot(
        range(len(wk_all)),
        wk_all["completion_rate"] * 100,
        color=CHART_COLORS["completion"],
        marker="o",
        label="办结率 completion %",
    )
    ax2.set_ylim(0, 105)
    ax.set_title("近12周趋势 Last 12 weeks")
    fig.legend(loc="lower left", frameon=False, fontsize=7)
    out["trend"] = _png(fig)
    # hot spot map
    if hot_cells is not None:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        if communities is not None:
            communities.to_crs(UTM).boundary.plot(ax=ax, color=MUTED, linewidth=0.5)
        sig = significant_cells(hot_cells, "significant")
        if len(sig):
            sig.plot(ax=ax, color=sig["color"].tolist(), alpha=0.85)
        hs_frame.to_crs(UTM).plot(ax=ax, markersize=2, color=FEATURE_EDGE, alpha=0.5)
        b = hs_frame.to_crs(UTM).total_bounds
        pad = 2000
        ax.set_xlim(b[0] - pad, b[2] + pad)
        ax.set_ylim(b[1] - pad, b[3] + pad)
        ax.set_axis_off()
        ax.set_title("热点(Gi*, 近4周) Hot spots, last 4 weeks")
        out["hotspots"] = _png(fig)
    return out


_TEMPLATE = Template("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>天涯区联合指挥中心周报 {{ f.week }}</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#222;
 max-width:900px}
h1{font-size:22px;border-bottom:3px solid #c62828;padding-bottom:6px}
h2{font-size:17px;margin-top:26px;border-left:4px solid #1976d2;padding-left:8px}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
.kpi{display:flex;gap:10px;flex-wrap:wrap}
.kpi div{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:22px}
.small{color:#666;font-size:11px}
img{max-width:100%}
@page{size:A4;margin:14mm}
</style></head><body>
<h1>天涯区联合指挥中心 案件办理周报<br><span class="small">Tianya joint command center weekly
 report · {{ f.week }} ({{ f.start[:10] }} – {{ f.end[:10] }}, 北京时间周一至周日)</span></h1>
<p class="small">样例数据为程序生成的模拟数据。Sample data are synthetic.
 口径 Definitions: 办结率 = 本周受理案件中已办结(核查结案/综合评价)占比；
 按期办结率 = 已办结且有时限的案件中处理完成不晚于时限的占比；
 均按周末时点计算 (as of the end of the week).</p>
<h2>一、总体情况 Overview</h2>
<div class="kpi" id="kpi">
<div>受理 Received<b id="received">{{ num(f.received) }}</b></div>
<div>办结 Closed in week<b id="closed">{{ num(f.closed) }}</b></div>
<div>办结率 Completion<b id="completion_rate">{{ pct(f.completion_rate) }}</b></div>
<div>按期办结率 On time<b id="on_time_rate">{{ pct(f.on_time_rate) }}</b></div>
<div>超期未办结 Overdue<b id="overdue_total">{{ num(f.overdue_total) }}</b></div>
</div>
<table id="wow"><tr><th>指标 Measure</th><th>{{ f.week }}</th><th>{{ f.previous_week }}</th>
<th>环比 Change</th></tr>
<tr><td>受理 Received</td><td>{{ num(f.received) }}</td><td>{{ num(f.previous.received) }}</td>
<td>{{ '%+d' % f.week_over_week.received }}</td></tr>
<tr><td>办结 Closed</td><td>{{ num(f.closed) }}</td><td>{{ num(f.previous.closed) }}</td>
<td>{{ '%+d' % f.week_over_week.closed }}</td></tr>
<tr><td>办结率 Completion</td><td>{{ pct(f.completion_rate) }}</td>
<td>{{ pct(f.previous.completion_rate) }}</td>
<td>{% if f.week_over_week.completion_rate is not none %}{{ '%+.1f' %
 (f.week_over_week.completion_rate * 100) }} pp{% else %}—{% endif %}</td></tr>
<tr><td>按期办结率 On time</td><td>{{ pct(f.on_time_rate) }}</td>
<td>{{ pct(f.previous.on_time_rate) }}</td>
<td>{% if f.week_over_week.on_time_rate is not none %}{{ '%+.1f' %
 (f.week_over_week.on_time_rate * 100) }} pp{% else %}—{% endif %}</td></tr>
<tr><td>超期未办结 Overdue</td><td>{{ num(f.overdue_total) }}</td>
<td>{{ num(f.previous.overdue_total) }}</td><td>{{ '%+d' % f.week_over_week.overdue_total }}</td>
</tr></table>
<p>派遣中位时长 median dispatch {{ num(f.median_dispatch_h) }} h ·
 结案中位时长 median close {{ num(f.median_close_h) }} h</p>
{% if img.daily %}<img src="{{ img.daily }}" alt="daily">{% endif %}
{% if img.trend %}<img src="{{ img.trend }}" alt="trend">{% endif %}
{% macro table(rows, key, title, id) %}
<h2>{{ title }}</h2>
<table id="{{ id }}"><tr><th>{{ key }}</th><th>受理 Cases</th><th>办结 Completed</th>
<th>办结率 Completion</th><th>按期率 On time</th><th>超期 Overdue</th></tr>
{% for r in rows %}<tr><td>{{ e(r.label or '—') }}</td><td>{{ r.cases }}</td>
<td>{{ r.completed }}</td><td>{{ pct(r.completion_rate) }}</td><td>{{ pct(r.on_time_rate) }}</td>
<td>{{ r.overdue }}</td></tr>{% endfor %}</table>
{% endmacro %}
{{ table(f.by.channel, '渠道 Channel', '二、按来源渠道 By channel', 'by-channel') }}
{% if img.channel %}<img src="{{ img.channel }}" alt="channel">{% endif %}
{{ table(f.by.category, '类别 Category', '三、按案件类别 By category', 'by-category') }}
{% if img.category %}<img src="{{ img.category }}" alt="category">{% endif %}
{{ table(f.by.department, '部门 Department', '四、按责任部门 By department', 'by-department') }}
{{ table(f.by.community, '社区(村) Community', '五、按社区(村) By community', 'by-community') }}
<h2>六、超期督办清单 Overdue cases for supervision ({{ f.overdue_total }})</h2>
<table id="overdue"><tr><th>案卷编号 Case</th><th>标题 Title</th><th>类别</th><th>责任部门</th>
<th>社区(村)</th><th>处置时限 Deadline</th><th>超期(小时)</th></tr>
{% for r in f.overdue_list %}<tr><td>{{ r.case_no }}</td><td>{{ e(r.title) }}</td>
<td>{{ r.category }}</td><td>{{ r.department }}</td><td>{{ e(r.community) }}</td>
<td>{{ r.deadline }}</td><td>{{ r.overdue_h }}</td></tr>{% endfor %}</table>
<h2>七、热点区域 Top hot spots</h2>
<table id="hotspots"><tr><th>社区(村)</th><th>案件 Cases</th><th>Gi* z</th><th>主要类别</th>
<th>位置 lon, lat</th></tr>
{% for r in f.hotspots %}<tr><td>{{ e(r.community) }}</td><td>{{ r.count }}</td>
<td>{{ r.gi_z }}</td>
<td>{{ r.top_category }}</td><td>{{ r.lon }}, {{ r.lat }}</td></tr>{% endfor %}</table>
{% if img.hotspots %}<img src="{{ img.hotspots }}" alt="hotspots">{% endif %}
<h2>八、网络舆情 Public opinion (online channels)</h2>
<p id="opinion">本周网络渠道(舆情监测、微信)受理 {{ f.public_opinion.cases }} 件
 ({% for k, v in f.public_opinion.by_channel.items() %}{{ k }} {{ v }}{% if not loop.last %},
 {% endif %}{% endfor %})，办结率 {{ pct(f.public_opinion.completion_rate) }}。</p>
<table><tr><th>案卷编号</th><th>标题</th><th>渠道</th><th>阶段</th><th>社区(村)</th></tr>
{% for r in f.public_opinion.rows %}<tr><td>{{ r.case_no }}</td><td>{{ e(r.title) }}</td>
<td>{{ r.channel }}</td><td>{{ r.status }}</td><td>{{ e(r.community) }}</td></tr>{% endfor %}
</table>
</body></html>
""")
