"""Where a case belongs and who gets it: the locator and automatic dispatch.

:class:`Locator` places a point on the district's unit grids (community, grid, grid
worker), flagging points just outside the boundary or on no grid; :func:`dispatch`
turns a category and a placement into a department, priority and working-time
deadline from the dispatch rules (``dispatch_rules.yml``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely

from layers.catalogue import get_layer
from layers.district import UTM, district_boundary
from layers.rules import load_rules
from layers.store import Store
from layers.worktime import add_working_time

__all__ = [
    "BOUNDARY_TOLERANCE_M",
    "SNAP_M",
    "Dispatch",
    "Locator",
    "Placement",
    "dispatch",
    "locator_for",
]

#: Snap distance (m) for a point just off the land's unit grids (coastline, rounding).
SNAP_M = 150.0
#: A point at most this far (m) outside the district boundary is taken (GPS error) and flagged.
BOUNDARY_TOLERANCE_M = 50.0


@dataclass(frozen=True)
class Placement:
    """Where a point falls: community, unit grid and grid worker (``None`` if unowned)."""

    community_code: str | None
    grid_code: str | None
    worker_id: str | None
    flag: str | None = None  # why the case goes to the territorial unit


class Locator:
    """Point-in-polygon against the district boundary and the unit grids of a store."""

    def __init__(self, store: Store):
        grids = store.read_frame(get_layer("grid_cells"))
        self.grids = grids.reset_index(drop=True)
        self.tree = shapely.STRtree(np.asarray(self.grids.geometry.values))
        self._grid_rows = list(
            zip(
                self.grids["community_code"].tolist(),
                self.grids["grid_code"].tolist(),
                self.grids["worker_id"].tolist(),
                strict=True,
            )
        )
        self._grid_geoms = np.asarray(self.grids.geometry.values)
        self.district = district_boundary()
        shapely.prepare(self.district)
        comm = store.read_frame(get_layer("communities"))
        self.communities = comm.reset_index(drop=True)
        self.comm_tree = shapely.STRtree(np.asarray(self.communities.geometry.values))
        self._comm_codes = self.communities["code"].tolist()
        self.utm = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
        self.district_utm = self._project(self.district)
        shapely.prepare(self.district_utm)

    def _project(self, geom):
        return shapely.transform(
            geom, lambda c: np.column_stack(self.utm.transform(c[:, 0], c[:, 1]))
        )

    def inside(self, point: shapely.Point) -> bool:
        """Whether ``point`` is in the district or within the boundary tolerance."""
        return self.outside_by(point) <= BOUNDARY_TOLERANCE_M

    def outside_by(self, point: shapely.Point) -> float:
        """Metres from ``point`` to the district (0 inside)."""
        if self.district.covers(point):
            return 0.0
        return float(self.district_utm.distance(self._project(point)))

    def _metres(self, a: shapely.Geometry, b: shapely.Geometry) -> float:
        return float(self._project(a).distance(self._project(b)))

    def place(self, point: shapely.Point) -> Placement:
        """Community, grid and worker of ``point`` (which must be inside the district)."""
        off = self.outside_by(point)
        if off > 0:
            c = self._comm_codes[int(self.comm_tree.nearest(point))]
            return Placement(
                c,
                None,
                None,
                f"ambiguous: {off:.0f} m outside the district boundary; nearest community {c}",
            )
        hits = sorted(int(h) for h in self.tree.query(point, predicate="intersects"))
        if len(hits) == 1:
            return Placement(*self._grid_rows[hits[0]])
        if len(hits) > 1:
            codes = ", ".join(sorted(self._grid_rows[h][1] for h in hits))
            return Placement(
                self._grid_rows[hits[0]][0],
                None,
                None,
                f"ambiguous: on the boundary of unit grids {codes}",
            )
        j = int(self.tree.nearest(point))
        if self._metres(point, self._grid_geoms[j]) <= SNAP_M:
            return Placement(*self._grid_rows[j])
        c = self._comm_codes[int(self.comm_tree.nearest(point))]
        return Placement(
            c, None, None, f"unowned: the location is on no unit grid; nearest community {c}"
        )


_LOCATORS: dict[str, Locator] = {}


def locator_for(store: Store) -> Locator:
    """One :class:`Locator` per store location (grids change rarely: restart to refresh)."""
    loc = _LOCATORS.get(store.url)
    if loc is None:
        loc = _LOCATORS[store.url] = Locator(store)
    return loc


@dataclass(frozen=True)
class Dispatch:
    """The outcome of automatic dispatch for one case."""

    department: str
    priority: str
    deadline: dt.datetime
    placement: Placement
    territorial: bool
    reason: str

    def properties(self) -> dict:
        return {
            "department": self.department,
            "priority": self.priority,
            "deadline": self.deadline,
            "territorial": self.territorial,
            "community_code": self.placement.community_code,
            "grid_code": self.placement.grid_code,
            "worker_id": self.placement.worker_id,
        }


def dispatch(
    category: str,
    placement: Placement,
    at: dt.datetime,
    *,
    department: str | None = None,
    priority: str | None = None,
) -> Dispatch:
    """Department, priority, deadline and territorial flag for a case.

    Parameters
    ----------
    category : str
        The case category; its rule (``dispatch_rules.yml``) gives the department,
        the time limit in working time and the default priority.
    placement : Placement
        From :meth:`Locator.place`; a flagged placement sends the case to the
        territorial unit.
    at : datetime
        The dispatch instant (aware); the deadline is this plus the time limit
        in working hours of the work calendar.
    department, priority : str, optional
        A dispatcher's explicit choice, overriding the rule.
    """
    rules = load_rules()
    rule = rules.get(category)
    limit_h = rule.limit_hours if rule else 16.0
    pri = priority or (rule.priority if rule else "normal")
    reasons = []
    if department:
        dep = department
        reasons.append(f"department {dep} chosen by the dispatcher")
    elif rule is None:
        dep = "territorial"
        reasons.append(f"unowned: no dispatch rule for category {category!r}")
    elif placement.flag:
        dep = "territorial"
        reasons.append(placement.flag)
    else:
        dep = rule.department
        reasons.append(
            f"rule {category} -> {dep}"
            + (" (unowned category: territorial unit)" if rule.territorial else "")
        )
    deadline = add_working_time(at, hours=limit_h)
    where = (
        f"community {placement.community_code}, grid {placement.grid_code}, "
        f"worker {placement.worker_id}"
    )
    return Dispatch(
        dep,
        pri,
        deadline,
        placement,
        dep == "territorial",
        "; ".join(reasons) + f"; {where}; limit {limit_h:g} working hours",
    )
