"""Base maps for Chinese users and the GCJ-02 conversion their overlays need.

============ ===================== ========== ============================================
id           drawn from            datum      overlays
============ ===================== ========== ============================================
tianya       天涯区底图, our data    WGS84      as stored (default; embedded: no other host)
osm          OpenStreetMap tiles   WGS84      as stored
tianditu     天地图 vector + labels CGCS2000   as stored (CGCS2000 ≈ WGS84 below ~1 m here)
tianditu_img 天地图 imagery        CGCS2000   as stored
amap         高德 road map          GCJ-02     converted WGS84 → GCJ-02 (~466 m at Tianya)
amap_img     高德 imagery           GCJ-02     converted WGS84 → GCJ-02
============ ===================== ========== ============================================

The default, ``tianya`` (:data:`DEFAULT`), is the district's own base map — sea, district
boundary, communities and villages with their names, rivers, grid cells and buildings —
drawn from the project's layers (:func:`layers.basemap.basemap_frames`) in the style the
server publishes (:func:`layers.basemap.style`) and embedded in the map
(:mod:`analytics.map_basemap`): a saved map makes no request to any host. The others are
online tile services, chosen explicitly (:data:`ONLINE`).

Tile URLs and keys are given by the caller, never read here: ``tiles`` maps a base map id to
a template overriding the default (``{s}``, ``{z}``, ``{x}``, ``{y}``, ``{key}``
placeholders; the settings ``TIANYA_TILES_<ID>``, e.g. an intranet tile server for
``osm``), ``keys`` maps ``"tianditu"`` to the 天地图 browser key (``tk``, setting
``TIANYA_TIANDITU_KEY``) and ``"amap"`` to the key filling ``{key}`` in an Amap template
that has one (``TIANYA_AMAP_KEY``). A base map whose template needs a key that is not given
is refused with a message naming the setting.

GCJ-02 ("Mars coordinates") is computed by :mod:`prcoords` (public domain), which reproduces
the published eviltransform test vectors to 1e-12 degrees (see ``tests/test_maps.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import shapely

from analytics.errors import AnalyticsError, check_choice

__all__ = [
    "BASEMAPS",
    "DEFAULT",
    "ONLINE",
    "BaseMap",
    "basemap",
    "bilingual",
    "to_gcj02",
    "wgs_to_gcj",
]


@dataclass(frozen=True)
class BaseMap:
    """One tiled base map.

    Attributes
    ----------
    id : str
        Short name (``osm``, ``tianditu``, ``amap`` …).
    zh, en : str
        Titles.
    url : str
        Default tile URL template (overridden by ``tiles[id]``).
    attribution : str
        Attribution shown on the map (required by every provider's terms).
    datum : {"WGS84", "CGCS2000", "GCJ-02"}
        Coordinates the tiles are drawn in; ``GCJ-02`` means overlays must be converted.
    subdomains : str
        Values of ``{s}``.
    key : str or None
        Which of the ``keys`` fills ``{key}`` (``"tianditu"``, ``"amap"``).
    labels : str or None
        Optional annotation tile template drawn above (天地图's separate label layer).
    max_zoom : int
        The deepest zoom level of the tiles.
    embedded : bool
        Drawn from our own data inside the map (``tianya``): no tiles, no URL, no key.
    """

    id: str
    zh: str
    en: str
    url: str
    attribution: str
    datum: str = "WGS84"
    subdomains: str = "abc"
    key: str | None = None
    labels: str | None = None
    max_zoom: int = 18
    embedded: bool = False

    @property
    def gcj02(self) -> bool:
        return self.datum == "GCJ-02"

    def title(self, lang: str = "both") -> str:
        return bilingual(self.zh, self.en, lang)

    @property
    def key_setting(self) -> str | None:
        """The setting naming this base map's key (``TIANYA_TIANDITU_KEY``…)."""
        return f"TIANYA_{self.key.upper()}_KEY" if self.key else None

    def tiles(
        self, tiles: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None
    ) -> tuple[str, str | None]:
        """The tile template and label template, with the key filled in.

        Parameters
        ----------
        tiles : mapping of str to str, optional
            Tile URL templates by base map id, overriding the defaults.
        keys : mapping of str to str, optional
            Keys by key id (``"tianditu"``, ``"amap"``).

        Raises
        ------
        AnalyticsError
            The template needs a key that ``keys`` lacks (naming its setting), or the base
            map has no tiles (an embedded one).
        """
        if self.embedded:
            raise AnalyticsError(f"base map {self.id!r} is drawn from our data, not from tiles")
        url = (tiles or {}).get(self.id) or self.url
        labels = self.labels
        if "{key}" in url or (labels and "{key}" in labels):
            key = (keys or {}).get(self.key) if self.key else None
            if not key:
                raise AnalyticsError(
                    f"base map {self.id!r} needs a key: set "
                    f"{self.key_setting or 'a key in its tile URL'}"
                )
            url = url.replace("{key}", key)
            labels = labels.replace("{key}", key) if labels else None
        return url, labels


def bilingual(zh: str, en: str, lang: str) -> str:
    """The title in ``lang``: ``"zh"``, ``"en"`` or both (anything else).

    >>> bilingual("天涯区", "Tianya", "both")
    '天涯区 Tianya'
    """
    if lang.lower().startswith("zh"):
        return zh
    if lang.lower().startswith("en"):
        return en
    return f"{zh} {en}"


_TDT = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk={key}"
)
_TDT_ATTR = "&copy; 天地图 Tianditu (国家地理信息公共服务平台)"
_AMAP_ATTR = "&copy; 高德地图 AutoNavi"

BASEMAPS: dict[str, BaseMap] = {
    b.id: b
    for b in (
        BaseMap(
            "tianya",
            "天涯区底图",
            "Tianya base map",
            "",
            "天涯区底图 Tianya base map: district, communities, rivers (synthetic sample data)",
            subdomains="",
            max_zoom=19,
            embedded=True,
        ),
        BaseMap(
            "osm",
            "开放街道地图",
            "OpenStreetMap",
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "&copy; OpenStreetMap contributors",
            subdomains="abc",
            max_zoom=19,
        ),
        BaseMap(
            "tianditu",
            "天地图矢量",
            "Tianditu vector",
            _TDT.replace("{layer}", "vec"),
            _TDT_ATTR,
            datum="CGCS2000",
            subdomains="01234567",
            key="tianditu",
            labels=_TDT.replace("{layer}", "cva"),
        ),
        BaseMap(
            "tianditu_img",
            "天地图影像",
            "Tianditu imagery",
            _TDT.replace("{layer}", "img"),
            _TDT_ATTR,
            datum="CGCS2000",
            subdomains="01234567",
            key="tianditu",
            labels=_TDT.replace("{layer}", "cia"),
        ),
        BaseMap(
            "amap",
            "高德地图",
            "Amap",
            "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}",
            _AMAP_ATTR,
            datum="GCJ-02",
            subdomains="1234",
            key="amap",
        ),
        BaseMap(
            "amap_img",
            "高德影像",
            "Amap imagery",
            "https://webst0{s}.is.autonavi.com/appmaptile?style=6&x={x}&y={y}&z={z}",
            _AMAP_ATTR,
            datum="GCJ-02",
            subdomains="1234",
            key="amap",
        ),
    )
}


#: The base map of every map unless another is chosen: ours, embedded, offline.
DEFAULT = "tianya"
#: The online base maps (tile services on other hosts), chosen explicitly.
ONLINE = tuple(b for b in BASEMAPS if not BASEMAPS[b].embedded)


def basemap(name: str) -> BaseMap:
    """The base map called ``name`` (see :data:`BASEMAPS`)."""
    check_choice(name, "base map", tuple(BASEMAPS))
    return BASEMAPS[name]


def wgs_to_gcj(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitudes/latitudes converted to GCJ-02 (outside China: unchanged).

    Parameters
    ----------
    lon, lat : array-like of float

    Returns
    -------
    lon, lat : ndarray
    """
    import prcoords

    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    out_lon = np.empty_like(lon)
    out_lat = np.empty_like(lat)
    conv = prcoords.wgs_gcj
    coords = prcoords.Coords
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        c = conv(coords(y, x), True)
        out_lat[i] = c.lat
        out_lon[i] = c.lon
    return out_lon, out_lat


def to_gcj02(frame):
    """A copy of a GeoDataFrame (EPSG:4326) with every coordinate moved to GCJ-02."""
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    out = frame.copy()

    def fn(xy):
        x, y = wgs_to_gcj(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out[out.geometry.name] = shapely.transform(frame.geometry.to_numpy(), fn)
    return out
