"""A synthetic year of online public-opinion posts (网络舆情) about the sample district.

Weibo posts, forum threads and WeChat articles in Chinese, generated from a seed and the
sample's frames (:func:`geodata.sample.generate`): author handles, times with a daily
rhythm, repost and copy-paste chains, a minority with GPS, most naming a place in words --
a community or village (full name, short name, with the district or town in front,
居委会/村委会, a one-character homophone typo), a unit grid (``红塘村第3网格``), a landmark
(党群服务中心, shelters, reservoirs, pump stations of ``flood_prevention``) or a river --
and a majority that is noise (food, travel, weather, adverts, news, and posts that only
sound like a complaint).  The sample has no roads, so no post names one.

Actionable posts come in topics: one issue (a category at a place) that several people post
about over a few days -- originals in their own words, reposts (``repost_of``), copies with
an @mention added, and replies in the thread that name no place (``reply_to``).  Two topics
of one category at one place are kept a week apart: within the grouping window they would
be one issue by definition (same place, same category), and the truth would be unknowable.
The generator's truth is kept in the returned frame, as the planted
hot spots are for the incidents, so the opinion analytics can be measured against it:

``true_place``
    the gazetteer entity the text names: a community code, a grid code, a
    ``flood_prevention`` or ``party_building`` code, or ``river:<name>``; None when the
    text names no place (a vague "我们小区", or nothing).
``true_community``
    the community or village the text lets a reader determine (None for a river alone or
    no place).
``true_category``
    the case category (``layers.catalogue.CATEGORIES`` code), None for noise.
``true_topic``
    the topic id (int) of an actionable post, -1 for noise.
``true_actionable``
    whether the post reports something a department should handle.

Posts are not in the sample GeoPackage or the catalogue: call :func:`generate_posts`.

Examples
--------
>>> from geodata.sample import generate
>>> frames = generate(seed=1, n_incidents=50)
>>> posts = generate_posts(frames, seed=1, n_posts=300)
>>> len(posts), posts["posted_at"].is_monotonic_increasing
(300, True)
>>> bool(posts["true_actionable"].mean() < 0.5)
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata.sample import YEAR_END, YEAR_START
from layers.district import UTM
from layers.errors import InvalidParameter

__all__ = ["PLATFORMS", "generate_posts", "held_out"]

#: Share of posts per platform.
PLATFORMS = {"weibo": 0.55, "forum": 0.25, "wechat": 0.20}
#: Share of posts that are actionable (the rest is noise).
ACTIONABLE_SHARE = 0.35
#: Default posts per year (about 80 a day; a busy city sees far more, see bench/).
POSTS_PER_YEAR = 30_000
#: Hours kept between two topics of one category at one place (the grouping window is 72 h).
_APART_H = 24.0 * 7
#: Held-out part for measuring: posts from this local date on (the last ~12 weeks).
HELD_OUT_FROM = dt.date(2026, 9, 1)

# category weights of actionable topics (posts complain about what people see)
_TOPIC_CAT_P = {
    "exposed_garbage": 0.13,
    "road_cleaning": 0.05,
    "garbage_pile": 0.06,
    "road_dust": 0.05,
    "storefront": 0.03,
    "illegal_ads": 0.04,
    "illegal_construction": 0.05,
    "construction_noise": 0.09,
    "illegal_parking": 0.11,
    "street_vending": 0.07,
    "waterlogging": 0.06,
    "fallen_tree": 0.03,
    "street_light": 0.08,
    "manhole_cover": 0.05,
    "road_damage": 0.05,
    "traffic_sign": 0.02,
    "green_damage": 0.02,
    "other": 0.01,
}

# What people write about each category ({p} = the place as written).  Several registers:
# plain, angry, ironic, a question to the government.
_CAT_TEXT: dict[str, tuple[str, ...]] = {
    "exposed_garbage": (
        "{p}路边的垃圾好几天没人清了，臭死了",
        "{p}垃圾桶满了都溢出来了，苍蝇乱飞",
        "有没有人管管{p}的垃圾？天天堆在路口",
        "{p}这边垃圾乱扔，环卫什么时候来收一下",
        "路过{p}，一地的塑料袋和饭盒，太脏了",
    ),
    "road_cleaning": (
        "{p}的路面好久没扫了，全是落叶和泥",
        "{p}主路上油污一大片，环卫工人能不能来冲洗一下",
        "{p}门口的人行道脏得没法走，没人保洁吗",
        "下完雨{p}路上全是泥浆，也没人清扫",
    ),
    "garbage_pile": (
        "{p}空地上堆了一大堆建筑垃圾渣土，一直没人运走",
        "{p}有人偷倒渣土，堆得跟小山一样",
        "{p}角落里的装修垃圾堆了一个多月了",
        "{p}旁边积了很多垃圾和渣土，下雨就冲到路上",
    ),
    "road_dust": (
        "{p}的渣土车一过灰尘漫天，窗户都不敢开",
        "{p}扬尘太严重了，工地也不洒水",
        "每天骑车经过{p}吃一嘴灰，扬尘谁来管",
        "{p}路面尘土飞扬，车一开过去什么都看不见",
    ),
    "storefront": (
        "{p}的店铺把货摆到门口人行道上，门前三包形同虚设",
        "{p}那几家饭店门前油污垃圾一大片，门前卫生没人管",
        "{p}商铺门口乱堆杂物，路都堵了",
    ),
    "illegal_ads": (
        "{p}电线杆上贴满了小广告，办证的租房的到处都是",
        "{p}新挂的广告招牌又大又歪，刮台风掉下来砸到人怎么办",
        "{p}墙上被人喷了好多牛皮癣广告",
        "{p}楼道里全是小广告，撕了又贴",
    ),
    "illegal_construction": (
        "{p}有人在楼顶私搭乱建，加盖了一层铁皮房",
        "{p}一楼住户把院子围起来搭了个违建",
        "举报：{p}有人占用公共绿地建房子，违章建筑",
        "{p}又冒出一排违建铁皮棚，没人管吗",
    ),
    "construction_noise": (
        "{p}工地半夜还在施工，噪音吵得睡不着",
        "凌晨两点了{p}还在打桩，施工噪声扰民",
        "{p}的工地天天晚上作业，电钻声没停过，孩子没法睡觉",
        "{p}夜间施工太吵了，投诉了几次都没用",
    ),
    "illegal_parking": (
        "{p}路口天天有车乱停，消防通道都堵死了",
        "{p}人行道上停满了车，行人只能走机动车道",
        "{p}的电动车共享单车乱停乱放，路都过不去",
        "{p}小区门口违停严重，救护车都进不来",
        "{p}有辆车在路边停了半个月，违停没人贴条",
    ),
    "street_vending": (
        "{p}晚上全是占道经营的摊贩，路都堵死了",
        "{p}路边摆摊卖水果的越来越多，占道经营",
        "{p}夜市摊位摆到马路中间了，车过不去",
        "{p}的流动摊贩把人行道占满了，油烟还大",
    ),
    "waterlogging": (
        "{p}又淹了，路上的积水没过膝盖",
        "一下雨{p}就积水，车都熄火了",
        "{p}路口积水半米深，排水口堵了吧",
        "暴雨过后{p}一片汪洋，内涝严重，出不了门",
    ),
    "fallen_tree": (
        "{p}有棵大树被风吹倒了，压在路中间",
        "台风过后{p}的行道树倒了好几棵，挡住了路",
        "{p}一棵树倒在车上，谁来处理一下",
        "{p}树木倒伏，树枝砸断了电线",
    ),
    "street_light": (
        "{p}的路灯坏了好几天了，晚上黑漆漆的",
        "{p}路灯不亮，晚上回家太吓人了",
        "天涯区{p}路口的路灯一直没修，一到晚上一片黑",
        "{p}那一排路灯全灭了，晚上走路摔了一跤",
        "{p}的路灯忽明忽暗，坏了一个多星期了",
    ),
    "manhole_cover": (
        "{p}路上的井盖不见了，一个大洞，太危险了",
        "{p}有个井盖破了，电动车差点掉进去",
        "{p}人行道上井盖松动，踩上去直晃",
        "{p}井盖丢失，晚上看不见很容易出事",
    ),
    "road_damage": (
        "{p}的路面坑坑洼洼，一下雨全是水坑",
        "{p}主路塌了一个坑，车胎都压爆了",
        "{p}的路破损严重，修了又坏",
        "{p}人行道砖翘起来了，老人摔倒好几个",
    ),
    "traffic_sign": (
        "{p}的交通标志牌被撞歪了，限速牌都看不清",
        "{p}路口的指示牌倒了，外地司机找不到路",
        "{p}的红绿灯旁边标志牌掉了一半",
    ),
    "green_damage": (
        "{p}的绿地被人挖了种菜，草坪全毁了",
        "{p}绿化带被车压坏了，一大片草都死了",
        "{p}公园的花坛被踩得乱七八糟",
    ),
    "other": (
        "{p}有只流浪狗咬人，已经咬伤两个小孩了",
        "{p}的公共厕所门坏了好久，没人修",
        "{p}的健身器材坏了，孩子玩的时候划伤了手",
    ),
}

# Follow-ups in a topic that do not repeat the place.
_FOLLOW_UP = {
    "exposed_garbage": ("垃圾还在，第{n}天了，还是没人来清", "又去看了，垃圾更多了"),
    "street_light": ("路灯还是没修好，第{n}天了", "今晚还是黑的，路灯没人管"),
    "waterlogging": ("积水还没退，已经{n}个小时了", "水越来越深了，求排水"),
    "construction_noise": ("今晚又在施工，第{n}天了", "还是吵，投诉没用"),
    "illegal_parking": ("那辆车还停着，第{n}天了", "今天又堵上了"),
    "manhole_cover": ("井盖还是没补上，第{n}天了", "还没修，谁掉下去谁负责？"),
}

# Noise: most posts.  Some name a place, some sound like a complaint but are not one.
_NOISE_TEXT = (
    "今天天气真好，去海边走了一圈",
    "三亚的日落永远看不腻",
    "求推荐天涯区好吃的海鲜店，人均一百左右",
    "周末带娃去{p}玩，风景不错",
    "{p}的芒果熟了，十块钱三斤",
    "在{p}吃到了最正宗的清补凉",
    "{p}的民宿环境很好，老板人也好",
    "房价又涨了，年轻人还怎么买房",
    "今天加班到十点，好累",
    "下雨了，在家追剧",
    "台风要来了，大家注意安全，提前囤好物资",
    "转发抽奖！关注并转发送三亚免税店代金券",
    "招聘：天涯区某酒店招服务员，包吃住，月薪四千",
    "出租：{p}两室一厅，拎包入住，价格面议",
    "加微信领优惠券，海鲜批发价",
    "三亚旅游攻略｜五天四晚怎么玩最划算",
    "今天参加了{p}的垃圾分类宣传活动，学到了很多",
    "{p}的路灯下拍照超好看，推荐晚上去",
    "高峰期堵车堵了一个小时，心态崩了",
    "新建的商场终于开业了，人好多",
    "光明正大地摸鱼一下午",
    "解放思想，实干兴琼",
    "新港口的夜景绝了",
    "友谊第一比赛第二，今天篮球赛输了",
    "春光明媚，适合出游",
    "今天的早餐：海南粉加一碗椰子冻",
    "{p}的老爸茶店，一坐就是一下午",
    "天涯区召开安全生产工作会议，部署下一阶段工作",
    "市里发布暴雨蓝色预警，请市民减少外出",
    "{p}志愿者开展环境整治活动，清理卫生死角",
    "听说{p}要修新学校了，期待",
    "有没有{p}的朋友，一起打羽毛球",
    "路边捡到一只小猫，有人要领养吗",
    "施工队的师傅们辛苦了，大热天的",
    "停车位太难找了，商场地下车库也满了",
    "这雨下得，整个城市都在洗澡",
    "{p}的夕阳，随手一拍就是大片",
    "去{p}看望外婆，外婆做的鸡饭还是那个味",
)
# a second place before the issue's: the poster's home or route (the truth is the issue's)
_FROM = ("我住{o}，每天上班路过，", "从{o}过来的路上看到，", "{o}的朋友说，")
_TWO_PLACES = 0.05
_VAGUE = ("我们小区", "我家楼下", "公司门口", "海边那条路", "天涯区这边", "市区", "学校旁边")

# one-character homophones people type by mistake (pinyin input)
_HOMOPHONE = dict(
    pair.split(":")
    for pair in (
        "金:今 鸡:机 岭:领 风:峰 放:方 光:广 友:有 谊:义 建:健 湾:弯 坡:波 凤:风 "
        "凰:皇 蛟:娇 南:男 新:心 港:岗 罗:萝 鹿:路 回:会 月:悦 川:穿 东:冬 岸:按 "
        "红:洪 沙:纱 椰:耶 林:琳 滨:宾 榆:渝 台:抬 楼:搂 抱:报 龙:隆 塘:堂 明:名 "
        "黑:嘿 土:吐 文:问 布:步 曲:区 立:力 高:糕 峰:锋 槟:宾 榔:郎 妙:庙 羊:阳 "
        "栏:兰 岛:导 扎:札 过:国 马:码 脚:角 梅:枚 雅:亚 亮:量 海:嗨 春:椿 头:投"
    ).split()
)
# short names that are ordinary words: nobody writes them alone to mean the place
_COMMON_WORDS = {
    "新风", "解放", "春光", "友谊", "新建", "天涯", "凤凰", "海滨", "滨海", "新港", "山海",
    "光明", "立新", "高峰", "东岸", "南新", "金鸡", "梅",
}  # fmt: skip
_TOWNS = {"天涯街道", "凤凰街道", "育才镇", "天涯镇"}


@dataclass
class _Place:
    """A place a post can name, with its truth."""

    place_id: str
    community: str | None
    xy: tuple[float, float]  # UTM, for GPS


def _handles(rng: np.random.Generator, n: int) -> np.ndarray:
    a = list("小大老阿")
    b = ["椰子", "海风", "三亚", "天涯", "鹿城", "阿明", "海南", "芒果", "清补凉", "老爸茶"]
    c = ["", "哥", "姐", "妹", "叔", "说事", "生活", "日记", "观察"]
    out = [
        f"{rng.choice(a) if rng.random() < 0.3 else ''}{rng.choice(b)}{rng.choice(c)}"
        f"{rng.integers(10, 9999) if rng.random() < 0.7 else ''}"
        for _ in range(n)
    ]
    return np.array(out, dtype=object)


def _typo(rng: np.random.Generator, name: str) -> str:
    core = name.removesuffix("社区").removesuffix("村")
    idx = [i for i, ch in enumerate(core) if ch in _HOMOPHONE]
    if not idx:
        return name
    i = int(rng.choice(idx))
    return name[:i] + _HOMOPHONE[name[i]] + name[i + 1 :]


def _community_mention(rng: np.random.Generator, row) -> str:
    """One way of writing a community or village name."""
    name, kind, street = row["name"], row["kind"], row["street"]
    short = name.removesuffix("社区").removesuffix("村")
    r = rng.random()
    if r < 0.40:
        return name
    if r < 0.52:
        return ("天涯区" if rng.random() < 0.7 else "三亚市天涯区") + name
    if r < 0.60:
        return street + name
    if r < 0.67:
        return short + ("居委会" if kind == "community" else "村委会")
    if r < 0.85 and len(short) >= 2 and short not in _COMMON_WORDS:
        return short
    if r < 0.93:
        return _typo(rng, name)
    return name + rng.choice(["附近", "那边", "这块", "一带"])


def _places(frames: Mapping[str, gpd.GeoDataFrame]):
    """Communities, grids and landmarks as (mention maker, truth) tables."""
    comm = frames["communities"].reset_index(drop=True)
    grids = frames["grid_cells"]
    utm_c = comm.to_crs(UTM)
    rep = utm_c.geometry.representative_point()
    cxy = {c: (p.x, p.y) for c, p in zip(comm["code"], rep, strict=True)}
    grid_utm = grids.to_crs(UTM).geometry.representative_point()
    grid_rows = [
        (g, c, n, (p.x, p.y))
        for g, c, n, p in zip(
            grids["grid_code"], grids["community_code"], grids["name"], grid_utm, strict=True
        )
    ]
    lm = []
    flood = frames["flood_prevention"]
    keep = flood["facility_type"].isin(["shelter", "reservoir", "pump_station"])
    f = flood[keep]
    for code, name, c, p in zip(
        f["facility_code"], f["name"], f["community_code"], f.to_crs(UTM).geometry, strict=True
    ):
        lm.append((code, str(name).rstrip("0123456789号"), c, (p.x, p.y)))
    party = frames["party_building"]
    s = party[party["org_type"] == "service_center"]
    for code, name, c, p in zip(
        s["org_code"], s["name"], s["community_code"], s.to_crs(UTM).geometry, strict=True
    ):
        lm.append((code, str(name), c, (p.x, p.y)))
    rivers = frames["rivers"]
    rv = []
    for river, part in rivers.groupby("river_name"):
        g = part.to_crs(UTM).geometry.union_all().interpolate(0.5, normalized=True)
        rv.append((str(river), (g.x, g.y)))
    return comm, cxy, grid_rows, lm, rv


def _mention(rng, kind: str, comm, cxy, grid_rows, lm, rv, ci: int) -> tuple[str, _Place]:
    """Text naming a place of community ``ci`` (by ``kind``) and its truth."""
    row = comm.iloc[ci]
    code = row["code"]
    if kind == "grid":
        mine = [g for g in grid_rows if g[1] == code]
        g = mine[int(rng.integers(len(mine)))]
        num = g[2].removeprefix("第").removesuffix("网格")
        base = row["name"] if rng.random() < 0.8 else _community_mention(rng, row)
        text = base + (f"第{num}网格" if rng.random() < 0.6 else f"{num}网格")
        return text, _Place(g[0], code, g[3])
    if kind == "landmark":
        mine = [x for x in lm if x[2] == code]
        if mine:
            x = mine[int(rng.integers(len(mine)))]
            return x[1], _Place(x[0], code, x[3])
    if kind == "river":
        name, xy = rv[int(rng.integers(len(rv)))]
        if rng.random() < 0.5:
            return name, _Place(f"river:{name}", None, xy)
    return _community_mention(rng, row), _Place(code, code, cxy[code])


def _place_kind(rng) -> str:
    return str(rng.choice(["community", "grid", "landmark", "river"], p=[0.78, 0.09, 0.09, 0.04]))


def generate_posts(
    sample_frames: Mapping[str, gpd.GeoDataFrame],
    seed: int = 20261125,
    n_posts: int = POSTS_PER_YEAR,
    start: dt.date = YEAR_START,
    end: dt.date = YEAR_END,
    gps_share: float = 0.12,
) -> pd.DataFrame:
    """Generate a feed of synthetic posts with its ground truth.

    Parameters
    ----------
    sample_frames : mapping of str to GeoDataFrame
        The sample's layers (:func:`geodata.sample.generate`): ``communities``,
        ``grid_cells``, ``flood_prevention``, ``party_building`` and ``rivers`` are read.
    seed : int
        The same seed and frames give the same posts.
    n_posts : int
        Number of posts over ``start`` .. ``end`` (local dates).
    start, end : datetime.date
        The period (default the sample year).
    gps_share : float
        Share of Weibo posts that carry the poster's GPS point.

    Raises
    ------
    layers.errors.InvalidParameter
        ``n_posts`` < 1, or a period shorter than 7 days.

    Returns
    -------
    pandas.DataFrame
        One row per post, ordered by ``posted_at``: ``post_id``, ``platform``
        (``weibo``/``forum``/``wechat``), ``handle``, ``posted_at`` (UTC),
        ``text``, ``lon``/``lat`` (NaN without GPS), ``repost_of`` and ``reply_to``
        (the parent's ``post_id`` or None) and the truth columns ``true_place``, ``true_community``,
        ``true_category``, ``true_topic``, ``true_actionable``.
    """
    if n_posts < 1:
        raise InvalidParameter(f"n_posts must be a positive integer (got {n_posts})")
    if (end - start).days < 7:
        raise InvalidParameter(
            f"the period must span at least 7 days (got {start} .. {end}): topics last days"
        )
    rng = np.random.default_rng([seed, 14])
    comm, cxy, grid_rows, lm, rv = _places(sample_frames)
    pop = comm["population"].to_numpy(float)
    c_p = pop / pop.sum()
    t0 = pd.Timestamp(start) - pd.Timedelta(hours=8)  # local midnight in UTC
    span_h = ((end - start).days + 1) * 24.0
    handles = _handles(rng, max(200, n_posts // 8))
    h_w = 1.0 / np.arange(1, len(handles) + 1) ** 0.8
    h_w /= h_w.sum()
    h_draw = iter(rng.choice(len(handles), 2 * n_posts + 10, p=h_w))
    cats = list(_TOPIC_CAT_P)
    cat_p = np.array(list(_TOPIC_CAT_P.values()))
    cat_p /= cat_p.sum()
    rows: list[dict] = []

    def hour_of_day() -> float:
        # people post in the evening more than at night
        h = rng.choice(24, p=_HOUR_P)
        return float(h + rng.random())

    # --- actionable topics ------------------------------------------------------------------
    n_act = int(n_posts * ACTIONABLE_SHARE)
    topic = 0
    busy: dict[tuple[int, str], list[tuple[float, float]]] = {}
    while len(rows) < n_act:
        size = int(min(1 + rng.zipf(1.9), 30, n_act - len(rows)))
        gaps = np.minimum(rng.exponential(7.0, size), 40.0) + 0.05
        gaps[0] = 0.0
        for _ in range(50):  # one issue per place and category at a time (see module doc)
            ci = int(rng.choice(len(comm), p=c_p))
            cat = str(rng.choice(cats, p=cat_p))
            day = float(rng.uniform(0, span_h / 24 - 4))
            t = np.floor(day) * 24 + hour_of_day()
            lo, hi = t - _APART_H, t + float(gaps.sum()) + _APART_H
            if all(hi < a or lo > b for a, b in busy.get((ci, cat), ())):
                break
        busy.setdefault((ci, cat), []).append((t, t + float(gaps.sum())))
        kind = _place_kind(rng)
        first_text, place = _mention(rng, kind, comm, cxy, grid_rows, lm, rv, ci)
        ids: list[int] = []
        for k in range(size):
            t += float(gaps[k])
            r = rng.random()
            platform = str(rng.choice(list(PLATFORMS), p=list(PLATFORMS.values())))
            handle = handles[next(h_draw)]
            repost_of = reply_to = None
            if k and r < 0.28:  # repost of an earlier post of the topic
                src = rows[ids[int(rng.integers(len(ids)))]]
                text = (
                    f"{rng.choice(['转发微博', '扩散', '求关注', ''])}//@{src['handle']}: "
                    + src["text"]
                )
                repost_of = src["post_id"]
                tp, tc = src["true_place"], src["true_community"]
                platform = "weibo"
            elif k and r < 0.38:  # copy-paste with a small change
                src = rows[ids[int(rng.integers(len(ids)))]]
                text = str(rng.choice(["", "@天涯区政府 ", "@三亚12345 "])) + src["text"]
                text += str(rng.choice(["！！", "，急", "", "。有人管吗"]))
                tp, tc = src["true_place"], src["true_community"]
            elif k and r < 0.46 and cat in _FOLLOW_UP:  # a reply in the thread, no place
                text = str(rng.choice(_FOLLOW_UP[cat])).format(n=k + 1)
                tp = tc = None
                reply_to = rows[ids[0]]["post_id"]
            else:
                mention, tp, tc = first_text, place.place_id, place.community
                if k and rng.random() < 0.5 and place.community is not None:
                    # another way of naming the same place: its community
                    mention = _community_mention(rng, comm.iloc[ci])
                    tp = tc = place.community
                text = str(rng.choice(_CAT_TEXT[cat])).format(p=mention)
                if rng.random() < _TWO_PLACES:  # where the poster comes from, then the issue
                    other = comm.iloc[int(rng.integers(len(comm)))]
                    if other["code"] != place.community:
                        text = str(rng.choice(_FROM)).format(o=other["name"]) + text
            if platform == "wechat":
                text = f"【{rng.choice(['天涯生活圈', '鹿城新鲜事', '三亚身边事'])}】" + text
            rows.append(
                _row(
                    rng,
                    len(rows),
                    platform,
                    handle,
                    t,
                    text,
                    place.xy,
                    gps_share,
                    repost_of,
                    tp,
                    tc,
                    cat,
                    topic,
                    reply_to,
                )
            )
            ids.append(len(rows) - 1)
        topic += 1

    # --- noise ------------------------------------------------------------------------------
    while len(rows) < n_posts:
        tmpl = str(rng.choice(_NOISE_TEXT))
        t = float(rng.uniform(0, span_h / 24 - 1)) // 1 * 24 + hour_of_day()
        platform = str(rng.choice(list(PLATFORMS), p=list(PLATFORMS.values())))
        handle = handles[next(h_draw)]
        ci = int(rng.choice(len(comm), p=c_p))
        tp = tc = None
        xy = cxy[comm.iloc[ci]["code"]]
        if "{p}" in tmpl:
            if rng.random() < 0.25:
                mention = str(rng.choice(_VAGUE))
            else:
                mention, pl = _mention(rng, _place_kind(rng), comm, cxy, grid_rows, lm, rv, ci)
                tp, tc, xy = pl.place_id, pl.community, pl.xy
            tmpl = tmpl.format(p=mention)
        if platform == "wechat":
            tmpl = f"【{rng.choice(['天涯生活圈', '鹿城新鲜事', '三亚身边事'])}】" + tmpl
        rows.append(
            _row(rng, len(rows), platform, handle, t, tmpl, xy, gps_share, None, tp, tc, None, -1)
        )
        if rng.random() < 0.05:  # noise gets reposted too
            src = rows[-1]
            rows.append(
                _row(
                    rng,
                    len(rows),
                    "weibo",
                    handles[next(h_draw)],
                    t + float(rng.exponential(3.0)),
                    f"转发微博//@{src['handle']}: {src['text']}",
                    xy,
                    gps_share,
                    src["post_id"],
                    tp,
                    tc,
                    None,
                    -1,
                )
            )

    df = pd.DataFrame(rows[:n_posts])
    df["posted_at"] = t0.tz_localize("UTC") + pd.to_timedelta(df.pop("_t"), unit="h")
    df["posted_at"] = df["posted_at"].dt.floor("s")
    df = df.sort_values(["posted_at", "post_id"], kind="stable").reset_index(drop=True)
    # GPS: the poster's phone, near the place (UTM) -> lon/lat
    gx, gy = df.pop("_gx").to_numpy(float), df.pop("_gy").to_numpy(float)
    has = ~np.isnan(gx)
    lon = np.full(len(df), np.nan)
    lat = np.full(len(df), np.nan)
    if has.any():
        pts = gpd.GeoSeries(shapely.points(gx[has], gy[has]), crs=UTM).to_crs(4326)
        lon[has], lat[has] = pts.x.to_numpy(), pts.y.to_numpy()
    df["lon"], df["lat"] = lon, lat
    cols = [
        "post_id",
        "platform",
        "handle",
        "posted_at",
        "text",
        "lon",
        "lat",
        "repost_of",
        "reply_to",
        "true_place",
        "true_community",
        "true_category",
        "true_topic",
        "true_actionable",
    ]
    return df[cols]


def _row(
    rng, i, platform, handle, t, text, xy, gps_share, repost_of, tp, tc, cat, topic, reply_to=None
):
    gps = platform == "weibo" and rng.random() < gps_share
    jitter = rng.normal(0, 60, 2)
    return {
        "post_id": f"OP{i:07d}",
        "platform": platform,
        "handle": str(handle),
        "_t": t,
        "text": text,
        "_gx": xy[0] + jitter[0] if gps else np.nan,
        "_gy": xy[1] + jitter[1] if gps else np.nan,
        "repost_of": repost_of,
        "reply_to": reply_to,
        "true_place": tp,
        "true_community": tc,
        "true_category": cat,
        "true_topic": topic,
        "true_actionable": cat is not None,
    }


def _hour_p() -> np.ndarray:
    h = np.arange(24)
    p = 0.3 + np.exp(-0.5 * ((h - 12) / 2.0) ** 2) + 1.4 * np.exp(-0.5 * ((h - 21) / 1.8) ** 2)
    p[h < 7] *= 0.25
    return p / p.sum()


_HOUR_P = _hour_p()


def held_out(posts: pd.DataFrame, since: dt.date = HELD_OUT_FROM) -> pd.Series:
    """Boolean mask of the held-out part: posts from local date ``since`` on.

    Train on ``~mask`` only, measure on ``mask``: a split by time, as a deployed model
    meets posts later than those it learned from.
    """
    local = posts["posted_at"].dt.tz_convert("Asia/Shanghai").dt.date
    return local >= since
