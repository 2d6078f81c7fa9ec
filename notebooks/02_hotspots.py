# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Incident hot spots: Gi*, Optimized Hot Spot Analysis, emerging hot spots
#
# The incidents come from the OGC API (`TIANYA_URL`); the statistics are the
# `analytics` library's. The synthetic sample plants three hot spots and one emerging hot
# spot (`sample_ground_truth` in the GeoPackage): the analyses should find them.

# %%
import os

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import requests

from analytics.emerging import emerging_hot_spots
from analytics.gistar import hot_spots
from analytics.ohsa import optimized_hot_spots
from geodata.sample import ground_truth

URL = os.environ.get("TIANYA_URL", "http://localhost:5000")


def read_all(collection, **params):
    """Every feature of a collection, page by page."""
    frames, offset = [], 0
    while True:
        r = requests.get(f"{URL}/collections/{collection}/items",
                         params={"f": "json", "limit": 5000, "offset": offset, **params},
                         timeout=120)
        r.raise_for_status()
        feats = r.json()["features"]
        if not feats:
            break
        frames.append(gpd.GeoDataFrame.from_features(feats, crs=4326))
        offset += len(feats)
    return pd.concat(frames, ignore_index=True)


incidents = read_all("incidents")
communities = gpd.read_file(f"{URL}/collections/communities/items?f=json&limit=100")
len(incidents)

# %% [markdown]
# ## Optimized Hot Spot Analysis (fishnet, cell size and scale chosen from the data)

# %%
ohsa = optimized_hot_spots(incidents, "fishnet")
cells = ohsa.cells
print(f"cell size {ohsa.cell_size:.0f} m, distance band {ohsa.distance_band:.0f} m")
cells["gi_bin"].value_counts().sort_index()

# %%
colors = {-3: "#2166ac", -2: "#67a9cf", -1: "#d1e5f0", 0: "#f7f7f7", 1: "#fddbc7",
          2: "#ef8a62", 3: "#b2182b"}
ax = communities.to_crs(cells.crs).plot(figsize=(8, 8), color="none", edgecolor="#b0bec5")
cells.plot(ax=ax, color=cells["gi_bin"].map(colors))
truth = ground_truth()
gpd.GeoSeries(gpd.points_from_xy(truth["lon"], truth["lat"]), crs=4326).to_crs(
    cells.crs).plot(ax=ax, marker="x", color="black", markersize=60)
ax.set_title("Optimized hot spots (FDR); x = planted patterns")
ax.set_axis_off()

# %% [markdown]
# ## Gi* per community (counts, queen contiguity)

# %%
counts = incidents.groupby("community_code").size().rename("cases")
by_comm = communities.merge(counts, left_on="code", right_index=True, how="left").fillna(
    {"cases": 0})
gi = hot_spots(by_comm.to_crs(32649), "cases", weights="queen", fdr=True)
gi[["code", "name", "cases", "gi_z", "gi_p", "gi_bin"]].sort_values("gi_z",
                                                                   ascending=False).head(8)

# %% [markdown]
# ## Emerging hot spots (weekly space-time cube, 500 m fishnet)

# %%
ehs = emerging_hot_spots(incidents, "reported_at", cell_size=500, time_step="7D")
loc = ehs.locations
loc["category"].value_counts()

# %%
ax = communities.to_crs(loc.crs).plot(figsize=(8, 8), color="none", edgecolor="#b0bec5")
flagged = loc[loc["category"] != "No Pattern Detected"]
flagged.plot(ax=ax, column="category", legend=True, categorical=True,
             legend_kwds={"loc": "lower left", "fontsize": 7})
ax.set_title("Emerging hot spot categories")
ax.set_axis_off()
