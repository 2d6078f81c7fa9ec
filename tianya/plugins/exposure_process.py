"""OGC API - Processes adapter for flood exposure (:mod:`analytics.exposure`).

Process ``flood-exposure``: for one flood scenario of :mod:`geodata.rasters`, the
buildings and residents per depth class in every community, the people to move
against shelter capacity (each building assigned to the nearest shelter with
room), and the waterlogging points, pumping stations and manhole covers at risk.

It reads the public layers ``building_population``, ``communities``,
``flood_prevention`` and ``urban_fixtures`` through the store (the ``data`` setting)
and the scenario raster from the ``rasters`` setting (default: ``rasters/`` beside the
GeoPackage). The answer is aggregated (per community and per shelter) and holds
no personal field, so every role may run it.

Inputs: ``scenario`` (required; one of :data:`geodata.rasters.SCENARIOS`),
``evacuate_depth`` (m, default 0.5), ``risk_depth`` (m, default 0.15) and
``community`` (a community code: restrict the tables to it). Output: a JSON
object with ``summary``, ``communities``, ``shelters`` and ``points_at_risk``.
"""

from __future__ import annotations

import os

from pygeoapi.process.base import BaseProcessor

from geodata.rasters import SCENARIOS, default_dir, raster_files
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter, NotFound, choices
from tianya import settings as tianya_settings
from tianya.plugins.options import Option

__all__ = ["PROCESS_ID", "ExposureProcessor", "process_resource"]

PROCESS_ID = "flood-exposure"
OPTIONS = (
    Option(
        "scenario",
        "string",
        "Flood scenario (storm surge level or 24-hour rainfall).",
        choices=tuple(SCENARIOS),
        required=True,
    ),
    Option(
        "evacuate_depth",
        "number",
        "Buildings at least this deep (m, deepest point of the footprint) are evacuated.",
        0.5,
        minimum=0.05,
        maximum=10.0,
    ),
    Option(
        "risk_depth",
        "number",
        "Points and shelter sites at least this deep (m) are at risk / not usable.",
        0.15,
        minimum=0.01,
        maximum=10.0,
    ),
    Option("community", "string", "Community code: restrict the tables to this community."),
)
SHELTER_COLUMNS = [
    "facility_code",
    "name",
    "community_code",
    "capacity",
    "depth",
    "usable",
    "assigned",
    "remaining",
]


def _records(frame) -> list[dict]:
    df = frame.drop(columns="geometry", errors="ignore")
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]


class ExposureProcessor(BaseProcessor):
    """pygeoapi processor for :func:`analytics.exposure.flood_exposure`."""

    ID = PROCESS_ID

    def __init__(self, processor_def: dict):
        super().__init__(processor_def, self.metadata_dict())

    @classmethod
    def metadata_dict(cls) -> dict:
        """The OGC API - Processes description."""
        return {
            "version": "1.0.0",
            "id": PROCESS_ID,
            "title": {"en": "Flood exposure", "zh": "洪涝风险暴露分析"},
            "description": {
                "en": "Buildings and residents by flood-depth class per community for a flood "
                "scenario, people to move versus shelter capacity (nearest shelter with "
                "room, greedy by distance), and waterlogging points, pumping stations "
                "and manhole covers at risk. The terrain and scenarios are synthetic.",
                "zh": "按社区统计某一洪涝情景下各淹没水深等级的楼宇与常住人口、"
                "需转移人数与避险安置点容量（按距离贪心分配至最近且有余量的安置点），"
                "以及受威胁的易涝点、泵站和井盖。地形与情景为模拟数据。",
            },
            "jobControlOptions": ["sync-execute", "async-execute"],
            "outputTransmission": ["value"],
            "keywords": ["flood", "exposure", "shelters", "三防", "Tianya"],
            "links": [],
            "inputs": {o.name: o.describe() for o in OPTIONS},
            "outputs": {
                "result": {
                    "title": "result",
                    "description": "Summary, per-community "
                    "table, shelter loads and points at risk.",
                    "schema": {"type": "object", "contentMediaType": "application/json"},
                }
            },
            "example": {"inputs": {"scenario": "surge_3m"}},
        }

    def check_inputs(self, data: dict) -> dict:
        """Checked inputs with defaults; :class:`InvalidParameter` lists the valid choices."""
        if not isinstance(data, dict):
            raise InvalidParameter("inputs must be a JSON object")
        names = [o.name for o in OPTIONS]
        for name in data:
            if name not in names:
                raise InvalidParameter(choices(name, names, f"input of process {PROCESS_ID!r}"))
        return {o.name: o.check(data.get(o.name)) for o in OPTIONS}

    def restricted(self, opts: dict) -> bool:
        """Never: the inputs and the answer hold no personal data."""
        return False

    def execute(self, data: dict, outputs=None):
        opts = self.check_inputs(data)
        return "application/json", run_exposure(**opts)

    def __repr__(self):
        return f"<ExposureProcessor> {PROCESS_ID}"


def run_exposure(
    scenario: str,
    evacuate_depth: float = 0.5,
    risk_depth: float = 0.15,
    community: str | None = None,
    data: str | None = None,
    rasters: str | None = None,
) -> dict:
    """The process's answer for the store ``data`` and raster folder ``rasters``.

    Defaults: the ``data`` and ``rasters`` settings (:func:`tianya.settings.current`; without
    ``rasters``, :func:`default_dir` of the data).
    """
    from analytics.exposure import flood_exposure
    from layers.stores import open_store

    conf = tianya_settings.current()
    data = data or conf.store_location()
    path = raster_files(rasters or conf.rasters or default_dir(data))[scenario]
    if not os.path.exists(path):
        raise NotFound(f"the raster of scenario {scenario!r} is missing: run `tianya rasters`")
    store = open_store(data)
    try:
        frames = {
            k: store.read_frame(LAYERS[k])
            for k in ("building_population", "communities", "flood_prevention", "urban_fixtures")
        }
    finally:
        store.close()
    if community is not None:
        codes = frames["communities"]["code"].tolist()
        if community not in codes:
            raise InvalidParameter(choices(community, codes, "community code"))
    e = flood_exposure(
        frames["building_population"],
        path,
        communities=frames["communities"],
        flood_points=frames["flood_prevention"],
        fixtures=frames["urban_fixtures"],
        evacuate_depth=evacuate_depth,
        risk_depth=risk_depth,
    )
    table, shelters, pts = e.communities, e.shelters[SHELTER_COLUMNS], e.points
    if community is not None:
        table = table[table["community_code"] == community]
        shelters = shelters[shelters["community_code"] == community]
        pts = pts[pts["community_code"] == community]
    risk = (
        pts[pts["at_risk"]]
        .groupby(["community_code", "kind"])
        .size()
        .unstack(fill_value=0)
        .reset_index()
    )
    scen = SCENARIOS[scenario]
    return {
        "scenario": {
            "id": scen.id,
            "kind": scen.kind,
            "level": scen.level,
            "title": {"en": scen.en, "zh": scen.zh},
            "synthetic": True,
        },
        "summary": e.summary,
        "communities": _records(table),
        "shelters": _records(shelters),
        "points_at_risk": _records(risk),
    }


def process_resource() -> dict[str, dict]:
    """The pygeoapi ``resources`` entry (``type: process``) for ``flood-exposure``."""
    return {
        PROCESS_ID: {
            "type": "process",
            "processor": {"name": f"{ExposureProcessor.__module__}.{ExposureProcessor.__name__}"},
        }
    }
