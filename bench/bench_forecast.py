"""Forecasting every 200 m cell of a 1M-case history, weekly, in one process: time and peak memory.

The workload of issue 16's bench: the synthetic 5-year history of
:func:`geodata.history.synthetic_history` (1M cases by default, 60 months, ~261 weeks) is
generated in memory (not timed), then :func:`analytics.forecast.count_series` bins it to a
200 m fishnet x local Monday weeks and :func:`analytics.forecast.forecast` forecasts every cell
1-4 weeks ahead from the last week with each model.  Each run is a child process; its peak
resident memory (``VmHWM``) is reset after the history is generated, so "peak" is that of
binning + forecasting (the history in memory included); the resident memory before the timed
part and the peak while generating are reported beside it.  Target (issue 16): under 60 s
single-process for the chosen model (``pooled``; ``gbm`` too), binning included.  Results go to
``bench/results/forecast.md``; ``--backtest`` writes the backtests on the sample year to
``bench/results/forecast_backtest.md`` instead.

    python bench/bench_forecast.py --cases 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("seasonal_naive", "moving_average", "ets", "gbm", "pooled")
#: the model chosen on validation origins (``analytics.backtest.select_model``)
CHOSEN = "pooled"


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mib() -> float:
    """Peak resident memory since the last reset (``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(cases: int, model: str, threads: int) -> None:
    warnings.simplefilter("ignore")
    import geopandas as gpd
    import pandas as pd

    from analytics.forecast import count_series, forecast
    from geodata.history import synthetic_history

    t0 = time.perf_counter()
    frames = [f for _, f in synthetic_history(cases, seed=0)]
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    del frames
    gen_s = time.perf_counter() - t0
    rss_before = _rss_mib()
    peak_gen = _hwm_mib()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak: what follows is the timed part's
    t1 = time.perf_counter()
    panel = count_series(gdf, level="cell", freq="W", cell_size=200.0)
    t2 = time.perf_counter()
    fc = forecast(panel, model=model, horizon=4, n_threads=threads)
    t3 = time.perf_counter()
    peak = _hwm_mib()
    print(
        json.dumps(
            {
                "cases": len(gdf),
                "model": model,
                "threads": threads,
                "cells": int(panel.counts.shape[0]),
                "weeks": int(panel.counts.shape[1]),
                "generate_s": gen_s,
                "bin_s": t2 - t1,
                "forecast_s": t3 - t2,
                "total_s": t3 - t1,
                "rss_before_mib": rss_before,
                "peak_mib": peak,
                "peak_generate_mib": peak_gen,
                "rows": len(fc.frame),
            }
        )
    )


def _write_history(cases: int, path: str) -> str:
    """The same synthetic history written as a GeoParquet export (not timed)."""
    from analytics.parquet import write_months
    from geodata.history import base_locations, history_bounds, synthetic_history

    if not os.path.isdir(path):
        base = base_locations()
        write_months(
            path,
            synthetic_history(cases, seed=0, base=base),
            total_bounds=history_bounds(base),
            rows_per_file=250_000,
        )
    return path


def child_parquet(path: str, model: str, engine: str) -> None:
    """Forecast every 200 m cell of the GeoParquet history on one engine (a child process).

    ``single``: read the export into one GeoDataFrame, then bin and forecast (time includes
    the read); ``dask``: a 2-worker ``LocalCluster`` (1 thread each; started before the timer)
    bins the files, the forecast runs in this process.  Peak memory: this process's and, for
    Dask, each worker's (``VmHWM``, reset before the timed part).
    """
    warnings.simplefilter("ignore")
    from analytics import distributed as D
    from analytics.forecast import forecast

    with contextlib.ExitStack() as stack:
        client = None
        if engine == "dask":
            client = stack.enter_context(D.dask_client(None, n_workers=2, memory_limit="3GiB"))
            client.run(_reset_hwm)
        rss_before = _rss_mib()
        _reset_hwm()
        t0 = time.perf_counter()
        if engine == "dask":
            panel = D.count_series(path, level="cell", cell_size=200.0, scheduler=client)
        else:
            panel = D.count_series(path, level="cell", cell_size=200.0, engine="single")
        t1 = time.perf_counter()
        fc = forecast(panel, model=model, horizon=4)
        t2 = time.perf_counter()
        workers = list(client.run(_hwm_mib).values()) if client is not None else []
    print(
        json.dumps(
            {
                "engine": engine,
                "model": model,
                "cases": int(panel.counts.sum()),
                "cells": int(panel.counts.shape[0]),
                "weeks": int(panel.counts.shape[1]),
                "bin_s": t1 - t0,
                "forecast_s": t2 - t1,
                "total_s": t2 - t0,
                "rss_before_mib": rss_before,
                "peak_mib": _hwm_mib(),
                "worker_peaks_mib": workers,
                "rows": len(fc.frame),
                "digest": _digest(fc.frame),
            }
        )
    )


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _digest(frame) -> str:
    """A hash of the forecast table (equal digests: bit-identical forecasts)."""
    import hashlib

    import pandas as pd

    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).values.tobytes()
    ).hexdigest()[:16]


def run_parquet(path: str, model: str, engine: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child-parquet", path, "--model", model, "--engine", engine],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(cases: int, model: str, threads: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--cases",
            str(cases),
            "--model",
            model,
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def backtests(out: str) -> None:
    """Rolling-origin backtests on the sample year, every level, weekly (and community daily)."""
    warnings.simplefilter("ignore")
    from analytics.backtest import backtest, select_model
    from analytics.forecast import POOLED_PARAMS, count_series
    from geodata.sample import generate

    inc = generate()["incidents"]
    runs = [
        ("community", "W", {}),
        ("grid", "W", {}),
        ("category", "W", {}),
        ("cell", "W", {"cell_size": 200.0}),
        ("cell", "W", {"cell_size": 500.0}),  # for reference: denser cells (no target)
        ("cell", "W", {"cell_size": 1000.0}),
        ("community", "D", {}),
    ]
    lines = [
        "# Backtests of the forecast models on the sample year",
        "",
        "`python bench/bench_forecast.py --backtest`: `analytics.backtest.backtest` on "
        "`geodata.sample.generate()` incidents (5,600 cases, 2025-11-24 .. 2026-11-22), 12 "
        "rolling origins (the last 12 periods before the final one), horizons 1-4, 80 % "
        "intervals.  MASE scaled by each series' in-sample seasonal naive error up to the "
        "origin (season 1 for weeks, 7 for days); `vs snaive` = 1 - MASE / MASE of seasonal "
        "naive (0.20 = 20 % better); `MASE of mean` = MASE of the mean forecast (the "
        "point forecast of gbm is the median of a Poisson with that mean, the others' point "
        "is their mean); `zero` = MASE of forecasting 0 everywhere, the reference that shows "
        "where MASE rewards forecasting nothing (sparse series); `vs zero` = 1 - MASE / MASE "
        "of the zero forecast (at or below 0: no skill beyond forecasting nothing).  Issue 16 "
        "targets, 1 week ahead: the chosen model >= 20 % better than seasonal naive at "
        "community level, >= 10 % at cell level (the grid cells of `grid_cells`, 网格); 80 % "
        "intervals cover 75-85 %.",
        "",
        f"The chosen model is `{CHOSEN}` with {POOLED_PARAMS}: what "
        "`analytics.backtest.select_model` picks on the sample's community weeks from "
        "`analytics.backtest.CANDIDATES` (ets, gbm, and pooled with each parameter set of "
        "`POOLED_GRID`), backtested 1 week ahead from the 12 origins before the reported ones "
        "on the panel cut before the reported targets (it never reads them).",
    ]
    comm = count_series(inc, level="community")
    sel = select_model(comm)
    lines += [
        "",
        "## Model selection (community, weekly)",
        "",
        f"Validation origins {sel.validation[0].date()} .. {sel.validation[-1].date()} "
        f"(weeks {comm.periods.get_loc(sel.validation[0]) + 1}-"
        f"{comm.periods.get_loc(sel.validation[-1]) + 1} of {len(comm.periods)}); the "
        f"selection read periods up to {sel.last_seen.date()} only; the reported backtests "
        "below forecast from the 12 origins after those (their targets: the last 12 weeks).  "
        f"Chosen: `{sel.model}` {sel.params}.",
        "",
        "| model | params | validation MASE | vs snaive | 80 % coverage |",
        "|---|---|---:|---:|---:|",
    ]
    for r in sel.scores.itertuples():
        lines.append(
            f"| {r.model} | {r.params or ''} | {r.mase:.3f} | {r.improvement:+.1%} | "
            f"{r.coverage:.1%} |"
        )
    for level, freq, kw in runs:
        t0 = time.perf_counter()
        panel = count_series(inc, level=level, freq=freq, **kw)
        bt = backtest(panel)
        secs = time.perf_counter() - t0
        v = bt.versus().merge(bt.scores)
        size = f" {kw['cell_size']:.0f} m" if kw else ""
        lines += [
            "",
            f"## {level}{size}, {'weekly' if freq == 'W' else 'daily'}",
            "",
            f"{panel.counts.shape[0]:,} series x {panel.counts.shape[1]} periods, mean "
            f"{panel.counts.mean():.2f} cases per series and period; backtest {secs:.0f} s.",
            "",
            "| model | h | MASE | vs snaive | vs zero | MASE of mean | MAE | 80 % coverage | "
            "scored | zero-scale |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in v.itertuples():
            lines.append(
                f"| {r.model} | {r.horizon} | {r.mase:.3f} | {r.improvement:+.1%} | "
                f"{r.improvement_vs_zero:+.1%} | {r.mase_mean:.3f} | {r.mae:.3f} | "
                f"{r.coverage:.1%} | {r.n:,} | {r.excluded:,} |"
            )
        z = v[v["model"] == CHOSEN]
        for r in z.itertuples():
            lines.append(
                f"| zero (forecast 0) | {r.horizon} | {r.mase_zero:.3f} | "
                f"{1 - r.mase_zero / r.baseline_mase:+.1%} | | | | | | |"
            )
        lo = bt.losses(CHOSEN)
        lines += [
            "",
            f"{CHOSEN} vs seasonal naive by activity band (mean count of the series over the "
            "backtest's actuals):",
            "",
            f"| h | band | series | {CHOSEN} MASE | snaive MASE | zero MASE | vs snaive |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in lo.itertuples():
            lines.append(
                f"| {r.horizon} | {r.band} | {r.series} | {r.mase:.3f} | {r.baseline_mase:.3f} | "
                f"{r.zero_mase:.3f} | "
                f"{r.improvement:+.1%}{' **loses**' if r.loses else ''} |"
            )
        print(level, freq, f"{secs:.0f}s", flush=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")


DASK_HEADING = "## Single process and the 2-worker Dask cluster, from GeoParquet"


def dask_section(cases: int, path: str, models, out: str) -> None:
    """Time and peak memory of both engines on the GeoParquet history; appended to ``out``."""
    _write_history(cases, path)
    rows = []
    for model in models:
        for engine in ("single", "dask", "single", "dask"):
            r = run_parquet(path, model, engine)
            r["load"] = os.getloadavg()[0]
            print(json.dumps(r), flush=True)
            rows.append(r)
    same = all(
        len({r["digest"] for r in rows if r["model"] == m}) == 1 for m in {r["model"] for r in rows}
    )
    model = ", ".join(f"`{m}`" for m in models)
    lines = [
        DASK_HEADING,
        "",
        f"`python bench/bench_forecast.py --dask DIR --cases {cases}`: the same synthetic "
        "history written as a GeoParquet export (`analytics.parquet.write_months`, 250,000 rows "
        "a file, one folder a month; not timed), every 200 m cell forecast 1-4 weeks ahead with "
        f"{model}.  `single`: `analytics.distributed.count_series(engine='single')` reads the "
        "export into one GeoDataFrame and bins it (the read is timed), then the forecast; "
        "`dask`: a `LocalCluster` of 2 worker processes x 1 thread (started before the timer) "
        "bins file by file, the forecast runs in the calling process on the assembled panel.  "
        "Peak = `VmHWM` of the calling process (reset before the timed part); workers = each "
        "worker's peak.  Each engine ran twice, alternating.",
        "",
        "| model | engine | cells x weeks | bin s | forecast s | total s | peak MiB | "
        "worker peaks MiB | forecast digest | load |",
        "|---|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        wp = " + ".join(f"{w:.0f}" for w in r["worker_peaks_mib"]) or "-"
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['cells']:,} x {r['weeks']} | {r['bin_s']:.1f} | "
            f"{r['forecast_s']:.1f} | {r['total_s']:.1f} | {r['peak_mib']:.0f} | {wp} | "
            f"`{r['digest']}` | {r['load']:.1f} |"
        )
    lines += [
        "",
        "Forecasts bit-identical on both engines (equal SHA-256 digests of each model's "
        "forecast table): " + ("yes." if same else "**NO**."),
    ]
    text = open(out).read() if os.path.exists(out) else ""
    text = text.split("\n" + DASK_HEADING)[0].rstrip("\n") + "\n\n"
    with open(out, "w") as f:
        f.write(text + "\n".join(lines) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--model", default=None, help="one model (default: all)")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--backtest", action="store_true", help="backtests on the sample year instead")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "forecast.md"))
    ap.add_argument(
        "--dask",
        metavar="DIR",
        help="the history as GeoParquet in DIR (written if absent): single process vs the "
        "2-worker Dask cluster, appended to --out",
    )
    ap.add_argument("--child-parquet", metavar="DIR")
    ap.add_argument("--engine", default="single")
    a = ap.parse_args()
    if a.child:
        child(a.cases, a.model, a.threads[0])
        return
    if a.child_parquet:
        child_parquet(a.child_parquet, a.model, a.engine)
        return
    if a.dask:
        dask_section(a.cases, a.dask, [a.model] if a.model else [CHOSEN, "gbm"], a.out)
        return
    if a.backtest:
        backtests(os.path.join(HERE, "results", "forecast_backtest.md"))
        return
    rows = []
    for model in [a.model] if a.model else MODELS:
        for th in a.threads if model == "gbm" else [1]:
            r = run(a.cases, model, th)
            r["load"] = os.getloadavg()[0]
            print(json.dumps(r), flush=True)
            rows.append(r)
    lines = [
        "# Forecasting every cell of a case history (single process)",
        "",
        f"Machine: {os.cpu_count()} cores, shared with other work (1-min load average at the end "
        f"of each run in the table); Python {platform.python_version()}.  Workload: "
        f"`geodata.history.synthetic_history({a.cases:,})` (5 years), binned by "
        "`analytics.forecast.count_series(level='cell', freq='W', cell_size=200)` and forecast "
        "1-4 weeks ahead from the last week by `analytics.forecast.forecast` "
        "(`python bench/bench_forecast.py`).  Time = binning + forecast (generating the history "
        "is not timed); peak = the child process's peak resident memory during binning + "
        "forecast (the 1M-case GeoDataFrame held in memory included; reset after generating "
        "it), beside its resident memory before the timed part.  "
        "`threads` = OpenMP threads of the gradient-boosted model.  Target (issue 16): under "
        f"60 s for the chosen model ({CHOSEN}).",
        "",
        "| model | threads | cases | cells x weeks | bin s | forecast s | total s | "
        "RSS before MiB | peak MiB | peak generating MiB | load |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['cases']:,} | {r['cells']:,} x {r['weeks']} | "
            f"{r['bin_s']:.1f} | {r['forecast_s']:.1f} | {r['total_s']:.1f} | "
            f"{r['rss_before_mib']:.0f} | {r['peak_mib']:.0f} | {r['peak_generate_mib']:.0f} | "
            f"{r['load']:.1f} |"
        )
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
