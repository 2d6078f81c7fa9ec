"""Map generation time, HTML size and time to first render for 1k / 10k / 100k incidents.

For each size the synthetic sample is generated with that many incidents, then

* ``layers``: :func:`analytics.maps.layers_map` of the seven layers (incidents above
  ``max_points`` = 2000 are aggregated into 300 m cells, open overdue cases stay points);
* ``incidents (points)``: the incidents layer alone drawn as individual points (what the
  aggregation avoids), for comparison;
* ``hotspots``: :func:`analytics.maps.hotspot_map` (Gi*, emerging, KDE);

are built and saved (Leaflet inlined) and opened in headless Chromium (Debian's, tiles
blocked): time to first render = from navigation start until the layer control exists and
two animation frames have been painted.

Run: ``python bench/bench_maps.py [--sizes 1000,10000,100000] [--out bench/results/maps.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from analytics import maps
from geodata.sample import generate

ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def first_render(browser, path: str) -> float:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort(),
    )
    t0 = time.perf_counter()
    page.goto("file://" + path, wait_until="commit")
    page.wait_for_selector(".leaflet-control-layers", state="attached", timeout=120_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    dt = time.perf_counter() - t0
    page.close()
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument(
        "--max-points-map",
        type=int,
        default=20_000,
        help="Largest size for the points-only comparison map.",
    )
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "maps.md"))
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    tmp = tempfile.mkdtemp()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for n in [int(s) for s in a.sizes.split(",")]:
            data = generate(n_incidents=n)
            builds = {
                "layers (7 layers, aggregated)": lambda d=data: maps.layers_map(d),
                "incidents as points": lambda d=data, n=n: maps.layers_map(
                    d, layers=("incidents",), max_points=n + 1
                ),
                "hotspots": lambda d=data: maps.hotspot_map(
                    d["incidents"], communities=d["communities"]
                ),
            }
            if n > a.max_points_map:
                del builds["incidents as points"]
            for name, build in builds.items():
                t0 = time.perf_counter()
                m = build()
                path = os.path.join(tmp, f"{n}-{name.split()[0]}.html")
                out = maps.save_map(m, path)
                gen = time.perf_counter() - t0
                render = first_render(browser, path)
                rows.append((n, name, gen, out.size / 1e6, render))
                print(
                    f"{n:>7} {name:<32} {gen:6.2f} s {out.size / 1e6:7.2f} MB {render:6.2f} s",
                    flush=True,
                )
        browser.close()
    lines = [
        "# Map generation, size and first render",
        "",
        f"`python bench/bench_maps.py` on {platform.node()} ({os.cpu_count()} CPUs), "
        "synthetic sample data, Leaflet inlined, headless Debian Chromium with tiles blocked.",
        "Generation = build the folium map + render + write the HTML. First render = "
        "navigation start until the layer control exists and two frames are painted.",
        "",
        "| incidents | map | generate (s) | HTML (MB) | first render (s) |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {n:,} | {name} | {g:.2f} | {s:.2f} | {r:.2f} |" for n, name, g, s, r in rows]
    lines += [
        "",
        "Above `max_points` (2,000) incidents are drawn as 300 m cells coloured by "
        "the dominant category plus the open overdue cases as points; the "
        '"incidents as points" rows show what that avoids (not built above '
        f"{a.max_points_map:,}: folium styles every feature in Python, minutes at 100k, "
        "and the page would be ~60 MB).",
        "",
        "The first row includes one-off imports and the matplotlib/CJK font cache warm-up.",
        "",
    ]
    with open(a.out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
