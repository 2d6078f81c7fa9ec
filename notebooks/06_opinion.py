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
# # The week's online public opinion (本周网络舆情)
#
# Monitored posts (Weibo, forums, WeChat articles) are placed, categorised and grouped into
# topics by `analytics.opinion` (gazetteer of our own layers, keyword rules, near-duplicate
# and same-issue grouping). This notebook reads the posts and topics the server holds (public
# fields only: no author handles), ranks the week's topics by volume and growth
# (`analytics.opinion.hot.hot_topics`), maps them, and finds the communities where opinion
# concentrates (Gi*, `opinion_hot_spots`). A server whose data were written without posts
# gets the sample's feed understood here by the same library. All posts are synthetic.

# %%
import os

import geopandas as gpd
import matplotlib.pyplot as plt
import pandas as pd
import requests

from analytics.hotcells import GI_BINS
from analytics.opinion.hot import hot_topics, opinion_hot_spots
from layers.catalogue import LAYERS

URL = os.environ.get("TIANYA_URL", "http://localhost:5000")


def read_all(collection, **params):
    """Every feature of a collection, page by page (an empty frame when there are none)."""
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
    return pd.concat(frames, ignore_index=True) if frames else gpd.GeoDataFrame()


communities = gpd.read_file(f"{URL}/collections/communities/items?f=json&limit=100")
names = dict(zip(communities["code"], communities["name"], strict=False))
posts = read_all("public_opinion")
topics = read_all("opinion_topics")
source = "the server"
if posts.empty:
    # no posts on this server: understand the sample's last 12 weeks of feed with the library
    from analytics.opinion.gazetteer import build_gazetteer
    from analytics.opinion.pipeline import understand
    from geodata.opinion import generate_posts
    from geodata.sample import YEAR_END, generate

    frames = generate()
    raw = generate_posts(frames, n_posts=7000, start=YEAR_END - pd.Timedelta(weeks=12),
                         end=YEAR_END)
    posts = understand(raw, build_gazetteer(frames)).drop(columns=["handle"])
    posts = gpd.GeoDataFrame(
        posts, geometry=gpd.points_from_xy(posts["place_lon"], posts["place_lat"]), crs=4326)
    topics, source = None, "the sample feed, understood here"
posts["posted_at"] = pd.to_datetime(posts["posted_at"], utc=True, format="ISO8601")
print(f"{len(posts)} posts from {source}: {posts['posted_at'].min():%Y-%m-%d} .. "
      f"{posts['posted_at'].max():%Y-%m-%d}; {int(posts['topic_id'].notna().sum())} in topics")

# %% [markdown]
# ## The week's topics, by volume and growth
#
# The last full Monday–Sunday week (Beijing time) of the posts. *Volume* is a topic's posts
# in the week; *growth* its posts in the week over those of the week before (at least one).

# %%
last = posts["posted_at"].max().tz_convert("Asia/Shanghai")
monday = (last - pd.Timedelta(days=last.day_of_week + 7)).normalize()
START, END = monday.tz_convert("UTC"), (monday + pd.Timedelta(days=7)).tz_convert("UTC")
eps = pd.Timedelta(microseconds=1)  # the windows are (since, until]
week = hot_topics(posts, topics, since=START - eps, until=END - eps, limit=None)
cat = LAYERS["public_opinion"].field("category")
week["category_label"] = [cat.label(c) for c in week["category"]]
week["community"] = [names.get(c, "—") for c in week["community_code"]]
print(f"week of {monday:%Y-%m-%d}: {len(week)} topics")
cols = ["topic_id", "category_label", "community", "posts_recent", "posts_before", "growth",
        "posts"]
week[cols].head(12)

# %%
week.sort_values(["growth", "posts_recent"], ascending=False)[cols].head(8)

# %% [markdown]
# ## The topics on a map
#
# Each topic at its place (GPS or the place's point), its size the posts in the week, its
# colour the category's; the ten largest are labelled. Beside it, the communities where the
# week's posts concentrate: Gi* of the posts per community (k = 6 neighbours, FDR).

# %%
placed = posts[(posts["posted_at"] >= START) & (posts["posted_at"] < END)]
placed = placed[placed.geometry.notna() & ~placed.geometry.is_empty & placed["topic_id"].notna()]
where = placed.assign(x=placed.geometry.x, y=placed.geometry.y).groupby(
    placed["topic_id"].astype(str))[["x", "y"]].mean()
week["topic_id"] = week["topic_id"].astype(str)
mapped = week.merge(where, left_on="topic_id", right_index=True)
colors = {c.code: c.color or "#9e9e9e" for c in cat.codes or ()}

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 7.5))
communities.boundary.plot(ax=ax, color="#b0bec5", linewidth=0.6)
ax.scatter(mapped["x"], mapped["y"], s=20 + 25 * mapped["posts_recent"],
           c=[colors.get(c, "#9e9e9e") for c in mapped["category"]], alpha=0.75,
           edgecolor="#263238", linewidth=0.5)
for r in mapped.head(10).itertuples():
    ax.annotate(f"{r.topic_id}: {r.posts_recent}", (r.x, r.y), fontsize=8,
                xytext=(4, 4), textcoords="offset points")
ax.set_title(f"Topics of the week of {monday:%Y-%m-%d} (size: posts in the week)")
ax.set_axis_off()

week_posts = posts[(posts["posted_at"] >= START) & (posts["posted_at"] < END)]
hot = opinion_hot_spots(week_posts, communities, unit="community", k=6)
hot.plot(ax=ax2, color=[GI_BINS[b][2] for b in hot["gi_bin"]], edgecolor="#90a4ae")
for r in hot[hot["gi_bin"] > 0].itertuples():
    c = r.geometry.representative_point()
    ax2.annotate(f"{r.name} {r.count}", (c.x, c.y), fontsize=8, ha="center")
ax2.set_title(f"Where opinion concentrates (Gi*; {hot.attrs['unplaced']} posts unplaced)")
ax2.set_axis_off()
plt.show()

# %%
hot[hot["gi_bin"] != 0][["code", "name", "count", "gi_z", "gi_bin"]].sort_values(
    "gi_z", ascending=False)
