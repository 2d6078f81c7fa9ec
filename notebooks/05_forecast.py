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
# # Next week (预判) and early warnings (预警)
#
# Weekly case counts per community and major category from the incidents served by the OGC
# API, forecast 1-4 weeks ahead with prediction intervals (`analytics.forecast`), checked by a
# rolling-origin backtest against the seasonal naive baseline (`analytics.backtest`), and the
# communities and 200 m cells whose forecast warns (`analytics.early_warning`), each with its
# reason. All cases are synthetic.

# %%
import os

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import requests

from analytics.backtest import backtest, select_model
from analytics.early_warning import early_warnings, weekly_outlook
from analytics.forecast import count_series, forecast
from analytics.maps import forecast_map

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
names = dict(zip(communities["code"], communities["name"], strict=False))
panel = count_series(incidents, level="community")  # local Monday-Sunday weeks
print(f"{len(panel.keys)} communities x {len(panel.periods)} weeks, "
      f"{panel.periods[0].date()} .. {panel.periods[-1].date()}")

# %% [markdown]
# ## How good is a forecast here? A backtest
#
# Twelve rolling origins, each model sees only the weeks up to its origin; MASE is the error
# scaled by the series' own week-to-week change (below 1: better than "same as last week"),
# coverage the share of held-out weeks inside the 80 % interval.

# %%
bt = backtest(panel, models=("seasonal_naive", "moving_average", "ets", "gbm", "pooled"), horizon=2)
bt.versus().merge(bt.scores[["model", "horizon", "coverage"]])[
    ["model", "horizon", "mase", "improvement", "improvement_vs_zero", "coverage"]].round(3)

# %% [markdown]
# Which model to trust is chosen on earlier weeks than those scored above:
# `select_model` cuts off the last 12 weeks and backtests the candidates on the 12 before.
# `pooled` (each community's share of the city's cases times the city's recent weekly total)
# is the sample's choice; rerun it on your own history.

# %%
sel = select_model(panel)
print(f"chosen: {sel.model} {sel.params} (validation weeks {sel.validation[0].date()} .. "
      f"{sel.validation[-1].date()})")
sel.scores.round(3)

# %% [markdown]
# ## Next week by category (with 80 % intervals)
#
# ETS per series (see `analytics.early_warning`, "Which forecast": the model that follows a
# series' own rise). The total is its own forecast, not the sum of the categories.

# %%
origin = panel.periods[-1]
outlook = weekly_outlook(incidents, origin, names=names)
table = pd.DataFrame(outlook["categories"]).set_index("label_en")[["expected", "lo", "hi", "usual"]]
ax = table["expected"].plot.barh(xerr=[table["expected"] - table["lo"],
                                       table["hi"] - table["expected"]],
                                 figsize=(8, 4), color="#90caf9",
                                 title=f"Expected cases, week of {outlook['week_start']}")
ax.invert_yaxis()
ax.set_xlabel("cases (80 % interval)")
table

# %% [markdown]
# ## Early warnings: which communities, and why
#
# A community warns when the upper end of its interval exceeds the count it would reach one
# week in a hundred at its usual (13-week) level, at least 3 cases.

# %%
fc = forecast(panel, model="ets", horizon=2)
ew = early_warnings(panel, fc, horizon=2)
ew.frame.assign(community=ew.frame["key"].map(names))[
    ["community", "horizon", "expected", "lo", "hi", "usual", "alarm", "reason"]].round(1)

# %%
if len(ew):
    key = ew.frame["key"].iloc[0]
    j = panel.keys.get_loc(key)
    f = fc.frame[fc.frame["key"] == key]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(panel.periods, panel.counts[j], label="cases a week")
    ax.fill_between(f["period"], f["lo"], f["hi"], alpha=0.3, label="80 % interval")
    ax.plot(f["period"], f["mean"], "o-", label="forecast")
    ax.set_title(f"{names.get(key, key)}: the most urgent warning")
    ax.legend()

# %% [markdown]
# ## On the map: communities and 200 m cells that warn (offline, our own base map)

# %%
forecast_map(incidents, communities=communities, lang="both")
