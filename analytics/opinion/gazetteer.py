"""A gazetteer of our own layers and a geoparser for short Chinese posts.

Names come from the layers, not from a geocoder service: communities and villages (full
name, the name without 社区/村 where that is not an ordinary word, 居委会/村委会 forms),
unit grids (``<community>第3网格`` / ``<community>3网格``), landmarks (党群服务中心 of
``party_building``; shelters, reservoirs and pump stations of ``flood_prevention``) and
rivers.  Administrative names (天涯区, 三亚市, the streets and towns) are scanned too, so
that ``天涯区`` is read as the district and never as 天涯社区, but they resolve to nothing.

Segmentation is a longest match over the gazetteer's own names, not a general word
segmenter such as jieba: the only words we need are our place names (a few hundred), the
scan is exact and deterministic (jieba's HMM can split an unseen name like 解方社区 in
ways that depend on its dictionary), it costs no dependency nor dictionary load, and it
is fast (a dictionary lookup at the few positions where a name can start).  Typos are the
usual one-character homophone slips of pinyin input (红堂村 for 红塘村): the fuzzy pass
looks at the characters before a 社区/村/居委会/村委会 suffix and accepts a name that
differs in one character of its core, when exactly one name does.

A post resolves to one place with a confidence; two different communities, or nothing
better than the threshold, give "unknown" (``place_id`` None): an unsure post should say
unknown rather than guess.

Examples
--------
>>> import geopandas as gpd, shapely
>>> comm = gpd.GeoDataFrame({"code": ["C1", "C2"], "name": ["红塘村", "金鸡岭社区"],
...     "kind": ["village", "community"]},
...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326)
>>> g = build_gazetteer({"communities": comm})
>>> g.geoparse("天涯区红塘村路口的路灯坏了好几天").community_code
'C1'
>>> g.geoparse("红堂村路口的路灯坏了").method
'fuzzy'
>>> g.geoparse("金鸡岭那边又积水了").place_id
'C2'
>>> g.geoparse("天涯区这边路灯坏了").place_id is None
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

__all__ = [
    "ADMIN_NAMES",
    "ORDINARY_WORDS",
    "Gazetteer",
    "Match",
    "Place",
    "build_gazetteer",
    "exact_name_baseline",
]

#: Names of the city, district, streets and towns: scanned, resolved to no place.
ADMIN_NAMES = (
    "海南省", "海南", "三亚市", "三亚", "天涯区", "天涯街道", "凤凰街道", "育才镇", "天涯镇",
)  # fmt: skip
#: Short forms that are ordinary words or bigger places: never read as the community alone.
ORDINARY_WORDS = frozenset(
    "新风 解放 春光 友谊 新建 天涯 凤凰 海滨 滨海 新港 山海 光明 立新 高峰 东岸 南新 金鸡 "
    "椰林 槟榔".split()
)
_SUFFIXES = ("社区", "村")
_COMMITTEE = {"community": "居委会", "village": "村委会"}
_GRID = re.compile(r"(?:第)?([0-9一二三四五六七八九十]{1,3})(?:号)?网格")
_CN_NUM = {c: i for i, c in enumerate("零一二三四五六七八九十")}

# confidence by how the name was found
CONF_FULL = 0.95
CONF_ALIAS = 0.85
CONF_FUZZY = 0.75
CONF_GPS = 0.8
CONF_CONFLICT = 0.4
#: Below this a post's place is "unknown".
THRESHOLD = 0.6


@dataclass(frozen=True)
class Place:
    """A named place of our layers.

    ``kind`` is ``community``, ``village``, ``grid``, ``landmark``, ``river`` or
    ``admin``; ``geometry`` (EPSG:4326) is its area, line or point.
    """

    place_id: str
    kind: str
    name: str
    community_code: str | None
    geometry: shapely.Geometry | None = None


@dataclass(frozen=True)
class Match:
    """Where a post is about.

    ``place_id`` None means unknown; ``method`` says how it was found (``full``,
    ``alias``, ``fuzzy``, ``gps``, ``conflict`` or ``none``) and ``span`` the text read.
    An unknown place may still list ``candidates`` (the communities a typo or two names
    could mean), for context such as an open topic to decide.
    """

    place_id: str | None
    kind: str | None
    community_code: str | None
    confidence: float
    method: str
    span: str = ""
    candidates: tuple[str, ...] = ()


UNKNOWN = Match(None, None, None, 0.0, "none")


def _to_int(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    if s == "十":
        return 10
    if len(s) == 2 and s[0] == "十":
        return 10 + _CN_NUM.get(s[1], 0)
    if len(s) == 1:
        return _CN_NUM.get(s)
    return None


@dataclass
class Gazetteer:
    """Place names and the places they name; see :func:`build_gazetteer`."""

    places: dict[str, Place]
    #: alias -> (place_id, confidence); one place per alias (ambiguous aliases are dropped)
    aliases: dict[str, tuple[str, float]]
    #: (community_code, grid number) -> grid place_id
    grids: dict[tuple[str, int], str] = field(default_factory=dict)
    #: one-character-substitution masks of full names -> place ids
    fuzzy: dict[str, set[str]] = field(default_factory=dict)
    threshold: float = THRESHOLD

    def __post_init__(self) -> None:
        starts: dict[str, set[int]] = {}
        for a in self.aliases:
            starts.setdefault(a[:2], set()).add(len(a))
        self._starts = {k: sorted(v, reverse=True) for k, v in starts.items()}
        self._cores = sorted(
            {len(k) - len(s) for k in self.fuzzy for s in _SUFFIXES if k.endswith(s)}
        )
        codes = [p for p in self.places.values() if p.kind in ("community", "village")]
        self._area_ids = [p.place_id for p in codes if p.geometry is not None]
        geoms = [g for i in self._area_ids if (g := self.places[i].geometry) is not None]
        self._tree = shapely.STRtree(geoms) if geoms else None

    # --- scanning -----------------------------------------------------------------------------

    def scan(self, text: str) -> list[tuple[int, int, str]]:
        """Longest-match names in ``text``, left to right: ``(start, end, place_id)``.

        >>> g = Gazetteer({"a": Place("a", "village", "红塘村", "a")},
        ...               {"红塘村": ("a", 0.95), "红塘": ("a", 0.85)})
        >>> g.scan("红塘村和红塘")
        [(0, 3, 'a'), (4, 6, 'a')]
        """
        out = []
        i, n = 0, len(text)
        starts, aliases = self._starts, self.aliases
        while i < n - 1:
            lengths = starts.get(text[i : i + 2])
            if lengths:
                for L in lengths:
                    if i + L > n:
                        continue
                    hit = aliases.get(text[i : i + L])
                    if hit is not None:
                        out.append((i, i + L, hit[0]))
                        i += L
                        break
                else:
                    i += 1
            else:
                i += 1
        return out

    def _fuzzy(
        self, text: str, taken: list[tuple[int, int, str]], ambiguous: set[str] | None = None
    ) -> list[tuple[int, int, str]]:
        out = []
        for suffix in _SUFFIXES:
            p = text.find(suffix)
            while p >= 0:
                end = p + len(suffix)
                if not any(s <= p < e for s, e, _ in taken):
                    found: set[str] = set()
                    span = (p, end)
                    for k in self._cores:
                        if p - k < 0:
                            continue
                        w = text[p - k : end]
                        for j in range(k):
                            ids = self.fuzzy.get(w[:j] + "?" + w[j + 1 :])
                            if ids:
                                found |= ids
                                span = (p - k, end)
                    if len(found) == 1:
                        out.append((span[0], span[1], next(iter(found))))
                    elif found and ambiguous is not None:
                        ambiguous |= found
                p = text.find(suffix, end)
        return out

    # --- resolving ----------------------------------------------------------------------------

    def geoparse(self, text: str, lon: float | None = None, lat: float | None = None) -> Match:
        """The place a post is about, or unknown.

        Parameters
        ----------
        text : str
            The post.
        lon, lat : float, optional
            The poster's GPS point (EPSG:4326), used only when the text names no place
            (a phone's position is where the poster is, not necessarily the issue).

        Returns
        -------
        Match
            ``place_id`` None when unknown (no name, two communities, or a confidence
            under :attr:`threshold`).
        """
        hits = self.scan(text)
        conf_of: dict[tuple[int, int], float] = {}
        method = "full"
        for s, e, _ in hits:
            conf_of[(s, e)] = self.aliases[text[s:e]][1]
        real = [h for h in hits if self.places[h[2]].kind != "admin"]
        ambiguous: set[str] = set()
        fuzzy = self._fuzzy(text, hits, ambiguous)
        if not real:
            real = fuzzy
            for s, e, _ in real:
                conf_of[(s, e)] = CONF_FUZZY
            method = "fuzzy"
        elif fuzzy or ambiguous:
            # a name spelt with a typo beside an exact one: another place, unless it may be
            # the same one
            exact = {c for _, _, p in real if (c := self.places[p].community_code) is not None}
            typo = {c for _, _, p in fuzzy if (c := self.places[p].community_code) is not None}
            if (typo - exact) or (ambiguous and not ambiguous & exact):
                cands = tuple(sorted(exact | typo | ambiguous))
                return Match(None, None, None, CONF_CONFLICT, "conflict", "", cands)
        if not real:
            m = self._gps(lon, lat)
            if m.place_id is None and ambiguous:
                return Match(None, None, None, 0.0, "fuzzy", "", tuple(sorted(ambiguous)))
            return m
        # a grid number after a community name
        picks: list[tuple[str, float, str]] = []
        for s, e, pid in real:
            place = self.places[pid]
            conf = conf_of[(s, e)]
            if place.kind in ("community", "village"):
                gm = _GRID.match(text, e)
                if gm:
                    num = _to_int(gm.group(1))
                    gid = self.grids.get((pid, num)) if num is not None else None
                    if gid is not None:
                        picks.append((gid, conf, text[s : gm.end()]))
                        continue
            picks.append((pid, conf, text[s:e]))
        comms = {c for p, _, _ in picks if (c := self.places[p].community_code) is not None}
        if len(comms) > 1:
            span = "|".join(x[2] for x in picks)
            return Match(None, None, None, CONF_CONFLICT, "conflict", span, tuple(sorted(comms)))
        rank = {"grid": 0, "landmark": 1, "community": 2, "village": 2, "river": 3}
        pid, conf, span = min(picks, key=lambda x: (rank[self.places[x[0]].kind], -x[1]))
        if comms and self.places[pid].kind == "river":  # a river and a community: the community
            pid, conf, span = next(x for x in picks if self.places[x[0]].community_code in comms)
        if method != "fuzzy":
            method = "full" if conf >= CONF_FULL else "alias"
        place = self.places[pid]
        if conf < self.threshold:
            return Match(None, None, None, conf, method, span)
        return Match(pid, place.kind, place.community_code, conf, method, span)

    def _gps(self, lon: float | None, lat: float | None) -> Match:
        if lon is None or lat is None or np.isnan(lon) or np.isnan(lat) or self._tree is None:
            return UNKNOWN
        idx = self._tree.query(shapely.Point(lon, lat), predicate="within")
        if len(idx) != 1:
            return UNKNOWN
        pid = self._area_ids[int(idx[0])]
        place = self.places[pid]
        if CONF_GPS < self.threshold:
            return Match(None, None, None, CONF_GPS, "gps")
        return Match(pid, place.kind, place.community_code, CONF_GPS, "gps")

    def point(self, place_id: str) -> tuple[float, float] | None:
        """A representative point (lon, lat) of a place, or None without geometry."""
        g = self.places[place_id].geometry
        if g is None:
            return None
        p = g if isinstance(g, shapely.Point) else shapely.point_on_surface(g)
        return (float(shapely.get_x(p)), float(shapely.get_y(p)))


def build_gazetteer(
    frames: Mapping[str, gpd.GeoDataFrame], threshold: float = THRESHOLD
) -> Gazetteer:
    """Build the gazetteer from our layers.

    Parameters
    ----------
    frames : mapping of str to GeoDataFrame
        Layers by catalogue id; ``communities`` is required, ``grid_cells``,
        ``party_building``, ``flood_prevention`` and ``rivers`` are used when present.
    threshold : float
        Confidence under which a post's place is unknown.

    Returns
    -------
    Gazetteer
    """
    places: dict[str, Place] = {}
    cand: dict[str, list[tuple[str, float]]] = {}

    def alias(name: str, pid: str, conf: float) -> None:
        if len(name) >= 2:
            cand.setdefault(name, []).append((pid, conf))

    comm = frames["communities"].to_crs(4326)
    fuzzy: dict[str, set[str]] = {}
    for code, name, kind, geom in zip(
        comm["code"], comm["name"], comm["kind"], comm.geometry, strict=True
    ):
        code, name = str(code), str(name)
        places[code] = Place(code, str(kind), name, code, geom)
        alias(name, code, CONF_FULL)
        short = name
        for s in _SUFFIXES:
            short = short.removesuffix(s)
        alias(short + _COMMITTEE.get(str(kind), "居委会"), code, CONF_FULL)
        if short != name and len(short) >= 2 and short not in ORDINARY_WORDS:
            alias(short, code, CONF_ALIAS)
        if len(short) >= 2 and short != name:
            suffix = name[len(short) :]
            for j in range(len(short)):
                fuzzy.setdefault(short[:j] + "?" + short[j + 1 :] + suffix, set()).add(code)
    grids: dict[tuple[str, int], str] = {}
    if "grid_cells" in frames:
        g = frames["grid_cells"].to_crs(4326)
        for gc, cc, name, geom in zip(
            g["grid_code"], g["community_code"], g["name"], g.geometry, strict=True
        ):
            m = _GRID.fullmatch(str(name))
            places[str(gc)] = Place(str(gc), "grid", str(name), str(cc), geom)
            if m and (num := _to_int(m.group(1))) is not None:
                grids[(str(cc), num)] = str(gc)
    landmarks = []
    if "party_building" in frames:
        pb = frames["party_building"]
        pb = pb[pb["org_type"] == "service_center"].to_crs(4326)
        landmarks += list(
            zip(pb["org_code"], pb["name"], pb["community_code"], pb.geometry, strict=True)
        )
    if "flood_prevention" in frames:
        fp = frames["flood_prevention"]
        fp = fp[fp["facility_type"].isin(["shelter", "reservoir", "pump_station"])].to_crs(4326)
        landmarks += list(
            zip(fp["facility_code"], fp["name"], fp["community_code"], fp.geometry, strict=True)
        )
    for code, name, cc, geom in landmarks:
        code, name = str(code), str(name)
        places[code] = Place(code, "landmark", name, str(cc), geom)
        alias(name, code, CONF_FULL)
        bare = name.rstrip("0123456789号")
        if (
            bare != name
        ):  # "红塘村水库3号" is also written "红塘村水库": the first one stands for it
            if bare not in cand:
                alias(bare, code, CONF_FULL)
    if "rivers" in frames:
        rv = frames["rivers"].to_crs(4326)
        for river, part in rv.groupby("river_name"):
            pid = f"river:{river}"
            cs = set(part["community_code"])
            places[pid] = Place(
                pid,
                "river",
                str(river),
                str(next(iter(cs))) if len(cs) == 1 else None,
                part.geometry.union_all(),
            )
            alias(str(river), pid, CONF_FULL)
    for i, name in enumerate(ADMIN_NAMES):
        pid = f"admin:{i}"
        places[pid] = Place(pid, "admin", name, None, None)
        cand.setdefault(name, []).append((pid, 1.0))
    aliases = {}
    for name, hits in cand.items():
        ids = {h[0] for h in hits}
        if len(ids) == 1:
            aliases[name] = max(hits, key=lambda h: h[1])
        else:  # an alias shared by two places is kept only for the one it fully names
            full = [h for h in hits if places[h[0]].name == name]
            if len(full) == 1:
                aliases[name] = full[0]
    return Gazetteer(places, aliases, grids, fuzzy, threshold)


def exact_name_baseline(frames: Mapping[str, gpd.GeoDataFrame]):
    """A baseline geoparser: the longest community/village full name found verbatim.

    Returns a function ``text -> community code or None``.

    >>> import geopandas as gpd
    >>> f = gpd.GeoDataFrame({"code": ["C1"], "name": ["红塘村"]})
    >>> exact_name_baseline({"communities": f})("红塘村的路灯坏了")
    'C1'
    """
    names = sorted(
        zip(frames["communities"]["name"], frames["communities"]["code"], strict=True),
        key=lambda x: -len(x[0]),
    )

    def parse(text: str) -> str | None:
        for name, code in names:
            if name in text:
                return str(code)
        return None

    return parse
