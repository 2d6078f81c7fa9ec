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
# # Flood exposure: who stands in water, and can the shelters hold them?
#
# The terrain and the four flood scenarios are **synthetic** Cloud-Optimized GeoTIFFs
# (`geodata/rasters.py`), served as OGC API - Coverages. We run the `flood-exposure`
# process on the server, then the same analysis locally with `analytics.exposure` to map
# it, and look at rivers and service coverage.

# %%
import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rasterio
import requests

from analytics.coverage import (
    party_service_coverage,
    relief_followup,
    shelter_coverage,
    with_communities,
)
from analytics.exposure import flood_exposure
from analytics.rivers import compliance_by_level, patrol_compliance, quality_changes
from geodata.patrols import AS_OF, synthetic_patrols
from geodata.rasters import SCENARIOS, default_dir, raster_files
from tianya.settings import Settings

SETTINGS = Settings.from_env()  # TIANYA_URL, TIANYA_DATA, TIANYA_RASTERS as the server reads them
URL, DATA = SETTINGS.url, SETTINGS.store_location()
RASTERS = raster_files(default_dir(DATA, SETTINGS.rasters))
SCENARIO = "surge_3m"
list(SCENARIOS)

# %% [markdown]
# ## The process on the server

# %%
r = requests.post(f"{URL}/processes/flood-exposure/execution",
                  json={"inputs": {"scenario": SCENARIO}}, timeout=300)
r.raise_for_status()
result = r.json()
pd.Series(result["summary"]).to_frame("value")

# %%
table = pd.DataFrame(result["communities"])
table.sort_values("people_to_move", ascending=False).head(10)[
    ["community_code", "name", "people_shallow", "people_moderate", "people_deep",
     "people_very_deep", "people_to_move"]]

# %% [markdown]
# ## The same analysis locally, for maps

# %%
layers = {k: gpd.read_file(DATA, layer=k) for k in
          ("building_population", "communities", "flood_prevention", "urban_fixtures")}
e = flood_exposure(layers["building_population"], RASTERS[SCENARIO],
                   communities=layers["communities"], flood_points=layers["flood_prevention"],
                   fixtures=layers["urban_fixtures"])
assert e.summary["people_to_move"] == result["summary"]["people_to_move"]
e.summary["people_to_move"], e.summary["shelter_capacity_usable"]

# %%
with rasterio.open(RASTERS[SCENARIO]) as src:
    win = src.window(109.40, 18.26, 109.53, 18.34)
    depth = src.read(1, window=win, masked=True)
    extent = rasterio.windows.bounds(win, src.transform)
fig, ax = plt.subplots(figsize=(10, 7))
im = ax.imshow(np.ma.masked_less(depth, 0.02), cmap="Blues", vmin=0, vmax=2.5,
               extent=[extent[0], extent[2], extent[1], extent[3]])
b = e.buildings.to_crs(4326).cx[109.40:109.53, 18.26:18.34]
b[b["evacuate"]].plot(ax=ax, color="#d32f2f", linewidth=0)
sh = e.shelters.to_crs(4326).cx[109.40:109.53, 18.26:18.34]
sh.plot(ax=ax, color=np.where(sh["usable"], "#2e7d32", "#9e9e9e"), markersize=40, marker="^")
plt.colorbar(im, ax=ax, label="flood depth (m, synthetic)")
ax.set_title(f"{SCENARIOS[SCENARIO].en}: buildings to evacuate (red), shelters (green)")

# %%
ax = e.communities.plot(column="share_people_wet", cmap="OrRd", legend=True, figsize=(8, 8),
                        edgecolor="#90a4ae", legend_kwds={"label": "share of residents in water"})
ax.set_axis_off()

# %% [markdown]
# Shelter loads after the greedy nearest-shelter-with-room assignment:

# %%
e.shelters.sort_values("assigned", ascending=False).head(10)[
    ["facility_code", "name", "capacity", "assigned", "remaining", "usable", "depth"]]

# %%
e.points[e.points["at_risk"]].groupby(["kind"]).size().rename("at risk")

# %% [markdown]
# ## All four scenarios

# %%
rows = []
for sid in SCENARIOS:
    s = flood_exposure(layers["building_population"], RASTERS[sid],
                       flood_points=layers["flood_prevention"]).summary
    rows.append({"scenario": sid, "people_to_move": s["people_to_move"],
                 "buildings_to_move": s["buildings_to_move"],
                 "shelters_usable": s["shelters_usable"],
                 "capacity_usable": s["shelter_capacity_usable"],
                 "unsheltered": s["people_unsheltered"], "mean_distance_m": s["mean_distance_m"]})
pd.DataFrame(rows)

# %% [markdown]
# ## Rivers: patrols and water quality
#
# Patrol records are synthetic (`geodata.patrols`). City-level chiefs are held to a monthly
# patrol, as township chiefs (the rules give no city frequency).

# %%
rivers = gpd.read_file(DATA, layer="rivers")
comp = patrol_compliance(rivers, as_of=AS_OF, records=synthetic_patrols(rivers))
compliance_by_level(comp)

# %%
quality_changes(rivers, only_worse=True)[["segment_code", "name", "previous_quality",
                                          "water_quality", "steps"]]

# %% [markdown]
# ## Service coverage and relief follow-up (counts per community, no personal fields)

# %%
party = gpd.read_file(DATA, layer="party_building")
pc = with_communities(party_service_coverage(layers["building_population"], party, 1000),
                      layers["communities"])
scov = shelter_coverage(layers["building_population"], layers["flood_prevention"], 2000)
print(f"within 1 km of a party-mass service centre: "
      f"{pc['people_within'].sum() / pc['people'].sum():.1%}; within 2 km of a shelter: "
      f"{scov['people_within'].sum() / scov['people'].sum():.1%}")
ax = pc.plot(column="share_within", cmap="Greens", legend=True, figsize=(8, 8),
             edgecolor="#90a4ae")
ax.set_axis_off()

# %%
relief = relief_followup(gpd.read_file(DATA, layer="poverty_relief"), as_of=AS_OF, max_days=30)
relief.sort_values("monitored_not_visited", ascending=False).head(10)
