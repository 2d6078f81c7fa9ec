"""Service coverage and relief follow-up, by community, without personal fields.

Service coverage
    The share of residents (``resident_pop`` of the ``building_population`` layer)
    whose building lies within ``distance_m`` of a facility: party-mass service
    centres (``party_building`` features with ``org_type = 'service_center'``,
    default 1,000 m, about a 15-minute walk) or shelters (``flood_prevention``
    features with ``facility_type = 'shelter'``, default 2,000 m). Distance is the
    straight line from the footprint's centroid to the nearest facility in UTM 49N
    (EPSG:32649), not a walking route: read the shares as upper bounds.
Relief follow-up
    Poverty-relief households (``poverty_relief``, a non-public layer) per community:
    how many are under relapse monitoring, how many have not been visited within
    ``max_days`` of ``as_of`` (never visited counts as not visited), and how many
    monitored households have no responsible cadre. Only counts leave this module:
    no household code, name, phone or cadre appears in a result.

Examples
--------
>>> import geopandas as gpd, shapely
>>> b = gpd.GeoDataFrame({"community_code": ["a", "a"], "resident_pop": [10, 30]},
...                      geometry=[shapely.Point(0, 0), shapely.Point(5000, 0)], crs=32649)
>>> f = gpd.GeoDataFrame(geometry=[shapely.Point(100, 0)], crs=32649)
>>> row = service_coverage(b, f, 1000).iloc[0]
>>> int(row["people"]), int(row["people_within"]), float(row["share_within"])
(40, 10, 0.25)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from analytics.errors import AnalyticsError, check_positive
from layers.district import UTM

__all__ = [
    "nearest_distance",
    "party_service_coverage",
    "relief_followup",
    "service_coverage",
    "shelter_coverage",
    "with_communities",
]


def _xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if gdf.crs is None:
        raise AnalyticsError("the features have no CRS; set one (EPSG:4326 for the layers)")
    return shapely.get_coordinates(shapely.centroid(gdf.to_crs(UTM).geometry.to_numpy()))


def nearest_distance(features: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> np.ndarray:
    """Straight-line distance (m, UTM 49N) from each feature's centroid to the nearest facility.

    ``inf`` for every feature when there is no facility.
    """
    if len(facilities) == 0:
        return np.full(len(features), np.inf)
    tree = cKDTree(_xy(facilities))
    d, _ = tree.query(_xy(features), k=1)
    return np.asarray(d, float)


def service_coverage(
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    distance_m: float,
    people: str = "resident_pop",
    by: str = "community_code",
) -> pd.DataFrame:
    """Residents within ``distance_m`` of a facility, per ``by`` (default community).

    Returns
    -------
    DataFrame
        ``by``, ``buildings``, ``people``, ``buildings_within``, ``people_within``,
        ``share_within`` (of people; 0 where a community has nobody) and
        ``median_distance_m`` (median over the community's buildings, unweighted).
    """
    check_positive(distance_m, "distance_m")
    for col in (by, people):
        if col not in buildings.columns:
            raise AnalyticsError(
                f"buildings need a {col!r} column; they have: "
                f"{', '.join(map(str, buildings.columns))}"
            )
    d = nearest_distance(buildings, facilities)
    df = pd.DataFrame(
        {
            by: buildings[by].to_numpy(),
            "people": buildings[people].fillna(0).astype(int).to_numpy(),
            "within": d <= distance_m,
            "distance": d,
        }
    )
    df["people_in"] = np.where(df["within"], df["people"], 0)
    g = df.groupby(by)
    out = pd.DataFrame(
        {
            "buildings": g.size(),
            "people": g["people"].sum(),
            "buildings_within": g["within"].sum().astype(int),
            "people_within": g["people_in"].sum(),
            "median_distance_m": g["distance"].median().round(1),
        }
    )
    out["share_within"] = (
        (out["people_within"] / out["people"].where(out["people"] > 0)).fillna(0.0).round(4)
    )
    out = out.reset_index()
    return out[
        [
            by,
            "buildings",
            "people",
            "buildings_within",
            "people_within",
            "share_within",
            "median_distance_m",
        ]
    ]


def party_service_coverage(
    buildings: gpd.GeoDataFrame, party: gpd.GeoDataFrame, distance_m: float = 1000.0
) -> pd.DataFrame:
    """:func:`service_coverage` of party-mass service centres (``org_type='service_center'``)."""
    return service_coverage(buildings, party[party["org_type"] == "service_center"], distance_m)


def shelter_coverage(
    buildings: gpd.GeoDataFrame, flood_points: gpd.GeoDataFrame, distance_m: float = 2000.0
) -> pd.DataFrame:
    """:func:`service_coverage` of shelters (``facility_type='shelter'``)."""
    return service_coverage(
        buildings, flood_points[flood_points["facility_type"] == "shelter"], distance_m
    )


def relief_followup(households: pd.DataFrame, as_of=None, max_days: float = 30.0) -> pd.DataFrame:
    """Households without a recent visit, and monitored ones without a cadre, per community.

    Parameters
    ----------
    households : DataFrame
        The ``poverty_relief`` layer (``community_code``, ``household_size``,
        ``monitoring_type``, ``last_visit_at``; ``cadre_name`` if the caller may read it).
    as_of : datetime-like, optional
        Reference instant (default: now, UTC).
    max_days : float
        A visit older than this is not recent.

    Returns
    -------
    DataFrame
        Per community: ``households``, ``people``, ``monitored``, ``not_visited``,
        ``people_not_visited``, ``monitored_not_visited``, ``share_not_visited`` and, when
        ``cadre_name`` is present, ``monitored_without_cadre``. Counts only.
    """
    check_positive(max_days, "max_days")
    for col in ("community_code", "household_size", "monitoring_type", "last_visit_at"):
        if col not in households.columns:
            raise AnalyticsError(f"households need a {col!r} column")
    t = pd.Timestamp.now(tz="UTC") if as_of is None else pd.Timestamp(as_of)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    last = pd.to_datetime(households["last_visit_at"], utc=True)
    stale = ((t - last).dt.total_seconds() / 86400.0 > max_days) | last.isna()
    monitored = households["monitoring_type"].fillna("none") != "none"
    df = pd.DataFrame(
        {
            "community_code": households["community_code"].to_numpy(),
            "size": households["household_size"].fillna(0).astype(int).to_numpy(),
            "monitored": monitored.to_numpy(),
            "stale": stale.to_numpy(),
        }
    )
    df["people_stale"] = np.where(df["stale"], df["size"], 0)
    df["mon_stale"] = df["monitored"] & df["stale"]
    has_cadre = "cadre_name" in households.columns
    if has_cadre:
        no_cadre = households["cadre_name"].isna() | (households["cadre_name"] == "")
        df["mon_no_cadre"] = df["monitored"] & no_cadre.to_numpy()
    g = df.groupby("community_code")
    out = pd.DataFrame(
        {
            "households": g.size(),
            "people": g["size"].sum(),
            "monitored": g["monitored"].sum().astype(int),
            "not_visited": g["stale"].sum().astype(int),
            "people_not_visited": g["people_stale"].sum(),
            "monitored_not_visited": g["mon_stale"].sum().astype(int),
        }
    )
    out["share_not_visited"] = (out["not_visited"] / out["households"]).round(4)
    if has_cadre:
        out["monitored_without_cadre"] = g["mon_no_cadre"].sum().astype(int)
    return out.reset_index()


def with_communities(table: pd.DataFrame, communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Join a per-community table to the community polygons (every community; gaps as 0)."""
    c = communities[["code", "name", "geometry"]].rename(columns={"code": "community_code"})
    out = c.merge(table, on="community_code", how="left")
    num = [
        col
        for col in table.columns
        if col != "community_code"
        and not col.endswith("_m")
        and pd.api.types.is_numeric_dtype(table[col])
    ]
    for col in num:
        out[col] = out[col].fillna(0)
        if pd.api.types.is_integer_dtype(table[col]):
            out[col] = out[col].astype(int)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=communities.crs)
