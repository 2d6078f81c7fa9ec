"""``tianya export-parquet`` and ``tianya history-hotspots``: case histories at scale.

Registered on the ``tianya`` group in :mod:`tianya.cli`.
"""

from __future__ import annotations

import os
import time

import click

from tianya.cli_settings import (
    UserError,
    command_settings,
    existing_data,
    progress,
    showing_progress,
    writable,
)

__all__ = ["export_parquet", "history_hotspots"]


@click.command("export-parquet")
@click.argument("layer")
@click.argument("output")
@click.option(
    "--data",
    default=None,
    help="GeoPackage path or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option(
    "--rows-per-file",
    default=1_000_000,
    show_default=True,
    type=int,
    help="Spatial partition size (rows per file within a month).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export_parquet(layer, output, data, rows_per_file, overwrite, quiet):
    """Export LAYER to partitioned GeoParquet 1.1 in OUTPUT (by month, Hilbert order)."""
    from analytics.parquet import export_layer
    from layers.catalogue import get_layer

    get_layer(layer)  # a wrong name is refused before any work
    if os.path.exists(output) and not overwrite:
        raise UserError(f"{output} exists: pass --overwrite to replace it")
    t0 = time.perf_counter()
    data = existing_data(command_settings(data=data))
    res = export_layer(
        data,
        layer,
        output,
        rows_per_file=rows_per_file,
        progress=showing_progress(quiet),
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {res.rows:,} rows of {layer} in {len(res.files)} files "
        f"({len(res.partitions)} time partitions) to {res.path} in "
        f"{time.perf_counter() - t0:.1f} s"
    )


@click.command("history-hotspots")
@click.argument("source")
@click.option(
    "--analysis",
    type=click.Choice(["emerging", "optimized"]),
    default="emerging",
    show_default=True,
)
@click.option(
    "--engine",
    type=click.Choice(["single", "dask"]),
    default="dask",
    show_default=True,
    help="One process, or Dask tasks over the partitions.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address (tcp://host:8786) [a local 2-worker cluster].",
)
@click.option(
    "--workers", default=2, show_default=True, type=int, help="Workers of the local cluster."
)
@click.option("--time-field", default="reported_at", show_default=True)
@click.option("--cell-size", default=200.0, show_default=True, type=float, help="Metres.")
@click.option("--time-step", default="7D", show_default=True)
@click.option(
    "--max-steps",
    default=None,
    type=click.IntRange(min=1),
    help="Refuse a cube of more time steps, checked before any binning task "
    "[analytics.emerging.MAX_STEPS: 1000].",
)
@click.option(
    "--shape",
    type=click.Choice(["fishnet", "hexagon", "communities"]),
    default="fishnet",
    show_default=True,
    help="communities: optimized only (polygons from --data).",
)
@click.option(
    "--data",
    default=None,
    help="Store with the community polygons (communities / bounding polygons).",
)
@click.option("--output", "-o", default=None, help="Write the cells (.parquet or .gpkg).")
def history_hotspots(
    source,
    analysis,
    engine,
    scheduler,
    workers,
    time_field,
    cell_size,
    time_step,
    max_steps,
    shape,
    data,
    output,
):
    """Hot spot analysis of a GeoParquet case history SOURCE (from `tianya export-parquet`).

    emerging: Emerging Hot Spot Analysis of the space-time cube.  optimized: Optimized Hot
    Spot Analysis of communities, or of grid cells bounded by the communities.
    """
    import warnings

    from analytics import distributed as D
    from analytics.emerging import MAX_STEPS
    from analytics.errors import AnalyticsError

    if analysis == "emerging" and shape == "communities":
        raise click.UsageError("emerging hot spots use fishnet or hexagon bins")
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler is for --engine dask")
    if not os.path.exists(source):
        raise UserError(f"{source} does not exist (write it with `tianya export-parquet`)")
    writable(output)
    warnings.filterwarnings("ignore", message="input CRS")
    t0 = time.perf_counter()
    polys = None
    bar = progress(3 if output else 2, f"{analysis} hot spots")
    if analysis == "optimized":
        from layers.catalogue import get_layer
        from layers.stores import open_store

        bar.set_postfix_str("communities")
        store = open_store(existing_data(command_settings(data=data)))
        polys = store.read_frame(get_layer("communities"))
    bar.update()
    bar.set_postfix_str(engine)
    with D.dask_client(
        scheduler if engine == "dask" else "synchronous", n_workers=workers
    ) as runner:
        if analysis == "emerging":
            try:
                res = D.emerging_hot_spots(
                    source,
                    time_field,
                    cell_size=cell_size,
                    time_step=time_step,
                    shape=shape,
                    engine=engine,
                    scheduler=runner,
                    max_steps=max_steps or MAX_STEPS,
                )
            except AnalyticsError as err:
                raise click.ClickException(str(err)) from None
            cells, col = res.locations, "category"
        else:
            kw = (
                {"polygons": polys}
                if shape == "communities"
                else {"cell_size": cell_size, "bounding_polygons": polys}
            )
            res = D.optimized_hot_spots(source, shape, engine=engine, scheduler=runner, **kw)
            cells, col = res.cells, "gi_bin"
    bar.update()
    click.echo(
        f"{analysis} hot spots ({engine}) in {time.perf_counter() - t0:.1f} s: {len(cells):,} cells"
    )
    for k, n in cells[col].value_counts().items():
        if n:
            click.echo(f"  {k!s:<28} {n:>8,}")
    if output:
        out = cells.copy()
        if "category" in out:
            out["category"] = out["category"].astype(str)
        bar.set_postfix_str("writing")
        if output.endswith(".parquet"):
            out.to_parquet(output)
        else:
            out.to_file(output, driver="GPKG" if output.endswith(".gpkg") else None)
        bar.update()
        click.echo(f"wrote {os.path.abspath(output)}")
    bar.close()
