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
# # The week's cases (本周案件)
#
# The supervision figures of the weekly report, from the incidents served by the OGC API
# (public fields only: no reporter names or phones), computed with `layers.supervision`:
# intake, completion, overdue cases (超期未办结) by department, category and community.
# All cases are synthetic.

# %%
import os

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import requests

from layers.supervision import figures, iso_week, open_cases

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
incidents["week"] = iso_week(incidents["reported_at"])
WEEK = incidents["week"].max()
NOW = pd.to_datetime(incidents["reported_at"], utc=True).max()
week = incidents[incidents["week"] == WEEK]
print(f"{WEEK}: {len(week)} cases reported; {len(incidents)} over the year")

# %% [markdown]
# ## The year week by week

# %%
weekly = figures(incidents, by="week", now=NOW)
ax = weekly["cases"].plot(figsize=(11, 3.5), title="Cases reported per week")
ax.set_ylabel("cases")
weekly.tail(4)

# %% [markdown]
# ## This week, by department and by category

# %%
figures(week, by="department", now=NOW).sort_values("cases", ascending=False)

# %%
figures(week, by="category", now=NOW).sort_values("cases", ascending=False).head(10)

# %% [markdown]
# ## Open and overdue cases (督办)

# %%
overdue = open_cases(incidents, now=NOW, overdue_only=True)
print(f"{len(overdue)} overdue cases as of {NOW:%Y-%m-%d %H:%M} UTC")
overdue[["case_no", "category", "department", "status", "community_code", "deadline"]].sort_values(
    "deadline").head(15)

# %%
by_comm = figures(week, by="community", now=NOW)[["cases", "open", "overdue"]]
m = communities.merge(by_comm, left_on="code", right_index=True, how="left").fillna(
    {"cases": 0, "open": 0, "overdue": 0})
ax = m.plot(column="cases", cmap="YlOrRd", legend=True, figsize=(8, 8), edgecolor="#90a4ae",
            legend_kwds={"label": f"cases reported in {WEEK}"})
week.plot(ax=ax, markersize=4, color="#263238")
ax.set_axis_off()
