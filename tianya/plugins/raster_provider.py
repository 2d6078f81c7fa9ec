"""The coverage provider: pygeoapi's rasterio provider with band metadata and a size limit.

pygeoapi's :class:`~pygeoapi.provider.rasterio_.RasterioProvider` only reads
parameter names and units from GRIB files; for our GeoTIFFs it names the band
``null``. :class:`TianyaRasterProvider` takes them from the band description and
unit instead (``elevation``/``flood_depth``, ``m``), and refuses a CoverageJSON
answer of more than :data:`MAX_JSON_CELLS` cells with 413 (ask for a ``bbox``
or ``subset``, or the native GeoTIFF with ``f=GTiff``) so one request cannot
make a worker serialise the whole 16-million-cell grid as JSON. Subsetting is
pygeoapi's own (``rasterio.mask`` with ``crop=True``): the answer holds the
pixels whose centres fall inside the requested box, in the window that covers it.
A subset on one axis only (which the parent silently ignores) is completed with
the full extent of the other axis; a ``*`` bound is the grid's own bound on that axis, and a
single coordinate (a slice) selects the one row or column of cells holding it.

Each answer records its extent in :data:`ANSWER` (``bbox``: the bounds of the cells
returned), which :mod:`tianya.compat` sends as ``Content-Bbox``; an area holding no cell of
the grid records ``empty`` (answered 204, OGC API Coverages /req/coverage-subset/definition C)
before the provider raises.

Scaling (OGC API Coverages' ``scale-size``, which pygeoapi 0.24 ignores, and ``scaleSize``,
the name GDAL's OGCAPI driver sends): with :data:`SCALE_SIZE` set for the request
(:mod:`tianya.compat` sets it from the query), the answer is exactly the asked number of
cells over exactly the requested box, cells outside the grid being no-data; a cell takes
the value of the grid cell under its centre (so a box on the grid's own lines at its own
resolution gives the stored values), or the mean of the cells it covers when coarser.
:meth:`TianyaRasterProvider.describe` gives the ``domainSet`` and ``rangeType`` a client
needs to size the grid and name the axes of its requests.
"""

from __future__ import annotations

import math
import re
from contextvars import ContextVar
from functools import cached_property

import numpy as np
import rasterio
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderRequestEntityTooLargeError
from pygeoapi.provider.rasterio_ import RasterioProvider
from rasterio.enums import Resampling
from rasterio.features import geometry_window
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import reproject

#: Largest CoverageJSON answer, in cells.
MAX_JSON_CELLS = 1_000_000
#: Largest scaled answer (``scale-size``), in cells: the whole grid at its own resolution.
MAX_SCALED_CELLS = 4096 * 4096
#: The request's ``scale-size`` (or ``scaleSize``) text, set by :mod:`tianya.compat` around
#: pygeoapi's coverage handler (which passes the provider no other parameters); ``None``:
#: no scaling.
SCALE_SIZE: ContextVar[str | None] = ContextVar("scale_size", default=None)
#: CRS84, the axis order (longitude, latitude) of our subsets' ``Long`` and ``Lat``.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: The request's ``range-subset`` text (OGC API Coverages, coverage-rangesubset), set by
#: :mod:`tianya.compat` as :data:`SCALE_SIZE`; ``None``: every band, or ``properties``.
RANGE_SUBSET: ContextVar[str | None] = ContextVar("range_subset", default=None)
#: What the answer holds, for the response headers: set to a fresh dict by :mod:`tianya.compat`
#: around pygeoapi's coverage handler; the provider fills ``bbox`` (west, south, east, north
#: of the cells answered, in CRS84) or ``empty`` (the request holds no cell).
ANSWER: ContextVar[dict | None] = ContextVar("coverage_answer", default=None)
_SCALE_ITEM = re.compile(r"^\s*([A-Za-z_][\w-]*)\(\s*(\d+)\s*\)\s*$")


def range_subset_bands(text: str, names: list[str]) -> list[int]:
    """The band numbers (1-based, in answer order) a ``range-subset`` value selects.

    Each item is a band name (a ``rangeType`` field's name), a band index (0 to the number
    of bands - 1; a name wins over an index that spells the same) or ``*`` first or last:
    every other band, before or after those listed (OGC API Coverages
    /req/coverage-rangesubset/definition and success).

    Raises
    ------
    ProviderInvalidQueryError
        An empty item, an unknown name, an index out of range, or ``*`` elsewhere.

    Examples
    --------
    >>> range_subset_bands("b,0", ["a", "b", "c"])
    [2, 1]
    >>> range_subset_bands("*,a", ["a", "b", "c"]), range_subset_bands("c,*", ["a", "b", "c"])
    ([2, 3, 1], [3, 1, 2])
    >>> range_subset_bands("*", ["a"])
    [1]
    """
    items = [t.strip() for t in text.split(",")]
    lead = items[0] == "*"
    trail = len(items) > 1 and items[-1] == "*"
    if lead and trail:
        raise ProviderInvalidQueryError(
            user_msg=f"range-subset {text!r}: * stands first or last, not both"
        )
    listed = items[int(lead) : len(items) - int(trail)]
    chosen: list[int] = []
    for item in listed:
        if item in names:
            chosen.append(names.index(item) + 1)
        elif item.isdigit() and int(item) < len(names):
            chosen.append(int(item) + 1)
        else:
            raise ProviderInvalidQueryError(
                user_msg=f"range-subset {text!r}: {item!r} is no band; the bands are "
                f"{', '.join(names)} (or their indexes 0-{len(names) - 1}, and * first or last)"
            )
    rest = [b for b in range(1, len(names) + 1) if b not in chosen]
    return (rest if lead else []) + chosen + (rest if trail else [])


def parse_scale_size(text: str, axes: tuple[str, str]) -> tuple[int, int]:
    """The (width, height) a ``scale-size`` value asks for, ``axes`` being (x, y) names.

    Raises
    ------
    ProviderInvalidQueryError
        Naming the problem: not ``axis(cells)`` items, an unknown or repeated axis, a size
        below 1, or not both axes.

    Examples
    --------
    >>> parse_scale_size("Long(256),Lat(128)", ("Long", "Lat"))
    (256, 128)
    >>> parse_scale_size("Lat(10), Long(20)", ("Long", "Lat"))
    (20, 10)
    """
    sizes: dict[str, int] = {}
    for item in text.split(","):
        m = _SCALE_ITEM.match(item)
        if m is None or m.group(1) not in axes or m.group(1) in sizes or int(m.group(2)) < 1:
            raise ProviderInvalidQueryError(
                user_msg=f"scale-size must be {axes[0]}(cells),{axes[1]}(cells) with whole "
                f"numbers of cells of at least 1, got {text!r}"
            )
        sizes[m.group(1)] = int(m.group(2))
    if set(sizes) != set(axes):
        raise ProviderInvalidQueryError(
            user_msg=f"scale-size must give both axes, {axes[0]} and {axes[1]}, got {text!r}"
        )
    return sizes[axes[0]], sizes[axes[1]]


class TianyaRasterProvider(RasterioProvider):
    """Rasterio coverage provider naming bands from their description and unit.

    It reads no private attribute of its parent: it opens the dataset itself
    (:attr:`dataset`) and names the axes as the parent does (:attr:`axis_labels`). It
    fills ``_fields``, which pygeoapi's :class:`~pygeoapi.provider.base.BaseProvider`
    defines and reads (``fields``, the collection description): :mod:`tianya.compat`
    checks that it still does.
    """

    @cached_property
    def dataset(self):
        """Our own handle on the raster (``self.data``), opened on first use."""
        return rasterio.open(self.data)

    @cached_property
    def axis_labels(self) -> tuple[str, str]:
        """The x and y axis names of subsets: ``x``/``y`` in a projected CRS, else
        ``Long``/``Lat`` (pygeoapi 0.24's names, which its ``query`` looks up)."""
        crs = self.dataset.crs
        return ("x", "y") if crs is not None and crs.is_projected else ("Long", "Lat")

    def _band(self, i: int) -> tuple[str, str | None]:
        name = self.dataset.descriptions[i - 1] or f"band{i}"
        unit = self.dataset.units[i - 1] or None
        return name, unit

    def get_fields(self):
        if not self._fields:
            ds = self.dataset
            for i, dtype in zip(ds.indexes, ds.dtypes, strict=True):
                name, unit = self._band(i)
                self._fields[str(i)] = {
                    "title": name,
                    "type": "number" if dtype.startswith("float") else "integer",
                    "_meta": ds.tags(i),
                }
                if unit:
                    self._fields[str(i)]["x-ogc-unit"] = unit
        return self._fields

    def query(
        self,
        properties=None,
        subsets=None,
        bbox=None,
        bbox_crs=4326,
        datetime_=None,
        format_="json",
        **kwargs,
    ):
        subsets = self._subsets(subsets or {})
        area = self._area(subsets, bbox or [])
        x, y = self.axis_labels
        if x in subsets:  # the parent crops to the area on the grid
            subsets[x], subsets[y] = [area[0], area[2]], [area[1], area[3]]
        elif bbox:
            bbox = list(area)
        wanted = RANGE_SUBSET.get()
        if wanted is not None:
            if properties:
                raise ProviderInvalidQueryError(
                    user_msg="range-subset and properties both select bands: send one of them"
                )
            names = [self._band(i)[0] for i in self.dataset.indexes]
            properties = [str(b) for b in range_subset_bands(wanted, names)]
        scale = kwargs.pop("scale_size", None) or SCALE_SIZE.get()
        if scale:
            size = parse_scale_size(scale, self.axis_labels)
            self._record(bbox=area)
            return self._scaled(area, size, properties or [], format_)
        self._record(bbox=self._answered(area))
        if format_ != self.native_format:
            cells = self._cells(area)
            if cells > MAX_JSON_CELLS:
                raise ProviderRequestEntityTooLargeError(
                    f"a CoverageJSON answer of {cells:,} cells is over the limit of "
                    f"{MAX_JSON_CELLS:,}: ask for a smaller bbox or subset, or for the native "
                    "GeoTIFF with f=GTiff"
                )
        return super().query(
            properties=properties or [],
            subsets=subsets or {},
            bbox=bbox or [],
            bbox_crs=bbox_crs,
            datetime_=datetime_,
            format_=format_,
            **kwargs,
        )

    def _subsets(self, subsets: dict) -> dict:
        """``subsets`` with both axes, ``*`` bounds and slices resolved to numbers."""
        subsets = dict(subsets)
        x, y = self.axis_labels
        w, s, e, n = self.dataset.bounds
        rx, ry = self.dataset.res
        # the parent ignores a one-axis subset: complete it
        if (x in subsets) != (y in subsets):
            subsets.setdefault(x, [w, e])
            subsets.setdefault(y, [s, n])
        for axis, (lo, hi), half in ((x, (w, e), rx / 2), (y, (s, n), ry / 2)):
            if axis not in subsets:
                continue
            values = list(subsets[axis])
            if len(values) == 1 and values[0] != "*":  # a slice: the cells holding the point
                try:
                    v = float(values[0])
                except (TypeError, ValueError):
                    raise ProviderInvalidQueryError(
                        user_msg=f"subset {axis}({values[0]}) is not a number"
                    ) from None
                values = [v - half * 0.999, v + half * 0.999]
            if len(values) == 2:
                values = [
                    lo if values[0] == "*" else values[0],
                    hi if values[1] == "*" else values[1],
                ]
            subsets[axis] = values
        return subsets

    @staticmethod
    def _record(**facts) -> None:
        answer = ANSWER.get()
        if answer is not None:
            answer.update(facts)

    def _answered(self, area) -> tuple[float, float, float, float]:
        """The bounds of the cells the parent's crop returns for ``area``: the window of
        ``rasterio.mask`` (``geometry_window`` of the box), or the whole grid."""
        ds = self.dataset
        w, s, e, n = ds.bounds
        # the part of the area on the grid (a box beyond it, up to 1e308, is a NaN window)
        qw, qs, qe, qn = max(area[0], w), max(area[1], s), min(area[2], e), min(area[3], n)
        if (qw, qs, qe, qn) == (w, s, e, n):
            return w, s, e, n
        ring = [[qw, qs], [qw, qn], [qe, qn], [qe, qs], [qw, qs]]
        box = {"type": "Polygon", "coordinates": [ring]}
        left, bottom, right, top = ds.window_bounds(geometry_window(ds, [box]))
        return left, bottom, right, top

    def _area(self, subsets: dict, bbox: list) -> tuple[float, float, float, float]:
        """The requested (west, south, east, north): the grid's bounds narrowed by the request.

        A box or subset that misses the grid is a 400 (rasterio's mask raises instead).
        """
        w, s, e, n = self.dataset.bounds
        x, y = self.axis_labels
        qw, qs, qe, qn = w, s, e, n
        if bbox and (x in subsets or y in subsets):
            raise ProviderInvalidQueryError(
                user_msg=f"bbox and a subset on {x}/{y} are exclusive: send one of them"
            )
        try:
            if bbox:
                qw, qs, qe, qn = (float(v) for v in bbox[:4])
            if x in subsets:
                qw, qe = (float(v) for v in subsets[x][:2])
            if y in subsets:
                qs, qn = (float(v) for v in subsets[y][:2])
        except (TypeError, ValueError):
            raise ProviderInvalidQueryError(
                user_msg="bbox and subset bounds must be numbers"
            ) from None
        if not all(math.isfinite(v) for v in (qw, qs, qe, qn)):  # float() takes inf and nan
            raise ProviderInvalidQueryError(
                user_msg=f"bbox and subset bounds must be finite numbers, got ({qw:g}, {qs:g}, "
                f"{qe:g}, {qn:g})"
            )
        rx, ry = self.dataset.res
        # the answer holds the pixels whose centres fall inside: the box must reach one
        if (
            qe < w + rx / 2
            or qw > e - rx / 2
            or qn < s + ry / 2
            or qs > n - ry / 2
            or qe - qw < 0
            or qn - qs < 0
        ):
            if qe - qw >= 0 and qn - qs >= 0:  # a valid area beside the grid: no content
                self._record(empty=True)
            raise ProviderInvalidQueryError(
                user_msg=f"the requested area ({qw:g}, {qs:g}, {qe:g}, {qn:g}) holds no cell of "
                f"this coverage, whose extent is ({w:g}, {s:g}, {e:g}, {n:g}) in CRS84"
            )
        # the part on the grid: the crop (rasterio's mask) of a box far beyond it is NaN
        return max(qw, w), max(qs, s), min(qe, e), min(qn, n)

    def describe(self) -> dict:
        """The ``domainSet`` and ``rangeType`` of the coverage (OGC API Coverages, CIS 1.1 JSON).

        The grid's axes (``Long``/``Lat`` in CRS84, or ``x``/``y``), bounds and resolution,
        and one field per band with its type, unit and no-data value: what GDAL's OGCAPI
        driver reads from a collection document to open it as a raster.
        """
        ds = self.dataset
        (w, s, e, n), (rx, ry) = ds.bounds, ds.res
        x, y = self.axis_labels
        srs = CRS84 if x == "Long" else (ds.crs.to_string() if ds.crs else None)
        unit = "deg" if x == "Long" else "m"
        axes = [
            {"type": "RegularAxis", "axisLabel": x, "lowerBound": w, "upperBound": e,
             "uomLabel": unit, "resolution": rx},
            {"type": "RegularAxis", "axisLabel": y, "lowerBound": s, "upperBound": n,
             "uomLabel": unit, "resolution": ry},
        ]  # fmt: skip
        limits = [
            {"type": "IndexAxis", "axisLabel": "i", "lowerBound": 0, "upperBound": ds.width - 1},
            {"type": "IndexAxis", "axisLabel": "j", "lowerBound": 0, "upperBound": ds.height - 1},
        ]
        fields = []
        for i, dtype in zip(ds.indexes, ds.dtypes, strict=True):
            name, band_unit = self._band(i)
            field = {
                "type": "Quantity",
                "name": name,
                "definition": f"http://www.opengis.net/def/dataType/OGC/0/{dtype}",
            }
            if band_unit:
                field["uom"] = {"type": "UnitReference", "code": band_unit}
            if ds.nodata is not None:
                nil = "NaN" if math.isnan(ds.nodata) else f"{ds.nodata:g}"
                field["nilValues"] = [{"reason": "no data", "value": nil}]
            fields.append(field)
        return {
            "domainSet": {
                "type": "DomainSet",
                "generalGrid": {
                    "type": "GeneralGridCoverage",
                    "srsName": srs,
                    "axisLabels": [x, y],
                    "axis": axes,
                    "gridLimits": {
                        "type": "GridLimits",
                        "srsName": "http://www.opengis.net/def/crs/OGC/0/Index2D",
                        "axisLabels": ["i", "j"],
                        "axis": limits,
                    },
                },
            },
            "rangeType": {"type": "DataRecord", "field": fields},
        }

    def _scaled(self, area, size: tuple[int, int], properties: list, format_: str):
        """``size`` (width, height) cells over exactly ``area`` (see the module docstring)."""
        width, height = size
        if width * height > MAX_SCALED_CELLS:
            raise ProviderRequestEntityTooLargeError(
                f"a scaled answer of {width} x {height} cells is over the limit of "
                f"{MAX_SCALED_CELLS:,} cells: ask for a smaller scale-size"
            )
        if format_ != self.native_format and width * height > MAX_JSON_CELLS:
            raise ProviderRequestEntityTooLargeError(
                f"a CoverageJSON answer of {width * height:,} cells is over the limit of "
                f"{MAX_JSON_CELLS:,}: ask for a smaller scale-size, or for f=GTiff"
            )
        ds = self.dataset
        try:
            bands = [int(b) for b in properties] or list(ds.indexes)
        except ValueError:
            bands = []
        if not bands or not set(bands) <= set(ds.indexes):
            raise ProviderInvalidQueryError(
                user_msg=f"properties must be band numbers of {list(ds.indexes)}"
            )
        w, s, e, n = area
        transform = from_bounds(w, s, e, n, width, height)
        # coarser than the grid: the mean of the covered cells, from the nearest overview
        coarser = min(abs(transform.a) / ds.res[0], abs(transform.e) / ds.res[1])
        level = max((i for i, f in enumerate(ds.overviews(1)) if f <= coarser), default=None)
        nodata = ds.nodata if ds.nodata is not None else np.nan
        out = np.full((len(bands), height, width), nodata, dtype=ds.dtypes[0])
        opened = ds if level is None else rasterio.open(self.data, overview_level=level)
        try:
            for k, band in enumerate(bands):
                reproject(
                    source=rasterio.band(opened, band),
                    destination=out[k],
                    src_nodata=ds.nodata,
                    dst_transform=transform,
                    dst_crs=ds.crs,
                    dst_nodata=nodata,
                    resampling=Resampling.average if coarser > 1.001 else Resampling.nearest,
                )
        finally:
            if opened is not ds:
                opened.close()
        if format_ != self.native_format:
            missing = np.isnan(out) if math.isnan(nodata) else out == nodata
            meta = {"bbox": [w, s, e, n], "width": width, "height": height, "bands": bands}
            return self.gen_covjson(meta, np.ma.masked_array(out, mask=missing))
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": len(bands),
            "dtype": ds.dtypes[0],
            "crs": ds.crs,
            "transform": transform,
            "nodata": ds.nodata,
        }
        with MemoryFile() as memfile:
            with memfile.open(**profile) as dst:
                dst.write(out)
                for k, band in enumerate(bands, start=1):
                    name, unit = self._band(band)
                    dst.set_band_description(k, name)
                    if unit:
                        dst.set_band_unit(k, unit)
            return memfile.read()

    def _cells(self, area: tuple[float, float, float, float]) -> int:
        """Cells an area covers (an upper bound), within the grid's bounds."""
        gw, gs, ge, gn = self.dataset.bounds
        w, s, e, n = max(area[0], gw), max(area[1], gs), min(area[2], ge), min(area[3], gn)
        rx, ry = self.dataset.res
        return int((abs(e - w) / rx + 2) * (abs(n - s) / ry + 2))

    def gen_covjson(self, metadata, data):
        cj = super().gen_covjson(metadata, data)
        bands = metadata.get("bands") or list(self.dataset.indexes)
        # the parent keys every band by the same None id: rebuild one entry per band
        template = next(iter(cj["parameters"].values()), None)
        values = next(iter(cj["ranges"].values()), None)
        if template is None or values is None:
            return cj
        cj["parameters"], cj["ranges"] = {}, {}
        for i in bands:
            name, unit = self._band(int(i))
            cj["parameters"][name] = {
                "type": "Parameter",
                "description": {"en": name},
                "unit": {"symbol": unit},
                "observedProperty": {"id": name, "label": {"en": name}},
            }
            cj["ranges"][name] = values
        return cj
