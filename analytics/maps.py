"""Static folium maps: the seven layers, hot spots and community choropleths.

Functions
---------
layers_map
    The seven thematic layers as toggleable overlays, styled from the layer catalogue.
hotspot_map
    Gi* bins (red/blue), emerging hot spot categories and a kernel-density heat layer.
choropleth_map
    Communities shaded by case density, completion rate and overdue share.
community_measures
    The figures behind :func:`choropleth_map` (from :mod:`layers.supervision`).
forecast_map
    Communities and grid cells that warn for the coming weeks
    (:mod:`analytics.early_warning`), each with its explanation.
key_tasks_map
    Supervised key tasks (areas, river sections, sites) coloured by status, with their
    milestones and the cases inside each area before and after its start.
save_map
    Write a map as one HTML file (Leaflet and the base map inlined by default: works
    offline).

Everything is derived from :mod:`layers.catalogue`: overlay names (zh-CN / en), colours by
each layer's ``style.by`` code list, popup field titles and code labels. Sensitive fields
never reach a map (only :attr:`~layers.catalogue.Layer.public_fields` are read), and the
non-public poverty-relief layer is drawn as counts per community unless ``restricted=True``.

Points are filled circles in their code's catalogue colour and are drawn above lines and
areas (Leaflet panes), so a click on a point opens that point's popup whatever the order
the overlays were switched on in; popups show code labels (zh and en with ``lang="both"``)
and community names, never raw codes; each legend group follows its overlay in the layer
control; community names are permanent labels (overlapping ones are left out until zoomed
in). Choropleth classes are Jenks natural breaks
(:func:`analytics.map_choropleth.natural_breaks`).

Large layers stay light: above ``max_points`` features a layer is aggregated into square
cells (coloured by the dominant code, popups with the breakdown); the features that need
attention (open overdue incidents, damaged or missing fixtures) stay individual up to
``max_points``.

Base maps (:mod:`analytics.basemaps`): by default ``basemap_id="tianya"``, our own base map
(sea, district boundary, communities and villages with their names, rivers, grid cells,
buildings) drawn from the project's layers in the style the server publishes and embedded
in the file (:mod:`analytics.map_basemap`): with the default ``assets="inline"`` a saved
map asks no other host. Online base maps are a choice: ``"osm"``, 天地图 ``"tianditu"`` /
``"tianditu_img"`` (CGCS2000; ``keys={"tianditu": …}``, the setting
``TIANYA_TIANDITU_KEY``) and 高德 ``"amap"`` / ``"amap_img"`` (GCJ-02: every overlay is
converted first; ``TIANYA_AMAP_KEY`` for a template with ``{key}``); ``tiles={id: url}``
(``TIANYA_TILES_<ID>``) points one at another tile server, e.g. on the intranet.

The maps are built in :mod:`analytics.map_layers`, :mod:`analytics.map_hotspots` and
:mod:`analytics.map_choropleth` from the shared folium parts of :mod:`analytics.map_parts`
(base map, legend, layer control, popups, output) and :mod:`analytics.map_basemap` (our
base map in the file); their colours are
:mod:`analytics.palettes`. This module is the one to import.

This module builds HTML strings; it never imports a web framework.
"""

from __future__ import annotations

from analytics.map_choropleth import MEASURES, choropleth_map, community_measures
from analytics.map_forecast import WARNING_KINDS, forecast_map
from analytics.map_hotspots import EMERGING_COLORS, GI_BINS, hotspot_map
from analytics.map_key_tasks import KEY_TASK_FIELDS, key_tasks_map
from analytics.map_layers import POPUP_FIELDS, layers_map
from analytics.map_parts import CENTRE, Legend, MapFile, render_html, save_map

__all__ = [
    "CENTRE",
    "GI_BINS",
    "EMERGING_COLORS",
    "KEY_TASK_FIELDS",
    "Legend",
    "MEASURES",
    "MapFile",
    "POPUP_FIELDS",
    "WARNING_KINDS",
    "choropleth_map",
    "community_measures",
    "forecast_map",
    "hotspot_map",
    "key_tasks_map",
    "layers_map",
    "render_html",
    "save_map",
]
