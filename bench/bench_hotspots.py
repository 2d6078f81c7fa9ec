"""Hot spot benchmark: analytics (ours) versus esda/libpysal, side by side in one run.

Run: ``python bench/bench_hotspots.py --sizes 10000 100000 1000000``

For each size, clustered points (Gaussian clusters over uniform background, fixed seed):

- weights + Gi*: ``knn_weights(k=8)`` + ``gi_star_z`` versus
  ``libpysal.graph.Graph.build_knn`` + ``esda.G_Local(star=True, transform="B", permutations=0)``
- Gi* given the weights (each library's own weights object)
- 999 permutations (only at the ``--perm-size``, default 100000)

z-scores are checked for equality (max abs difference).  The table is printed and written to
``bench/results/hotspots.md``.  ``--tasks`` runs a subset (``weights``, ``given``,
``permutations``); the rows it measures then replace the same rows of the existing results file
and the others are kept, e.g. ``python bench/bench_hotspots.py --sizes 1000000 --tasks given``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics._permutation import permutation_counts  # noqa: E402
from analytics.gistar import gi_star_z  # noqa: E402
from analytics.weights import knn_weights  # noqa: E402


def clustered_points(n: int, seed: int = 42):
    rng = np.random.default_rng(seed)
    n_bg = n // 2
    centres = rng.random((20, 2)) * 20_000
    which = rng.integers(0, 20, n - n_bg)
    pts = np.vstack(
        [rng.random((n_bg, 2)) * 20_000, centres[which] + rng.normal(0, 400, (n - n_bg, 2))]
    )
    y = rng.poisson(2.0, n).astype(float)
    d = np.min(np.hypot(*(pts[:, None, :] - centres[None, :3, :]).transpose(2, 0, 1)), axis=1)
    y += rng.poisson(np.where(d < 1000, 4.0, 0.0))
    return pts, y


TASKS = ("weights", "given", "permutations")
WEIGHTS_TASK = "KNN k=8 weights + Gi*"
GIVEN_TASK = "Gi* given weights"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--perm-size", type=int, default=100_000)
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hotspots.md"))
    ap.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=list(TASKS),
        help="subset to run; its rows replace those of an existing --out file",
    )
    args = ap.parse_args(argv)
    tasks = set(args.tasks)

    import esda
    import geopandas as gpd
    from libpysal.graph import Graph

    warnings.filterwarnings("ignore")
    rows = []
    for n in args.sizes:
        xy, y = clustered_points(n)
        gdf = gpd.GeoDataFrame({"y": y}, geometry=gpd.points_from_xy(*xy.T), crs=32649)
        # ours: weights + Gi*
        t_w, w = timed(lambda: knn_weights(gdf, k=8))  # noqa: B023
        t_g, z = timed(lambda: gi_star_z(y, w))  # noqa: B023
        # esda
        e_w, g = timed(lambda: Graph.build_knn(gdf, k=8))  # noqa: B023
        e_g, lg = timed(
            lambda: esda.G_Local(y, g, star=True, transform="B", permutations=0)  # noqa: B023
        )
        diff = float(np.nanmax(np.abs(lg.Zs - z)))
        if "weights" in tasks:
            rows.append((n, WEIGHTS_TASK, t_w + t_g, e_w + e_g, diff))
            print(rows[-1], flush=True)
        if "given" in tasks:
            rows.append((n, GIVEN_TASK, t_g, e_g, diff))
            print(rows[-1], flush=True)
        if n == args.perm_size and "permutations" in tasks:
            p = args.permutations
            rng = np.random.default_rng(0)
            t_p, _ = timed(
                lambda: permutation_counts(w, y, w @ y, p, rng)  # noqa: B023
            )
            e_p, _ = timed(
                lambda y=y, g=g, p=p: esda.G_Local(
                    y,
                    g,
                    star=True,
                    transform="B",
                    permutations=p,
                    seed=0,
                    keep_simulations=False,
                )
            )
            rows.append((n, f"{p} permutations (Gi*)", t_p, e_p, float("nan")))
            print(rows[-1], flush=True)

    lines = [
        "| n | task | analytics (s) | esda (s) | speed-up | max abs z diff |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    fresh = {}
    for n, task, ours, theirs, diff in rows:
        d = "" if np.isnan(diff) else f"{diff:.1e}"
        fresh[(n, task)] = (
            f"| {n:,} | {task} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}x | {d} |"
        )
    out = Path(args.out)
    partial = tasks != set(TASKS)
    table_rows = dict(fresh)
    if partial and out.exists():  # keep the rows this run did not measure, in their order
        kept = _read_rows(out.read_text())
        table_rows = {key: fresh.get(key, line) for key, line in kept.items()}
        table_rows.update({k: v for k, v in fresh.items() if k not in kept})
    lines.extend(table_rows.values())
    import platform

    import libpysal

    header = (
        f"# Hot spot benchmark\n\nesda {esda.__version__}, libpysal {libpysal.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"{__import__('os').cpu_count()} CPUs.  Command: "
        f"`python bench/bench_hotspots.py --sizes {' '.join(map(str, args.sizes))}`\n\n"
    )
    if partial and out.exists():  # keep the full run's header, note the re-measured rows
        old = out.read_text().split("\n| n |", 1)[0]
        header = "\n\n".join(b for b in old.split("\n\n") if not b.startswith("Re-measured"))
        header = header.rstrip("\n") + "\n\n"
    if partial:
        header += (
            f"Re-measured rows ({', '.join(f'{t} at {n:,}' for n, t in fresh)}) by "
            f"`python bench/bench_hotspots.py --sizes "
            f"{' '.join(map(str, args.sizes))} --tasks {' '.join(args.tasks)}`; "
            f"the other rows are from the last full run.\n\n"
        )
    table = "\n".join(lines)
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + table + "\n")


def _read_rows(text: str) -> dict:
    """``{(n, task): line}`` of the data rows of a results table, in file order."""
    found = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].replace(",", "").isdigit():
            found[(int(cells[0].replace(",", "")), cells[1])] = line
    return found


if __name__ == "__main__":
    main()
