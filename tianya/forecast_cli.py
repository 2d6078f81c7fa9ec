"""``tianya forecast``: forecasts of case counts per cell, grid cell, community or major class
(issue 16).

Registered on the ``tianya`` group in :mod:`tianya.cli`.  Reads the incidents of the store
(``--data``: GeoPackage or PostGIS) or a GeoParquet case history (``--history``, from
``tianya export-parquet``; ``--engine dask`` bins it file by file on a Dask cluster,
:func:`analytics.distributed.count_series`), forecasts every series with
:func:`analytics.forecast.forecast` and writes CSV or GeoJSON.
"""

from __future__ import annotations

import os
import time

import click

from tianya.cli_settings import UserError, command_settings, existing_data, writable

__all__ = ["forecast_command"]

_FIELDS = ("reported_at", "community_code", "major_class")


def _store_cases(data, time_field, major_class, community):
    """The store's incidents (key, time, community, class), filtered; and the store."""
    from layers.catalogue import get_layer
    from layers.query import Query
    from layers.stores import open_store

    store = open_store(existing_data(command_settings(data=data)))
    layer = get_layer("incidents")
    props = [layer.key, time_field, "community_code", "grid_code", "major_class"]
    frame = store.read_frame(layer, Query(properties=list(dict.fromkeys(props)), limit=0))
    if major_class is not None:
        frame = frame[frame["major_class"] == major_class]
    if community is not None:
        frame = frame[frame["community_code"] == community]
    if len(frame) == 0:
        raise UserError("no incident matches --major-class / --community")
    return frame, store


def _with_geometry(frame, panel, level, store):
    """The forecast table with the cells' / grid cells' / communities' polygons (CRS84)."""
    import geopandas as gpd

    if level == "cell" and panel.cells is not None:
        cells = panel.cells.assign(key=panel.keys.to_numpy())[["key", "geometry"]]
        return gpd.GeoDataFrame(cells.merge(frame, on="key"), crs=panel.cells.crs).to_crs(4326)
    if level in ("community", "grid") and store is not None:
        from layers.catalogue import get_layer
        from layers.query import Query

        layer_id, code = (
            ("communities", "code") if level == "community" else ("grid_cells", "grid_code")
        )
        com = store.read_frame(get_layer(layer_id), Query(properties=[code, "name"], limit=0))
        com = com.rename(columns={code: "key"}).astype({"key": str})
        out = frame.merge(com, on="key", how="left")
        return gpd.GeoDataFrame(out, geometry="geometry", crs=com.crs).to_crs(4326)
    return gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs=4326)


@click.command("forecast")
@click.option(
    "--data",
    default=None,
    help="GeoPackage path or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option(
    "--history",
    default=None,
    help="A GeoParquet case history (from `tianya export-parquet`) instead of the store.",
)
@click.option(
    "--engine",
    type=click.Choice(["single", "dask"]),
    default="single",
    show_default=True,
    help="With --history: one process, or Dask tasks over the files.",
)
@click.option("--scheduler", default=None, help="Dask scheduler address [a local cluster].")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--level",
    type=click.Choice(["cell", "grid", "community", "category"]),
    default="community",
    show_default=True,
)
@click.option(
    "--model",
    type=click.Choice(["seasonal_naive", "moving_average", "ets", "gbm", "pooled"]),
    default="pooled",
    show_default=True,
)
@click.option("--horizon", default=1, show_default=True, type=click.IntRange(1, 4))
@click.option(
    "--interval-level",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0.5, 0.99),
    help="Nominal coverage of the prediction intervals.",
)
@click.option("--freq", type=click.Choice(["W", "D"]), default="W", show_default=True)
@click.option(
    "--origin",
    default=None,
    help="First day (YYYY-MM-DD) of the last period treated as observed [the last period].",
)
@click.option("--cell-size", default=200.0, show_default=True, type=click.FloatRange(min=1))
@click.option("--time-field", default="reported_at", show_default=True)
@click.option(
    "--key-field",
    default=None,
    help="With --history: the column naming a community / category series "
    "[community_code / major_class].",
)
@click.option("--major-class", default=None, help="Only cases of this major class (store).")
@click.option("--community", default=None, help="Only cases of this community code (store).")
@click.option(
    "--warnings/--no-warnings",
    default=True,
    show_default=True,
    help="Early warnings (analytics.early_warning): listed, and a warning column (its kind).",
)
@click.option(
    "--output", "-o", default=None, help="Write the forecasts (.csv or .geojson / .json)."
)
def forecast_command(
    data,
    history,
    engine,
    scheduler,
    workers,
    level,
    model,
    horizon,
    interval_level,
    freq,
    origin,
    cell_size,
    time_field,
    key_field,
    major_class,
    community,
    warnings,
    output,
):
    """Forecast next periods' cases per cell, grid cell, community or class; write CSV/GeoJSON."""
    import warnings as py_warnings

    import pandas as pd

    from analytics import distributed as D
    from analytics.errors import AnalyticsError
    from analytics.forecast import count_series, forecast

    if output and not output.endswith((".csv", ".geojson", ".json")):
        raise click.UsageError("--output must end in .csv, .geojson or .json")
    if history is None and (engine == "dask" or key_field):
        raise click.UsageError("--engine dask and --key-field read a GeoParquet --history")
    if history is not None and (major_class or community):
        raise click.UsageError(
            "--major-class / --community filter the store's incidents, not a --history"
        )
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler is for --engine dask")
    if history is not None and not os.path.exists(history):
        raise UserError(f"{history} does not exist (write it with `tianya export-parquet`)")
    writable(output)
    py_warnings.filterwarnings("ignore", message="input CRS")
    t0 = time.perf_counter()
    store = None
    try:
        if history is None:
            cases, store = _store_cases(data, time_field, major_class, community)
            panel = count_series(cases, time_field, level=level, freq=freq, cell_size=cell_size)
        else:
            with D.dask_client(
                scheduler if engine == "dask" else "synchronous", n_workers=workers
            ) as runner:
                panel = D.count_series(
                    history,
                    time_field,
                    level=level,
                    freq=freq,
                    key_field=key_field,
                    cell_size=cell_size,
                    engine=engine,
                    scheduler=runner,
                )
        fc = forecast(
            panel,
            model=model,
            horizon=horizon,
            level=interval_level,
            origin=origin if origin is not None else -1,
        )
        ew = None
        if warnings:
            from analytics.early_warning import early_warnings

            ew = early_warnings(panel, fc, horizon=horizon).frame
    except AnalyticsError as err:
        raise click.ClickException(str(err)) from None
    frame = fc.frame.assign(key=lambda f: f["key"].astype(str) if level != "cell" else f["key"])
    if ew is not None:
        kinds: dict = {}
        for k, h, kind in zip(ew["key"].astype(str), ew["horizon"], ew["kind"], strict=True):
            kinds.setdefault((k, int(h)), kind)  # most urgent first
        idx = zip(frame["key"].astype(str), frame["horizon"], strict=True)
        marks = pd.Series([kinds.get((k, int(h))) for k, h in idx], frame.index, dtype=object)
        frame = frame.assign(warning=marks)
    first = frame[frame["horizon"] == 1]
    click.echo(
        f"{model} forecast of {len(panel.keys):,} {level} series ({freq}, "
        f"{panel.counts.shape[1]} periods to {first['origin'].iloc[0].date()}) in "
        f"{time.perf_counter() - t0:.1f} s; next period {first['period'].iloc[0].date()}: "
        f"{first['mean'].sum():,.1f} cases expected"
    )
    for r in first.nlargest(5, "mean").itertuples():
        click.echo(f"  {r.key!s:<16} {r.mean:8.2f}  [{r.lo:.1f}, {r.hi:.1f}]")
    if ew is not None:
        click.echo(f"{len(ew):,} warnings in {horizon} period(s) ahead")
        for w in ew.head(5).itertuples():
            click.echo(f"  {w.key!s:<16} {w.kind}: {w.reason}")
    if output:
        frame = frame.assign(
            origin=frame["origin"].dt.strftime("%Y-%m-%d"),
            period=frame["period"].dt.strftime("%Y-%m-%d"),
        )
        if output.endswith(".csv"):
            frame.to_csv(output, index=False)
        else:
            gdf = _with_geometry(frame, panel, level, store)
            with open(output, "w", encoding="utf-8") as f:
                f.write(gdf.to_json(drop_id=True, na="null"))
        click.echo(f"wrote {len(frame):,} rows to {os.path.abspath(output)}")
