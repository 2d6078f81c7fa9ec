"""The colours of the analyses, named once: maps, the weekly report and the screen use these.

Each palette says what it encodes and where its colours come from. The colours of code
lists (incident categories, water quality classes, fixture states…) are not here: each
belongs to its code, beside its zh/en labels, in :mod:`layers.catalogue`, from which the
stores, pygeoapi's collections and every map style derive. This module holds the colours
that encode an *analysis* (significance bins, emerging patterns, measure classes) or dress a
figure, which no layer declares and ``layers/`` never needs.

Palettes
--------
GI_BIN_COLORS
    Gi* confidence bin → colour: ArcGIS Pro's *Hot Spot Analysis (Getis-Ord Gi*)* renderer
    (red hot, blue cold, three confidence levels, light grey not significant).
EMERGING_COLORS
    Emerging hot spot category → colour, hot in reds and cold in blues.
ORANGES_5, GREENS_5, REDS_5
    Five-class sequential ramps (ColorBrewer, Cynthia Brewer, Penn State) for the
    choropleths.
KDE_COLORMAP, KDE_LOW, KDE_HIGH
    The kernel-density heat layer (ColorBrewer YlOrRd) and its legend's two swatches.
OUTLINE, FEATURE_EDGE, CHOROPLETH_EDGE, NO_DATA, NO_PATTERN, UNCLASSIFIED, MUTED
    Neutral colours: outlines, edges, missing values, fallbacks.
CHART_COLORS
    The weekly report's chart series (Material Design palette).
OVERDUE
    Overdue cases on the command-center screen (Material Design red A400).
WARNING_COLORS
    Early warning kind → colour (the warnings map, the screen's forecast panel).

The screen's page (``tianya/static/screen.js``) has no colour of its own: it reads them from
the summary's ``styles`` (:func:`analytics.screen.screen_summary`).

Examples
--------
>>> GI_BIN_COLORS[3], GI_BIN_COLORS[-3]
('#d62f27', '#4575b5')
>>> EMERGING_COLORS["New Hot Spot"], len(EMERGING_COLORS)
('#b2182b', 16)
"""

from __future__ import annotations

__all__ = [
    "CHART_COLORS",
    "CHOROPLETH_EDGE",
    "EMERGING_COLORS",
    "FEATURE_EDGE",
    "GI_BIN_COLORS",
    "GREENS_5",
    "KDE_COLORMAP",
    "KDE_HIGH",
    "KDE_LOW",
    "MUTED",
    "NO_DATA",
    "NO_PATTERN",
    "ORANGES_5",
    "OUTLINE",
    "OVERDUE",
    "REDS_5",
    "UNCLASSIFIED",
]

#: Gi* confidence bin (-3…3, as :func:`analytics.gistar.confidence_bins` gives) → colour, from
#: ArcGIS Pro's hot spot renderer: hot 99/95/90 %, not significant, cold 90/95/99 %.
GI_BIN_COLORS: dict[int, str] = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#eeeeee",
    -1: "#c0ccbe",
    -2: "#849eba",
    -3: "#4575b5",
}

#: Emerging hot spot category (:data:`analytics.emerging.CATEGORIES`, Esri's names) → colour;
#: "No Pattern Detected" is not drawn. Esri's tool marks the patterns with symbols; here
#: each pattern has a hue of its own, hot ones from ColorBrewer's RdBu, Reds, YlOrRd and
#: RdYlBu reds, cold ones from RdBu, Paired, Blues and RdYlBu blues.
EMERGING_COLORS: dict[str, str] = {
    "New Hot Spot": "#b2182b",
    "Consecutive Hot Spot": "#d6604d",
    "Intensifying Hot Spot": "#67001f",
    "Persistent Hot Spot": "#e31a1c",
    "Diminishing Hot Spot": "#f4a582",
    "Sporadic Hot Spot": "#fd8d3c",
    "Oscillating Hot Spot": "#fdae61",
    "Historical Hot Spot": "#fee090",
    "New Cold Spot": "#2166ac",
    "Consecutive Cold Spot": "#4393c3",
    "Intensifying Cold Spot": "#053061",
    "Persistent Cold Spot": "#1f78b4",
    "Diminishing Cold Spot": "#92c5de",
    "Sporadic Cold Spot": "#6baed6",
    "Oscillating Cold Spot": "#abd9e9",
    "Historical Cold Spot": "#e0f3f8",
}

#: ColorBrewer Oranges (classes 1, 3, 5, 7, 9 of its nine), low → high: case density.
ORANGES_5 = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")
#: ColorBrewer Greens (classes 1, 3, 5, 7, 9 of its nine), low → high: completion rate.
GREENS_5 = ("#f7fcf5", "#c7e9c0", "#74c476", "#238b45", "#00441b")
#: ColorBrewer Reds (classes 1, 3, 5, 7, 9 of its nine), low → high: overdue share.
REDS_5 = ("#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d")

#: Matplotlib's name of ColorBrewer YlOrRd, the kernel-density heat layer's colour map.
KDE_COLORMAP = "YlOrRd"
#: Low and high ends of ColorBrewer YlOrRd (five classes), the heat layer's legend swatches.
KDE_LOW, KDE_HIGH = "#ffffb2", "#bd0026"

#: Community outlines drawn under other overlays (the communities layer's catalogue colour).
OUTLINE = "#546e7a"
#: Edge of point markers and of the report's incident dots.
FEATURE_EDGE = "#333333"
#: Edge of choropleth polygons.
CHOROPLETH_EDGE = "#555555"
#: Choropleth polygons without a value.
NO_DATA = "#cccccc"
#: Legend swatch of "no pattern detected" (nothing is drawn).
NO_PATTERN = "#ffffff"
#: An emerging category without a colour (should not happen; drawn grey rather than lost).
UNCLASSIFIED = "#999999"
#: Material blue grey 300: outlines in the report and any category without a catalogue
#: colour (the catalogue's "other").
MUTED = "#90a4ae"

#: The weekly report's chart series, Material Design colours: received (blue 700), closed
#: (green 600), channel (indigo 400), weekly received (blue 200), completion rate (green 800).
CHART_COLORS: dict[str, str] = {
    "received": "#1976d2",
    "closed": "#43a047",
    "channel": "#5c6bc0",
    "weekly_received": "#90caf9",
    "completion": "#2e7d32",
}

#: Overdue cases on the command-center screen: Material red A400, bright on its dark page.
OVERDUE = "#ff1744"

#: Early warning kind (:data:`analytics.early_warning.KINDS`) → colour on the warnings map and
#: the screen: an upper bound over its alarm level in Material orange 900; a forecast hot spot
#: in its emerging category's colour (new, intensifying).
WARNING_COLORS: dict[str, str] = {
    "threshold": "#e65100",
    "new_hot_spot": EMERGING_COLORS["New Hot Spot"],
    "intensifying_hot_spot": EMERGING_COLORS["Intensifying Hot Spot"],
}
