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
the full extent of the other axis.
"""

from __future__ import annotations

import math
from functools import cached_property

import rasterio
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderRequestEntityTooLargeError
from pygeoapi.provider.rasterio_ import RasterioProvider

#: Largest CoverageJSON answer, in cells.
MAX_JSON_CELLS = 1_000_000


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
        subsets = dict(subsets or {})
        x, y = self.axis_labels
        if (x in subsets) != (y in subsets):  # the parent ignores a one-axis subset: complete it
            w, s, e, n = self.dataset.bounds
            subsets.setdefault(x, [w, e])
            subsets.setdefault(y, [s, n])
        area = self._area(subsets, bbox or [])
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
            raise ProviderInvalidQueryError(
                user_msg=f"the requested area ({qw:g}, {qs:g}, {qe:g}, {qn:g}) holds no cell of "
                f"this coverage, whose extent is ({w:g}, {s:g}, {e:g}, {n:g}) in CRS84"
            )
        return qw, qs, qe, qn

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
