"""What a post reports: one of the catalogue's case categories, or not actionable (None).

Two ways, both plain:

- :func:`classify_rules`: keyword rules written from what residents say about each
  category (路灯 + 不亮/黑/灭 → ``street_light``), with cues that a post is not a report
  (a campaign, an advert, a photo tip) -- no training, explainable, the fallback;
- :class:`CategoryModel`: a small linear classifier over character 1-3-grams (hashed,
  so no vocabulary to keep) trained on labelled posts -- for the opinion feed, the
  training part of the generated feed, later the staff's own labels.

:func:`catalogue_name_baseline` (the catalogue's Chinese name found verbatim) is the
baseline both are measured against.

Examples
--------
>>> classify_rules("红塘村路口的路灯坏了好几天")
'street_light'
>>> classify_rules("今天参加了红塘村的垃圾分类宣传活动") is None
True
>>> m = CategoryModel().fit(["路灯不亮", "井盖丢了", "今天天气好"] * 3,
...                         ["street_light", "manhole_cover", None] * 3)
>>> m.predict(["晚上路灯不亮", "天气真好"])
['street_light', None]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from layers.catalogue import CATEGORIES

__all__ = [
    "KEYWORDS",
    "CategoryModel",
    "catalogue_name_baseline",
    "classify_rules",
    "normalize",
]

#: Keywords per category (any one scores a point; the best score wins).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "exposed_garbage": ("垃圾", "塑料袋", "饭盒", "苍蝇", "垃圾桶", "臭", "乱扔"),
    "road_cleaning": ("没扫", "清扫", "保洁", "油污", "落叶", "泥浆", "冲洗"),
    "garbage_pile": ("渣土", "建筑垃圾", "装修垃圾", "偷倒", "堆了"),
    "road_dust": ("扬尘", "灰尘", "尘土", "吃一嘴灰", "洒水", "渣土车"),
    "storefront": ("门前三包", "门前", "店铺", "商铺", "杂物", "门口", "饭店"),
    "illegal_ads": ("小广告", "广告", "招牌", "牛皮癣", "贴满"),
    "illegal_construction": ("违建", "私搭乱建", "违章建筑", "加盖", "铁皮房", "铁皮棚"),
    "construction_noise": ("噪音", "噪声", "施工", "打桩", "电钻", "吵"),
    "illegal_parking": ("乱停", "违停", "停满", "消防通道", "停了", "单车"),
    "street_vending": ("摆摊", "摊贩", "占道经营", "摊位", "夜市", "流动"),
    "waterlogging": ("积水", "淹", "内涝", "排水", "汪洋"),
    "fallen_tree": ("树倒", "倒了", "倒伏", "倒在", "大树", "行道树"),
    "street_light": ("路灯", "黑漆漆", "一片黑", "灭了"),
    "manhole_cover": ("井盖",),
    "road_damage": ("坑", "破损", "塌", "路面", "砖"),
    "traffic_sign": ("标志牌", "指示牌", "限速牌", "交通标志"),
    "green_damage": ("绿地", "草坪", "绿化带", "花坛", "踩"),
    "other": ("流浪狗", "公共厕所", "健身器材"),
}
#: Keywords that alone say what the post is about (they score two points).
STRONG = frozenset(
    "违建 私搭乱建 违章建筑 井盖 路灯 积水 内涝 扬尘 渣土 小广告 牛皮癣 占道经营 摊贩 违停 乱停 "
    "噪音 噪声 标志牌 指示牌 倒伏 门前三包 绿化带 草坪 花坛 苍蝇 塌 坑 停满 灰尘 渣土车".split()
)
# a report, not a remark: complaint cues that support any category
_REPORT = (
    "坏",
    "没人",
    "不亮",
    "太",
    "严重",
    "危险",
    "谁来",
    "管管",
    "举报",
    "投诉",
    "怎么办",
    "没",
)
# not a report: campaigns, adverts, tips, news
_NOT_REPORT = (
    "宣传", "活动", "拍照", "推荐", "招聘", "出租", "抽奖", "优惠", "攻略", "会议", "预警",
    "辛苦", "期待", "志愿者",
)  # fmt: skip
_STRIP = re.compile(r"//@[^:：]{1,30}[:：]|【[^】]{1,20}】|@\S{1,20}\s|转发微博|扩散|求关注")


def normalize(text: str) -> str:
    """The post without repost chains' handles, article tags and @mentions.

    >>> normalize("转发微博//@椰子: 【天涯生活圈】@天涯区政府 路灯坏了")
    '路灯坏了'
    """
    return _STRIP.sub("", text).strip()


def classify_rules(text: str) -> str | None:
    """Category by keyword rules, or None (not actionable).

    A post scores a point per keyword of each category (two for a :data:`STRONG` one); the
    best category wins if the post also reads as a report (or scores two) and carries no cue
    of a campaign,
    advert or tip.  Ties go to the category listed first in :data:`KEYWORDS`.
    """
    t = normalize(text)
    if any(w in t for w in _NOT_REPORT):
        return None
    best, score = None, 0
    for code, words in KEYWORDS.items():
        s = sum(2 if w in STRONG else 1 for w in words if w in t)
        if s > score:
            best, score = code, s
    if best is None:
        return None
    if score >= 2 or any(w in t for w in _REPORT):
        return best
    return None


_CAT_ZH = {c.code: c.zh for c in CATEGORIES}


def catalogue_name_baseline(text: str) -> str | None:
    """Baseline: the category whose catalogue name (路灯不亮, 道路积水, ...) is in the text."""
    for code, zh in _CAT_ZH.items():
        if zh in text:
            return code
    return None


_NONE = "_none"


class CategoryModel:
    """A linear classifier over hashed character 1-3-grams (scikit-learn).

    ``fit(texts, labels)`` with labels a category code or None (not actionable);
    ``predict(texts)`` returns the same.  Texts are :func:`normalize`-d first.
    """

    def __init__(self, n_features: int = 2**18, c: float = 0.5) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.svm import LinearSVC

        self.vectorizer = HashingVectorizer(
            analyzer="char",
            ngram_range=(1, 3),
            n_features=n_features,
            alternate_sign=False,
            norm="l2",
        )
        self.model = LinearSVC(C=c)

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> CategoryModel:
        """Train on labelled posts; returns self."""
        x = self.vectorizer.transform([normalize(t) for t in texts])
        y = np.array([_NONE if v is None or v != v else str(v) for v in labels], dtype=object)
        self.model.fit(x, y)
        return self

    def predict(self, texts: Sequence[str]) -> list[str | None]:
        """Category code or None per text."""
        if len(texts) == 0:
            return []
        x = self.vectorizer.transform([normalize(t) for t in texts])
        return [None if v == _NONE else str(v) for v in self.model.predict(x)]
