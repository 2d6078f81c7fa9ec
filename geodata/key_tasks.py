"""A year of synthetic key tasks (重点工作督办) for the sample, with milestones and history.

About 60 tasks are issued over the sample year (:data:`geodata.sample.YEAR_START` …
``YEAR_END``) by the district's leadership: shantytown renovation areas (polygons), river
section clean-ups (the river segments), typhoon preparations before the season (points at
shelters and pumping stations), rectification campaigns over a few communities (their
union), road improvements (lines) and greening (polygons). Each has 3–5 milestones.

Departments differ in how often they miss a milestone (:data:`LATENESS`), so the figures
rank them; late milestones carry a reason. The state is the one on :data:`AS_OF` (the
sample year's last day): tasks issued late are still ``assigned`` or ``in_progress``, some
are ``submitted``, most early ones ``accepted``, a few ``returned``. Escalation follows
the library's rule (:func:`layers.key_tasks.due_levels`, the clock running each morning):
a milestone or task open past its due date has a warning, more than
:data:`layers.key_tasks.GRACE_DAYS` days past it an accountability entry; the history
(:data:`layers.key_tasks.HISTORY`) holds every step. Deterministic by seed.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.catalogue import LAYERS
from layers.district import TZ, UTM
from layers.key_tasks import HISTORY, due_levels, milestone_id

#: The day the sample's state is taken (the sample year's last day, local).
AS_OF = dt.date(2026, 11, 22)
YEAR_START = dt.date(2025, 11, 24)
N_TASKS = 60

#: Probability that a department misses a milestone's due date.
LATENESS = {
    "housing": 0.30,
    "transport": 0.25,
    "traffic_police": 0.22,
    "water": 0.18,
    "urban_admin": 0.15,
    "market": 0.12,
    "landscape": 0.08,
    "emergency": 0.05,
}

#: kind → (share, lead, co-departments, duration days (lo, hi), milestone titles).
KINDS = {
    "renovation_area": (
        0.18,
        "housing",
        ("territorial", "civil_affairs"),
        (150, 280),
        ("入户调查摸底", "征收补偿方案公示", "签约腾空", "拆除清运", "安置房开工"),
    ),
    "river_section": (
        0.18,
        "water",
        ("landscape", "territorial"),
        (90, 200),
        ("排污口排查", "截污纳管", "清淤疏浚", "生态护岸", "水质达标"),
    ),
    "typhoon_preparation": (
        0.15,
        "emergency",
        ("water", "civil_affairs", "territorial"),
        (20, 45),
        ("隐患排查", "物资储备到位", "应急演练", "转移安置预案"),
    ),
    "rectification": (
        0.22,
        "urban_admin",
        ("market", "territorial"),
        (30, 90),
        ("摸底排查", "集中整治", "巩固提升", "长效机制建立"),
    ),
    "road_works": (
        0.14,
        "transport",
        ("traffic_police", "power"),
        (60, 180),
        ("方案设计", "施工招标", "路面施工", "完工验收"),
    ),
    "greening": (
        0.13,
        "landscape",
        ("housing",),
        (60, 150),
        ("方案设计", "苗木采购", "种植施工", "养护验收"),
    ),
}
CAMPAIGNS = (
    ("乱停放", "traffic_police"),
    ("门前三包", "urban_admin"),
    ("占道经营", "urban_admin"),
    ("违规广告招牌", "urban_admin"),
    ("食品摊贩", "market"),
)
LATE_REASONS = (
    "征收户未签约，需继续做群众工作",
    "连续降雨影响施工",
    "资金拨付滞后",
    "配合部门审批未完成",
    "台风天气停工",
    "设计方案变更",
    "材料供应延迟",
)
EVIDENCE = ("现场照片及工作台账已上传", "验收记录及影像资料", "会议纪要与签到表", "第三方检测报告")
RETURN_REASONS = ("现场核查未达标，需整改", "佐证材料不全", "群众反映问题未解决")
ISSUERS_BY_KIND = {
    "typhoon_preparation": "leading_group",
    "renovation_area": "district_government",
    "rectification": "command_center",
}
LEADERS = ("区委书记", "区长", "常务副区长", "分管副区长", "指挥中心主任")


SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林符吉邢云羊")
GIVEN = list("明华强伟芳秀英丽军杰磊静敏燕平刚桂兰海亮新春")


def _names(rng, n: int) -> list[str]:
    s, g1 = rng.choice(SURNAMES, n), rng.choice(GIVEN, n)
    g2 = rng.choice(GIVEN + [""] * 8, n)
    return [a + b + c for a, b, c in zip(s, g1, g2, strict=True)]


def _phones(rng, n: int) -> list[str]:
    prefix = rng.choice(["138", "139", "136", "188", "150", "189"], n)
    return [f"{p}{v:08d}" for p, v in zip(prefix, rng.integers(0, 10**8, n), strict=True)]


def _at(day: dt.date, rng, lo_h: int = 9, hi_h: int = 18) -> pd.Timestamp:
    """A local working-hours instant of ``day``, as UTC."""
    minutes = int(rng.integers(lo_h * 60, hi_h * 60))
    t = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=TZ)
    return pd.Timestamp(t).tz_convert("UTC")


def _clock(day: dt.date) -> pd.Timestamp:
    """The supervision clock's run on ``day`` (00:30 local), as UTC."""
    return pd.Timestamp(dt.datetime.combine(day, dt.time(0, 30), tzinfo=TZ)).tz_convert("UTC")


def _days(rng, lo: int, hi: int) -> dt.timedelta:
    return dt.timedelta(days=int(rng.integers(lo, hi + 1)))


def _geometry(kind: str, rng, frames: dict, title_bits: dict) -> shapely.Geometry:
    """The task's geometry in UTM (and its place name in ``title_bits``)."""
    units = frames["communities"].to_crs(UTM)
    urban = units[units["kind"] == "community"]
    if kind == "river_section":
        rivers = frames["rivers"].to_crs(UTM)
        i = int(rng.integers(len(rivers)))
        title_bits["place"] = rivers["name"].iloc[i]
        return rivers.geometry.iloc[i]
    if kind == "typhoon_preparation":
        fac = frames["flood_prevention"].to_crs(UTM)
        fac = fac[fac["facility_type"].isin(["shelter", "pump_station", "waterlogging_point"])]
        i = int(rng.integers(len(fac)))
        title_bits["place"] = fac["name"].iloc[i]
        return fac.geometry.iloc[i]
    if kind == "rectification":
        k = int(rng.integers(2, 5))
        idx = rng.choice(len(urban), k, replace=False)
        title_bits["place"] = "、".join(urban["name"].iloc[sorted(idx)][:2]) + (
            "等" if k > 2 else ""
        )
        union = shapely.union_all(urban.geometry.iloc[sorted(idx)].values)
        return shapely.make_valid(union)
    pool = urban if kind != "greening" else units
    i = int(rng.integers(len(pool)))
    unit = pool.geometry.iloc[i]
    title_bits["place"] = pool["name"].iloc[i]
    centre = unit.representative_point()
    if kind == "road_works":
        ang = rng.uniform(0, np.pi)
        half = rng.uniform(250, 700)
        d = np.array([np.cos(ang), np.sin(ang)]) * half
        line = shapely.LineString(
            [(centre.x - d[0], centre.y - d[1]), (centre.x + d[0], centre.y + d[1])]
        )
        clipped = line.intersection(unit)
        parts = getattr(clipped, "geoms", [clipped])
        best = max((g for g in parts if g.geom_type == "LineString"), key=lambda g: g.length)
        return best
    area = centre.buffer(rng.uniform(120, 320), quad_segs=8).intersection(unit)
    if area.geom_type != "Polygon":
        area = max(getattr(area, "geoms", [area]), key=lambda g: g.area)
    return shapely.set_precision(area, 0.01)


def _pick_kinds(rng, n: int) -> list[str]:
    kinds = list(KINDS)
    p = np.array([KINDS[k][0] for k in kinds])
    return [str(k) for k in rng.choice(kinds, n, p=p / p.sum())]


def _issue_day(kind: str, rng) -> dt.date:
    """Issue days over the year; typhoon preparations in April–August, before the season."""
    if kind == "typhoon_preparation":
        return dt.date(2026, 4, 1) + _days(rng, 0, 150)
    span = (AS_OF - YEAR_START).days - 4
    return YEAR_START + _days(rng, 0, span)


def generate_key_tasks(
    frames: dict[str, gpd.GeoDataFrame], seed: int
) -> dict[str, gpd.GeoDataFrame]:
    """The sample's key tasks, milestones and history as frames of their layers.

    Parameters
    ----------
    frames : dict
        The other sample layers (``communities``, ``rivers``, ``flood_prevention``).
    seed : int
        The sample's seed (a stream of its own: the other layers do not change).

    Returns
    -------
    dict
        ``key_tasks`` (EPSG:4326), ``key_task_milestones`` and ``key_task_history``.
    """
    rng = np.random.default_rng([seed, 15])
    kinds = _pick_kinds(rng, N_TASKS)
    issued = [_issue_day(k, rng) for k in kinds]
    for i in (0, 1):  # two tasks issued in the sample's last days: still 'assigned'
        issued[i] = AS_OF - _days(rng, 0, 1)
    order = np.argsort([d.toordinal() for d in issued], kind="stable")
    tasks, ms_rows, hist = [], [], []
    geoms = []
    serial: dict[int, int] = {}
    people = _names(rng, N_TASKS)
    phones = _phones(rng, N_TASKS)
    for n_i, i in enumerate(order):
        kind, day = kinds[i], issued[i]
        share, lead, co, (lo, hi), titles = KINDS[kind]
        bits: dict = {}
        geom = _geometry(kind, rng, frames, bits)
        place = bits["place"]
        co_deps = list(co)
        if kind == "rectification":
            topic, lead = CAMPAIGNS[int(rng.integers(len(CAMPAIGNS)))]
            title = f"{place}{topic}专项整治"
            co_deps = [d for d in ("urban_admin", "market", "territorial") if d != lead]
        elif kind == "renovation_area":
            title = f"{place}棚户区改造（第{int(rng.integers(1, 4))}批）"
        elif kind == "river_section":
            title = f"{place}综合整治"
        elif kind == "typhoon_preparation":
            title = f"{day.year}年{place}防台风准备"
        elif kind == "road_works":
            title = f"{place}道路提升改造"
        else:
            title = f"{place}绿化提升"
        local_issue = _at(day, rng)
        year = day.year
        serial[year] = serial.get(year, 0) + 1
        task_no = f"KT{year}-{serial[year]:03d}"
        start = day + _days(rng, 0, 3)
        deadline = start + _days(rng, lo, hi)
        k = int(rng.integers(3, len(titles) + 1))
        names = list(titles[:k])
        span = (deadline - start).days
        cuts = np.sort(rng.choice(np.arange(1, span), k - 1, replace=False))
        dues = [start + dt.timedelta(days=int(c)) for c in cuts] + [deadline]
        p_late = LATENESS.get(lead, 0.25)
        leader = LEADERS[int(rng.integers(len(LEADERS)))]
        dep_actor = f"{lead} 督办专员"
        ev: list[tuple] = [
            (
                local_issue,
                leader,
                "leadership",
                None,
                "issue",
                None,
                None,
                "assigned",
                f"issued to {lead} with {k} milestones",
            )
        ]
        started = start + _days(rng, 0, 2)
        open_days: list[tuple[dt.date, dt.date | None]] = []  # intervals the task is open
        status = "assigned"
        if started <= AS_OF:
            status = "in_progress"
            ev.append(
                (
                    _at(started, rng),
                    dep_actor,
                    "department",
                    lead,
                    "transition",
                    None,
                    "assigned",
                    "in_progress",
                    None,
                )
            )
        cursor = started
        done_days: list[dt.date | None] = []
        for due in dues:
            if rng.random() < p_late:  # mostly a few days late, now and then weeks
                done = due + dt.timedelta(days=int(min(rng.geometric(0.18), 30)))
            else:
                done = due - _days(rng, 0, 8)
            done = max(done, cursor)
            cursor = done
            done_days.append(done if done <= AS_OF and status != "assigned" else None)
            if done_days[-1] is None:
                cursor = AS_OF + dt.timedelta(days=1)
        # milestones
        mrows = []
        for seq, (mt, due, done) in enumerate(zip(names, dues, done_days, strict=True), 1):
            mid = milestone_id(task_no, seq)
            late = done is not None and done > due
            level_day = done if done is not None else AS_OF
            levels = due_levels(due, level_day)
            mrows.append(
                {
                    "milestone_id": mid,
                    "task_no": task_no,
                    "seq": seq,
                    "title": mt,
                    "due_date": due.isoformat(),
                    "done_date": done.isoformat() if done else None,
                    "evidence_note": EVIDENCE[int(rng.integers(len(EVIDENCE)))] if done else None,
                    "evidence_link": f"https://oa.tianya.example/evidence/{mid}" if done else None,
                    "late_reason": LATE_REASONS[int(rng.integers(len(LATE_REASONS)))]
                    if late
                    else None,
                    "escalation": levels[-1] if levels else "none",
                    "reported_by": dep_actor if done else None,
                    "reported_at": _at(done, rng) if done else None,
                }
            )
            for level in levels:
                at_day = due + dt.timedelta(days=1 if level == "warning" else 8)
                ev.append(
                    (
                        _clock(at_day),
                        "supervision clock",
                        "admin",
                        None,
                        level,
                        seq,
                        "in_progress",
                        None,
                        f"milestone {seq} ({mt}) was due on {due}; "
                        f"{(at_day - due).days} days overdue, lead department {lead}",
                    )
                )
            if done:
                note = f"done {done}" + (
                    f" ({(done - due).days} days late: {mrows[-1]['late_reason']})" if late else ""
                )
                ev.append(
                    (
                        mrows[-1]["reported_at"],
                        dep_actor,
                        "department",
                        lead,
                        "milestone",
                        seq,
                        "in_progress",
                        None,
                        note,
                    )
                )
        # submission, acceptance, returns
        submitted_at = accepted_at = None
        if status == "in_progress":
            open_days.append((started, None))
            if all(done_days):
                last = max(d for d in done_days if d)
                sub = last + _days(rng, 1, 3)
                if sub <= AS_OF:
                    open_days[-1] = (started, sub)
                    status, submitted_at = "submitted", _at(sub, rng)
                    ev.append(
                        (
                            submitted_at,
                            dep_actor,
                            "department",
                            lead,
                            "transition",
                            None,
                            "in_progress",
                            "submitted",
                            None,
                        )
                    )
                    if rng.random() < 0.25:
                        ret = sub + _days(rng, 2, 6)
                        if ret <= AS_OF:
                            status = "returned"
                            ev.append(
                                (
                                    _at(ret, rng),
                                    leader,
                                    "leadership",
                                    None,
                                    "transition",
                                    None,
                                    "submitted",
                                    "returned",
                                    RETURN_REASONS[int(rng.integers(len(RETURN_REASONS)))],
                                )
                            )
                            again = ret + _days(rng, 1, 3)
                            open_days.append((ret, None))
                            if again <= AS_OF:
                                status = "in_progress"
                                ev.append(
                                    (
                                        _at(again, rng),
                                        dep_actor,
                                        "department",
                                        lead,
                                        "transition",
                                        None,
                                        "returned",
                                        "in_progress",
                                        None,
                                    )
                                )
                                resub = again + _days(rng, 5, 15)
                                if resub <= AS_OF:
                                    open_days[-1] = (ret, resub)
                                    status, submitted_at = "submitted", _at(resub, rng)
                                    ev.append(
                                        (
                                            submitted_at,
                                            dep_actor,
                                            "department",
                                            lead,
                                            "transition",
                                            None,
                                            "in_progress",
                                            "submitted",
                                            None,
                                        )
                                    )
                                    sub = resub
                    if status == "submitted":
                        acc = sub + _days(rng, 3, 21)
                        if acc <= AS_OF:
                            status, accepted_at = "accepted", _at(acc, rng)
                            ev.append(
                                (
                                    accepted_at,
                                    leader,
                                    "leadership",
                                    None,
                                    "transition",
                                    None,
                                    "submitted",
                                    "accepted",
                                    None,
                                )
                            )
        else:
            open_days.append((day, None))
        # the task's own deadline: escalated while open past it
        last_open = max((e or AS_OF) for _, e in open_days)
        t_levels = due_levels(deadline, last_open)
        for level in t_levels:
            at_day = deadline + dt.timedelta(days=1 if level == "warning" else 8)
            # the first open day on or after it (a task back from 'returned')
            for s, e in open_days:
                if (e or AS_OF) >= at_day:
                    at_day = max(at_day, s)
                    break
            ev.append(
                (
                    _clock(at_day),
                    "supervision clock",
                    "admin",
                    None,
                    level,
                    0,
                    None,
                    None,
                    f"the task's deadline was due on {deadline}; "
                    f"{(at_day - deadline).days} days overdue, lead department {lead}",
                )
            )
        levels_all = [m["escalation"] for m in mrows] + (list(t_levels[-1:]) or ["none"])
        rank = {"none": 0, "warning": 1, "accountability": 2}
        top = max(levels_all, key=rank.__getitem__)
        done_n = sum(1 for d in done_days if d)
        progress = 100 if status == "accepted" else int(round(100 * done_n / k))
        ev.sort(key=lambda e: e[0])
        tasks.append(
            {
                "task_no": task_no,
                "title": title,
                "description": f"{title}：{'、'.join(names)}。",
                "kind": kind,
                "lead_department": lead,
                "co_departments": ",".join(co_deps),
                "issuing_authority": ISSUERS_BY_KIND.get(
                    kind, ("district_committee", "district_government")[n_i % 2]
                ),
                "priority": (
                    "urgent"
                    if kind == "typhoon_preparation"
                    else str(rng.choice(["high", "normal"], p=[0.35, 0.65]))
                ),
                "start_date": start.isoformat(),
                "deadline": deadline.isoformat(),
                "status": status,
                "progress": progress,
                "escalation": top,
                "issued_at": local_issue,
                "submitted_at": submitted_at,
                "accepted_at": accepted_at,
                "updated_at": max(e[0] for e in ev),
                "responsible_person": people[n_i],
                "responsible_phone": phones[n_i],
            }
        )
        geoms.append(geom)
        ms_rows += mrows
        for j, row in enumerate(ev):
            at, actor, role, dep, action, seq, frm, to, note = row
            hist.append(
                {
                    "event_id": f"{task_no}-{j + 1:03d}",
                    "task_no": task_no,
                    "at": at,
                    "actor": actor,
                    "role": role,
                    "department": dep,
                    "action": action,
                    "milestone_seq": seq,
                    "from_status": frm,
                    "to_status": to,
                    "note": note,
                }
            )
    for t, g in zip(tasks, geoms, strict=True):
        t["community_code"] = _community_of(g, frames)
    return {
        "key_tasks": _frame(LAYERS["key_tasks"], tasks, geoms),
        "key_task_milestones": _frame(LAYERS["key_task_milestones"], ms_rows, None),
        "key_task_history": _frame(HISTORY, hist, None),
    }


def _community_of(geom_utm, frames: dict) -> str | None:
    units = frames["communities"].to_crs(UTM)
    share = units.intersection(geom_utm)
    size = share.area if geom_utm.area > 0 else share.length
    if geom_utm.geom_type == "Point":
        size = units.distance(geom_utm).rsub(0)  # the nearest unit
    return str(units["code"].iloc[int(np.argmax(size.to_numpy()))])


def _frame(layer, rows: list[dict], geoms) -> gpd.GeoDataFrame:
    cols = {f.name: [r.get(f.name) for r in rows] for f in layer.fields}
    df = pd.DataFrame(cols)
    for f in layer.fields:
        if f.type == "datetime":
            df[f.name] = pd.to_datetime(df[f.name], utc=True)
        elif f.type == "integer":
            df[f.name] = df[f.name].astype("Int64")
    if geoms is None:
        return gpd.GeoDataFrame(df)
    return gpd.GeoDataFrame(df, geometry=list(geoms), crs=UTM).to_crs(4326)
