"""The analyses' colours are named once (:mod:`analytics.palettes`) and used by every surface."""

from __future__ import annotations

import os
import re

from analytics import map_choropleth, map_hotspots, map_layers, map_parts, maps, palettes
from analytics.emerging import CATEGORIES
from analytics.hotcells import GI_BINS
from analytics.screen import screen_summary
from layers.catalogue import LAYERS

STATIC = os.path.join(os.path.dirname(__file__), "..", "tianya", "static")
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")


def _read(name: str) -> str:
    with open(os.path.join(STATIC, name), encoding="utf-8") as fh:
        return fh.read()


def test_gi_bins_take_their_colours_from_the_palette():
    assert {b: c for b, (_, _, c) in GI_BINS.items()} == palettes.GI_BIN_COLORS
    assert maps.GI_BINS is GI_BINS


def test_emerging_colours_cover_esris_categories_in_order():
    drawn = [c for c in CATEGORIES if c != "No Pattern Detected"]
    assert list(palettes.EMERGING_COLORS) == drawn
    assert len(set(palettes.EMERGING_COLORS.values())) == len(drawn)  # each its own colour
    assert maps.EMERGING_COLORS is palettes.EMERGING_COLORS


def test_choropleth_ramps_are_the_palette():
    ramps = [ramp for _, _, _, ramp in maps.MEASURES.values()]
    assert ramps == [palettes.ORANGES_5, palettes.GREENS_5, palettes.REDS_5]


def test_screen_summary_carries_every_colour_the_page_draws(sample_data):
    out = screen_summary(
        sample_data["incidents"], day="2026-11-20", now="2026-11-20T12:00:00Z", lang="en"
    )
    st = out["styles"]
    assert st["hot_bins"] == [
        {"gi_bin": b, "color": palettes.GI_BIN_COLORS[b], "label": GI_BINS[b][1]} for b in (3, 2, 1)
    ]
    assert st["overdue"] == palettes.OVERDUE
    assert st["muted"] == palettes.MUTED
    assert st["incident"] == LAYERS["incidents"].style.color
    # every hot cell drawn has its legend entry
    drawn = {f["properties"]["color"] for f in out["hotspots"]["features"]}
    assert drawn <= {b["color"] for b in st["hot_bins"]}


def test_screen_script_has_no_palette_of_its_own():
    """screen.js once hard-coded the Gi* bin colours, the overdue red and two fallbacks; the
    only colour it may name is its page's background (screen.css), which edges the dots."""
    chrome = {c.lower() for c in HEX.findall(_read("screen.css"))}
    script = {c.lower() for c in HEX.findall(_read("screen.js"))}
    assert script <= chrome, f"colours in screen.js not from the summary: {script - chrome}"


def test_maps_modules_stay_small_and_maps_exports_them():
    for mod in (maps, map_parts, map_layers, map_hotspots, map_choropleth):
        with open(mod.__file__ or "", encoding="utf-8") as fh:
            assert sum(1 for _ in fh) < 600, mod.__name__
    assert maps.layers_map is map_layers.layers_map
    assert maps.hotspot_map is map_hotspots.hotspot_map
    assert maps.choropleth_map is map_choropleth.choropleth_map
    assert maps.save_map is map_parts.save_map
