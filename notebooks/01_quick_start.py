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
# # Quick start: the Tianya GIS from a notebook
#
# Three ways in: the OGC API with **OWSLib**, the same API with **geopandas**, and the
# **GeoPackage** file directly. Set `TIANYA_URL` to the server (default
# `http://localhost:5000`, started with `tianya serve`) and `TIANYA_DATA` to the GeoPackage
# (default `geodata/tianya.gpkg`). All sample data are synthetic.

# %%
import json
import os

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import requests
from owslib.ogcapi.coverages import Coverages
from owslib.ogcapi.features import Features

URL = os.environ.get("TIANYA_URL", "http://localhost:5000")
DATA = os.environ.get("TIANYA_DATA", os.path.join("..", "geodata", "tianya.gpkg"))
HEADERS = {"Authorization": f"Bearer {os.environ['TIANYA_KEY']}"} if os.environ.get(
    "TIANYA_KEY") else {}
URL, DATA

# %% [markdown]
# ## OGC API - Features with OWSLib

# %%
api = Features(URL, headers=HEADERS)
collections = api.collections()["collections"]
[(c["id"], c["title"]) for c in collections]

# %%
fp = api.collection_items("flood_prevention", limit=500)
facilities = gpd.GeoDataFrame.from_features(fp["features"], crs=4326)
facilities["facility_type"].value_counts()

# %% [markdown]
# Personal fields (names, phones) are never served to the public: compare the columns with
# the layer's queryables.

# %%
sorted(facilities.columns)

# %% [markdown]
# ## The same API with geopandas, and a CQL2 filter

# %%
communities = gpd.read_file(f"{URL}/collections/communities/items?f=json&limit=100")
shelters = gpd.read_file(f"{URL}/collections/flood_prevention/items?f=json&limit=500"
                         "&filter=facility_type='shelter'")
ax = communities.plot(figsize=(7, 7), color="#eceff1", edgecolor="#90a4ae")
shelters.plot(ax=ax, markersize=shelters["capacity"] / 40, color="#2e7d32", alpha=0.7)
ax.set_title("Communities and shelters (size: capacity)")
ax.set_axis_off()

# %% [markdown]
# ## OGC API - Coverages: the synthetic DEM
#
# OWSLib's coverage client asks for a subset (here a window around the urban centre) and
# gets CoverageJSON; `f=GTiff` gives the GeoTIFF window instead.

# %%
cov = Coverages(URL)
raw = cov.coverage("dem", subset={"Lat": (18.27, 18.32), "Long": (109.45, 109.52)})
cj = json.load(raw)
(rng,) = cj["ranges"].values()
dem = np.array([np.nan if v is None else v for v in rng["values"]], float).reshape(rng["shape"])
ax = cj["domain"]["axes"]
plt.figure(figsize=(7, 5))
plt.imshow(dem, extent=[ax["x"]["start"], ax["x"]["stop"], ax["y"]["stop"], ax["y"]["start"]],
           cmap="terrain", vmin=-5, vmax=150)
plt.colorbar(label="elevation (m, synthetic)")
plt.title("DEM subset through OGC API - Coverages")

# %%
r = requests.get(f"{URL}/collections/flood_surge_3m/coverage",
                 params={"bbox": "109.45,18.27,109.52,18.32", "f": "GTiff"}, timeout=60)
r.headers["Content-Type"], len(r.content)

# %% [markdown]
# ## The GeoPackage directly
#
# The store is a standard GeoPackage (it opens in QGIS too): geopandas reads any layer.

# %%
buildings = gpd.read_file(DATA, layer="building_population")
buildings.groupby("use")[["resident_pop", "floating_pop"]].sum()

# %%
buildings.to_crs(32649).area.describe()
