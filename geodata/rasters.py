"""Synthetic district DEM and flood-depth scenarios as Cloud-Optimized GeoTIFFs.

Everything here is **synthetic**: a plausible terrain for Tianya District, not a
survey. It is generated deterministically from a seed and from the sample
layers, so it agrees with them: the river valleys follow the sample rivers'
courses and the ground is lowest around the sample waterlogging-prone points.

The grid is EPSG:4326 (lon/lat), 0.0001° (about 10.6 m east-west and 11.1 m
north-south) over the district's bounding box, so pygeoapi's rasterio coverage
provider serves ``bbox`` and ``subset=Lat(..),Long(..)`` without reprojection.

Terrain (metres above mean sea level)
    The coastal plain rises about 2 m per km from the synthetic Sanya Bay
    coastline; hills grow from about 6 km inland to 400-700 m in the north;
    river valleys are carved along the sample rivers (the bed rises downstream to
    upstream with the distance from the sea); waterlogging-prone points sit in
    shallow bowls (0.6-1.2 m) in the low ground. The sea is bathymetry (< 0).

Flood scenarios (depth in metres, ``NaN`` over the sea)
    Storm surge at level ``L``: still-water level ``L`` minus a friction loss of
    0.4 m per km inland, only where the water can reach from the sea (connected
    to it), ``depth = max(0, level - DEM)``, smoothed.
    Heavy rain of ``R`` mm in 24 h: the rivers rise by a stage proportional to
    ``R`` and overflow into the ground connected to them, and rain ponds in
    local depressions of the low ground (the waterlogging points among them);
    the depth is the larger of the two, smoothed.
    Depths below 2 cm are set to 0.

Examples
--------
>>> sorted(SCENARIOS)
['rain_200mm', 'rain_400mm', 'surge_1_5m', 'surge_3m']
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.features
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from scipy import ndimage

from geodata.sample import DEFAULT_SEED
from layers.district import BOUNDS, DEM_FILE, SCENARIOS, Scenario, sea_polygon

#: Grid bounds (west, south, east, north) in degrees: the district's bounding box.
#: Pixel size in degrees.
RES = 0.0001
WIDTH = round((BOUNDS[2] - BOUNDS[0]) / RES)
HEIGHT = round((BOUNDS[3] - BOUNDS[1]) / RES)
TRANSFORM = from_origin(BOUNDS[0], BOUNDS[3], RES, RES)
CRS = "EPSG:4326"
#: Metres per pixel (east-west, north-south) at the grid's mean latitude.
PIXEL_M = (RES * 111_320 * np.cos(np.radians((BOUNDS[1] + BOUNDS[3]) / 2)), RES * 110_950)
#: Coarse-grid factor for the large-scale terrain (distance transforms, hills).
COARSE = 4
DEM_NODATA = -9999.0
SYNTHETIC = (
    "Synthetic data generated for demonstration (geodata/rasters.py); "
    "not a survey. 样例数据为程序生成的模拟数据，仅供演示。"
)


def default_dir(data: str | None = None, folder: str | None = None) -> str:
    """The raster folder: ``folder`` if given, else ``rasters/`` beside the GeoPackage ``data``.

    ``folder`` is the ``TIANYA_RASTERS`` setting of the shell (``Settings.rasters``). For a
    ``postgresql://`` store (or none) the default is ``geodata/rasters`` in the source tree.

    >>> default_dir("/srv/gis/tianya.gpkg"), default_dir("/srv/gis/tianya.gpkg", "/data/cogs")
    ('/srv/gis/rasters', '/data/cogs')
    """
    if folder:
        return os.path.abspath(folder)
    if data and "://" not in data:
        return os.path.join(os.path.dirname(os.path.abspath(data)), "rasters")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "rasters")


def raster_files(directory: str) -> dict[str, str]:
    """Paths of every raster in ``directory``: ``'dem'`` and one per scenario id."""
    out = {"dem": os.path.join(directory, DEM_FILE)}
    out.update({sid: os.path.join(directory, s.filename) for sid, s in SCENARIOS.items()})
    return out


def rasters_exist(directory: str) -> bool:
    """Whether every raster is present in ``directory``."""
    return all(os.path.exists(p) for p in raster_files(directory).values())


# --- Terrain ----------------------------------------------------------------------------------


def _rasterize(geoms, shape, transform, all_touched=False) -> np.ndarray:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return np.zeros(shape, bool)
    return rasterio.features.rasterize(
        ((g, 1) for g in geoms),
        out_shape=shape,
        transform=transform,
        all_touched=all_touched,
        dtype="uint8",
    ).astype(bool)


def _noise(rng, shape, scale_px: float, octaves: int = 4) -> np.ndarray:
    """Smooth fractal noise with zero mean and unit standard deviation."""
    out = np.zeros(shape)
    amp = 1.0
    for k in range(octaves):
        s = scale_px / 2**k
        f = max(1, int(s // 4))  # filter on a coarser grid, then interpolate
        small = (-(-shape[0] // f), -(-shape[1] // f))
        layer = ndimage.gaussian_filter(rng.standard_normal(small), s / f, mode="reflect")
        if f > 1:
            layer = ndimage.zoom(layer, f, order=1, grid_mode=True, mode="nearest")
        out += amp * layer[: shape[0], : shape[1]]
        amp *= 0.5
    return (out - out.mean()) / out.std()


def _up(a: np.ndarray) -> np.ndarray:
    """Bilinear upsampling from the coarse grid to the full grid."""
    a = np.asarray(a, np.float32)
    return ndimage.zoom(a, COARSE, order=1, grid_mode=True, mode="nearest")[:HEIGHT, :WIDTH]


@dataclass
class Terrain:
    """The DEM and what the flood scenarios need from its construction."""

    dem: np.ndarray
    sea: np.ndarray
    river: np.ndarray
    bed: np.ndarray  # river-bed elevation at the nearest river pixel
    river_m: np.ndarray  # distance from the nearest river (m)
    coast_m: np.ndarray  # distance from the sea (m)
    _basin: np.ndarray | None = None

    @property
    def basin(self) -> np.ndarray:
        """Depth below the mean ground of the ~430 m neighbourhood (m)."""
        if self._basin is None:
            self._basin = ndimage.uniform_filter(self.dem, 41) - self.dem
        return self._basin


def _geoms(frame, kind: str | None = None):
    if frame is None:
        return []
    if kind is not None:
        frame = frame[frame["facility_type"] == kind]
    return list(frame.to_crs(4326).geometry)


def build_terrain(rivers=None, flood_points=None, seed: int = DEFAULT_SEED) -> Terrain:
    """The synthetic DEM (float32 metres) on the module's grid.

    Parameters
    ----------
    rivers : GeoDataFrame, optional
        River segments (the sample ``rivers`` layer); valleys are carved along them.
    flood_points : GeoDataFrame, optional
        The ``flood_prevention`` layer; its waterlogging points sit in shallow bowls.
    seed : int
        Seed of the terrain noise.

    Returns
    -------
    Terrain
    """
    rng = np.random.default_rng([seed, 7])
    ch, cw = -(-HEIGHT // COARSE), -(-WIDTH // COARSE)
    ct = from_origin(BOUNDS[0], BOUNDS[3], RES * COARSE, RES * COARSE)
    px, py = PIXEL_M[0] * COARSE, PIXEL_M[1] * COARSE
    sea_c = _rasterize([sea_polygon()], (ch, cw), ct)
    coast = ndimage.distance_transform_edt(~sea_c, sampling=(py, px))
    offshore = ndimage.distance_transform_edt(sea_c, sampling=(py, px))
    # coastal plain + hills growing inland
    n1 = _noise(rng, (ch, cw), 60)
    n2 = _noise(rng, (ch, cw), 12)
    plain = 0.8 + 0.0021 * coast + 1.2 * np.clip(n2, -2, 2) * np.clip(coast / 3000, 0, 1)
    ramp = np.clip((coast - 6000) / 12000, 0, 1) ** 1.5
    hills = ramp * (420 + 180 * n1) * (1 + 0.25 * n2)
    knolls = np.clip(n1 - 1.2, 0, None) * 60 * np.clip(coast / 1500, 0, 1)  # coastal hills
    terrain = plain + np.clip(hills, 0, None) + knolls
    # river valleys: min(terrain, bed + walls) around the nearest river pixel
    river_c = _rasterize(_geoms(rivers), (ch, cw), ct, all_touched=True) & ~sea_c
    if river_c.any():
        d_r, (iy, ix) = ndimage.distance_transform_edt(
            ~river_c, sampling=(py, px), return_indices=True
        )
        # the bed lies below all ground within 1 km, so the floodplain never undercuts it
        low = ndimage.minimum_filter(terrain, size=2 * int(1000 / min(px, py)) + 1)
        bed_here = np.minimum(0.2 + 0.0012 * coast + 1.5e-7 * coast**2, low - 1.0)
        bed = bed_here[iy, ix]  # the bed at the nearest river pixel
        valley = bed + 0.005 * d_r + 2e-5 * d_r**2
        terrain = np.minimum(terrain, valley)
    else:
        bed = np.full((ch, cw), 1e4)
        d_r = np.full((ch, cw), 1e6)
    terrain = np.where(sea_c, -0.5 - 0.01 * offshore, terrain)
    # full resolution
    sea = _rasterize([sea_polygon()], (HEIGHT, WIDTH), TRANSFORM)
    river = _rasterize(_geoms(rivers), (HEIGHT, WIDTH), TRANSFORM, all_touched=True) & ~sea
    dem = _up(terrain)
    bed_f = _up(bed)
    coast_f = _up(coast)
    dem = dem + (0.25 * _up(_noise(rng, (ch, cw), 1.5, octaves=2))) * (~sea)
    dem = np.where(river, np.minimum(dem, bed_f - 1.0), dem)
    # waterlogging bowls
    bowls = np.zeros((HEIGHT, WIDTH), np.float32)
    for g in _geoms(flood_points, "waterlogging_point"):
        col, row = (g.x - BOUNDS[0]) / RES, (BOUNDS[3] - g.y) / RES
        r = int(rng.uniform(12, 20))
        depth = rng.uniform(0.6, 1.2)
        r0, r1 = max(0, int(row) - 2 * r), min(HEIGHT, int(row) + 2 * r + 1)
        c0, c1 = max(0, int(col) - 2 * r), min(WIDTH, int(col) + 2 * r + 1)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        bowl = depth * np.exp(-0.5 * (((yy + 0.5 - row) ** 2 + (xx + 0.5 - col) ** 2) / r**2))
        bowls[r0:r1, c0:c1] = np.maximum(bowls[r0:r1, c0:c1], bowl)
    dem = dem - bowls * (~sea)
    dem = ndimage.gaussian_filter(dem, 1.0)
    dem = np.round(np.where(sea, np.minimum(dem, -0.3), np.maximum(dem, 0.3)), 2).astype(np.float32)
    return Terrain(
        dem=dem,
        sea=sea,
        river=river,
        bed=bed_f.astype(np.float32),
        river_m=_up(d_r).astype(np.float32),
        coast_m=coast_f.astype(np.float32),
    )


# --- Flood scenarios --------------------------------------------------------------------------


def _connected(wet: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Cells of ``wet`` in a connected component that touches ``seeds``."""
    labels, _ = ndimage.label(wet | seeds)
    keep = np.unique(labels[seeds])
    keep = keep[keep > 0]
    return np.isin(labels, keep) & wet


def flood_depth(terrain: Terrain, scenario: Scenario) -> np.ndarray:
    """Flood depth (float32 metres, NaN over the sea) for ``scenario`` over ``terrain``."""
    dem, sea = terrain.dem, terrain.sea
    land = ~sea
    if scenario.kind == "surge":
        level = scenario.level - 0.0004 * terrain.coast_m
        wet = land & (dem < level)
        depth = np.where(_connected(wet, sea), level - dem, 0.0)
    elif scenario.kind == "rain":
        r = scenario.level / 1000.0  # metres of rain
        stage = terrain.bed + 6.0 * r + 0.5 * r / 0.2  # 1.7 m at 200 mm, 3.4 m at 400 mm
        wet = land & (dem < stage) & (terrain.river_m < 1000)  # the floodplain only
        overbank = np.where(_connected(wet, terrain.river), stage - dem, 0.0)
        basin = terrain.basin
        low = np.clip((25.0 - dem) / 15.0, 0, 1)  # urban low ground ponds, slopes drain
        pond = np.clip((basin - 0.15) * (r / 0.25), 0, 2.5 * r) * low
        depth = np.maximum(overbank, pond) * land
    else:
        raise ValueError(
            f"{scenario.kind!r} is not a valid scenario kind, must be one of: surge, rain"
        )
    depth = ndimage.gaussian_filter(np.clip(depth, 0, None).astype(np.float32), 1.0)
    depth[depth < 0.02] = 0.0
    return np.where(sea, np.nan, depth).astype(np.float32)


# --- Writing ----------------------------------------------------------------------------------


def write_cog(
    path: str,
    array: np.ndarray,
    *,
    nodata: float,
    tags: dict,
    band: dict,
    resampling: str = "average",
) -> str:
    """Write one float32 band as a Cloud-Optimized GeoTIFF (GDAL's COG driver).

    Tiles of 512 px, DEFLATE with the floating-point predictor, internal
    overviews, and the metadata in ``tags`` (dataset) and ``band`` (band 1:
    ``description``, ``units`` and other tags).
    """
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "width": WIDTH,
        "height": HEIGHT,
        "crs": CRS,
        "transform": TRANSFORM,
        "nodata": nodata,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    band = dict(band)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(array.astype(np.float32), 1)
            ds.update_tags(**tags)
            ds.set_band_description(1, band.pop("description", ""))
            ds.set_band_unit(1, band.pop("units", ""))
            ds.update_tags(1, **band)
        with mem.open() as src:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=512,
                OVERVIEW_RESAMPLING=resampling.upper(),
                BIGTIFF="IF_SAFER",
            )
    os.replace(tmp, path)
    return path


def write_rasters(
    directory: str,
    rivers=None,
    flood_points=None,
    seed: int = DEFAULT_SEED,
    data: dict | None = None,
) -> dict[str, str]:
    """Generate the DEM and every flood scenario into ``directory`` as COGs.

    Parameters
    ----------
    directory : str
        Output folder (created if missing).
    rivers, flood_points : GeoDataFrame, optional
        The sample ``rivers`` and ``flood_prevention`` layers the terrain agrees with;
        taken from ``data`` or generated from ``seed`` when not given.
    seed : int
        Seed of the sample data and of the terrain noise.
    data : dict of GeoDataFrame, optional
        Already generated sample layers.

    Returns
    -------
    dict of str to str
        Path per raster (``'dem'`` and each scenario id).
    """
    if rivers is None or flood_points is None:
        if data is None:
            from geodata.sample import generate

            data = generate(seed, n_incidents=1)
        rivers = data["rivers"] if rivers is None else rivers
        flood_points = data["flood_prevention"] if flood_points is None else flood_points
    terrain = build_terrain(rivers, flood_points, seed)
    paths = raster_files(directory)
    common = {
        "SYNTHETIC": "yes",
        "NOTE": SYNTHETIC,
        "SEED": str(seed),
        "AREA": "Tianya District, Sanya, Hainan (三亚市天涯区)",
    }
    write_cog(
        paths["dem"],
        terrain.dem,
        nodata=DEM_NODATA,
        resampling="average",
        tags={
            **common,
            "TITLE": "Synthetic digital elevation model",
            "TITLE_ZH": "模拟数字高程模型",
            "VERTICAL_DATUM": "mean sea level (synthetic)",
        },
        band={"description": "elevation", "units": "m"},
    )
    for sid, s in SCENARIOS.items():
        write_cog(
            paths[sid],
            flood_depth(terrain, s),
            nodata=float("nan"),
            resampling="average",
            tags={
                **common,
                "TITLE": s.en,
                "TITLE_ZH": s.zh,
                "SCENARIO": sid,
                "SCENARIO_KIND": s.kind,
                "SCENARIO_LEVEL": str(s.level),
                "SCENARIO_UNITS": "m" if s.kind == "surge" else "mm/24h",
            },
            band={"description": "flood_depth", "units": "m"},
        )
    return paths


def write_rasters_from_store(
    data: str, directory: str | None = None, seed: int = DEFAULT_SEED
) -> dict[str, str]:
    """Generate the rasters for the store at ``data`` (its rivers and waterlogging points).

    ``directory`` defaults to :func:`default_dir` of ``data``.
    """
    from layers.catalogue import LAYERS
    from layers.stores import open_store

    store = open_store(data)
    try:
        rivers = store.read_frame(LAYERS["rivers"])
        points = store.read_frame(LAYERS["flood_prevention"])
    finally:
        store.close()
    return write_rasters(directory or default_dir(data), rivers, points, seed=seed)
