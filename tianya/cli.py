"""The ``tianya`` command.

``tianya serve`` is the main job: it starts gunicorn (a production WSGI server) on the
app, generating the sample GeoPackage first when the default one (``geodata/tianya.gpkg``)
is missing, as on a fresh clone (``make serve``). Any other ``--data`` path must exist,
unless ``--generate`` asks for the sample to be written there: a mistyped path is refused,
not filled with synthetic data.

Every command starts from one :class:`~tianya.settings.Settings` object, read from the
``TIANYA_`` variables and checked before the command does anything (a bad value is a
one-line error naming it, exit status 2); options such as ``--data`` override the
matching setting. Nothing here reads or writes the environment.

A user's mistake (a wrong layer name, a missing ``--data`` file, an output that exists or
cannot be written, a bad week, an unreachable PostGIS) ends with one line, ``Error: …``,
and exit status 1 (2 for bad settings, options and a missing ``--data`` GeoPackage, as
click's usage errors); ``tianya --debug`` shows the traceback instead. Long commands show
progress bars on stderr when it is a terminal (``tianya --quiet``: none).
"""

from __future__ import annotations

import functools
import logging
import os
import time

import click

from layers.store import DEFAULT_GPKG
from tianya.cli_settings import (
    DEBUG,
    QUIET,
    DataMissing,
    UserError,
    command_settings,
    existing_data,
    load_settings,
    progress,
    showing_progress,
    user_message,
    writable,
)
from tianya.settings import Settings, markdown_table, use


class Group(click.Group):
    """The ``tianya`` group: a user's mistake in any command ends with one line.

    :func:`~tianya.cli_settings.user_message` tells mistakes from bugs; a bug, or any
    error under ``--debug``, keeps its traceback.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except Exception as err:
            message = user_message(err)
            if message is None or ctx.meta.get(DEBUG):
                raise
            raise UserError(message) from None


@click.group(cls=Group)
@click.version_option(package_name="tianya-gis")
@click.option("--debug", is_flag=True, help="Show the traceback of an error, not one line.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_context
def main(ctx, debug=False, quiet=False):
    """Tianya command-center GIS: sample data, OGC API server, analytics.

    Settings are TIANYA_ environment variables (`tianya settings` lists them).
    """
    ctx.meta[DEBUG], ctx.meta[QUIET] = debug, quiet
    if not debug and ctx.invoked_subcommand != "serve":
        # the pool warns of every failed attempt; the command's one line says it all
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    ctx.obj = load_settings()  # read and checked before any command works


@main.command()
@click.option("--output", "-o", default=None, help="GeoPackage to write [geodata/tianya.gpkg].")
@click.option("--seed", default=None, type=int, help="Random seed (same seed, same data).")
@click.option(
    "--incidents",
    "n_incidents",
    default=None,
    type=click.IntRange(1, 5_000_000),
    help="Number of incidents (default: one year, about 5,600; 100k-1M for benchmarks).",
)
@click.option(
    "--rasters/--no-rasters",
    "with_rasters",
    default=True,
    show_default=True,
    help="Also write the DEM and flood-depth COGs (see `tianya rasters`).",
)
def generate(output, seed, n_incidents, with_rasters=True):
    """Generate the synthetic Tianya sample data into a GeoPackage."""
    from geodata.sample import DEFAULT_SEED, write_sample

    path = os.path.abspath(writable(output or DEFAULT_GPKG))
    tmp = path + ".tmp"
    for p in (tmp, tmp + "-wal", tmp + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    from layers.catalogue import LAYERS
    from layers.gpkg import GeoPackageStore

    t0 = time.perf_counter()
    with progress(len(LAYERS), "sample data", unit="layer") as bar:

        class Store(GeoPackageStore):
            """The GeoPackage, counting the layers written on the bar."""

            def write_frame(self, layer, frame, *args, **kwargs):
                bar.set_postfix_str(layer.id)
                try:
                    return super().write_frame(layer, frame, *args, **kwargs)
                finally:
                    bar.update()

        bar.set_postfix_str("generating")
        store = Store(tmp)
        counts = write_sample(
            tmp, seed=DEFAULT_SEED if seed is None else seed, n_incidents=n_incidents, store=store
        )
        from tianya.opinion_poller import ingest_sample  # posts: understood on ingest

        bar.set_postfix_str("public_opinion")
        made = ingest_sample(store, DEFAULT_SEED if seed is None else seed)
        counts.update(public_opinion=made.posts, opinion_topics=made.topics_new)
        store.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
    for p in (tmp + "-wal", tmp + "-shm", path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    os.replace(tmp, path)  # a reader never sees a half-written file
    for lid, n in counts.items():
        click.echo(f"  {lid:<20} {n:>9,}")
    click.echo(f"wrote {path} in {time.perf_counter() - t0:.1f} s (synthetic sample data)")
    if with_rasters:
        ctx = click.get_current_context()
        ctx.invoke(rasters, data=path, output=None, seed=seed)


@main.command()
@click.option(
    "--data",
    default=None,
    help="GeoPackage or postgresql:// URL whose rivers and "
    "waterlogging points the terrain follows.",
)
@click.option(
    "--output",
    "-o",
    default=None,
    help="Folder [$TIANYA_RASTERS, else rasters/ beside the GeoPackage].",
)
@click.option("--seed", default=None, type=int, help="Terrain noise seed.")
def rasters(data, output, seed):
    """Generate the synthetic DEM and flood-depth scenarios as Cloud-Optimized GeoTIFFs."""
    from geodata.rasters import default_dir, write_rasters_from_store
    from geodata.sample import DEFAULT_SEED

    settings = command_settings(data=data)
    data = existing_data(settings)
    folder = output or default_dir(data, settings.rasters)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"{folder} is a file: --output is the folder of the COGs")
    t0 = time.perf_counter()
    with progress(1, "DEM and flood scenarios") as bar:
        paths = write_rasters_from_store(data, folder, seed=DEFAULT_SEED if seed is None else seed)
        bar.update()
    click.echo(
        f"wrote {len(paths)} COGs to {os.path.dirname(paths['dem'])} in "
        f"{time.perf_counter() - t0:.1f} s (synthetic DEM and flood scenarios)"
    )


@main.command()
@click.option("--output", "-o", default=None, help="Where to write [server_config.yml].")
@click.option("--check", is_flag=True, help="Fail if the file differs from the catalogue.")
def config(output, check):
    """Write server_config.yml from the layer catalogue."""
    from tianya import config as cfg

    path = output or cfg.CONFIG_PATH
    if check:
        with open(path, encoding="utf-8") as fh:
            if fh.read() != cfg.render():
                raise click.ClickException(f"{path} is out of date: run `tianya config`")
        click.echo(f"{path} matches the catalogue")
        return
    click.echo(f"wrote {cfg.write(path)}")


@main.command("load-postgis")
@click.argument("url", required=False)
@click.option("--data", "gpkg", default=None, help="Source GeoPackage [geodata/tianya.gpkg].")
@click.option(
    "--layers",
    "layer_ids",
    default=None,
    help="Comma-separated layer ids [every catalogue layer in the GeoPackage].",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def load_postgis(url, gpkg, layer_ids, quiet):
    """Copy a GeoPackage into PostGIS (COPY, one progress bar per layer).

    URL is a postgresql:// URL, store options allowed (``?schema=demo``); default
    $TIANYA_DATA when that is one. Then serve it with ``TIANYA_DATA=URL tianya serve``.
    """
    from layers.pgload import load_gpkg

    url = url or command_settings().data
    if not url or "://" not in url:
        raise click.UsageError("give a postgresql:// URL (or set TIANYA_DATA to one)")
    src = os.path.abspath(gpkg or DEFAULT_GPKG)
    if not os.path.exists(src):
        raise click.UsageError(f"{src} does not exist (run `tianya generate`)")
    t0 = time.perf_counter()
    ids = layer_ids.split(",") if layer_ids else None
    counts = load_gpkg(src, url, ids, progress=showing_progress(quiet))
    dt = time.perf_counter() - t0
    for lid, n in counts.items():
        click.echo(f"  {lid:<20} {n:>9,}")
    total = sum(counts.values())
    click.echo(
        f"copied {total:,} rows from {src} in {dt:.1f} s ({total / max(dt, 1e-9):,.0f} rows/s)"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Threads per worker (many: a slow client holds one for at most $TIANYA_BODY_SECONDS).",
)
@click.option(
    "--data",
    default=None,
    help="GeoPackage path or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option(
    "--generate",
    "generate_missing",
    is_flag=True,
    help="Write the synthetic sample to a --data GeoPackage that does not exist "
    "(the default geodata/tianya.gpkg is generated when missing without it).",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="pygeoapi config [server_config.yml].",
)
def serve(host, port, workers, threads, data, config_path, generate_missing=False):
    """Serve the OGC API with gunicorn.

    The default GeoPackage (geodata/tianya.gpkg) is generated when it is missing; any
    other path must exist unless ``--generate`` asks for the sample there. With a
    postgresql:// URL (``--data`` or $TIANYA_DATA) nothing is generated: the tables must
    exist (``tianya load-postgis``).
    """
    from geodata.rasters import default_dir, rasters_exist
    from tianya import compat
    from tianya.config import CONFIG_PATH
    from tianya.worker import Server

    public_host = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    settings = command_settings(defaults={"url": f"http://{public_host}:{port}"}, data=data)
    try:
        compat.check()  # refuse a pygeoapi our replacements were not written for
    except compat.IncompatiblePygeoapi as err:
        raise click.ClickException(str(err)) from None
    data = settings.store_location()
    if "://" not in data and not os.path.exists(data):
        if not (generate_missing or data == os.path.abspath(DEFAULT_GPKG)):
            raise DataMissing(
                f"GeoPackage {data} does not exist: check --data or $TIANYA_DATA, or pass "
                "--generate to write the synthetic sample there"
            )
        click.echo(f"{data} is missing: generating the sample data first")
        ctx = click.get_current_context()
        ctx.invoke(generate, output=data)
    if "://" in data:
        _check_store(data)  # reachable, and loaded: one line now, not a traceback later
    raster_dir = default_dir(data, settings.rasters)
    if not rasters_exist(raster_dir):
        click.echo(f"rasters are missing in {raster_dir}: generating them")
        click.get_current_context().invoke(rasters, data=data, output=raster_dir, seed=None)
    settings = use(settings.replace(data=data, rasters=raster_dir))
    config_path = os.path.abspath(config_path or CONFIG_PATH)
    _openapi_once(settings, config_path)
    click.echo(f"serving {settings.url} from {data}")
    notice = url_notice(host, settings.url)
    if notice:
        click.echo(notice, err=True)
    # each worker builds the app from this settings object, which it has by fork
    Server(
        functools.partial(_create_app, config_path, settings),
        {
            "bind": [f"{host}:{port}"],
            "workers": workers,
            "threads": threads,
            "worker_class": "tianya.worker.Worker",  # gthread with a header deadline
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": "-",
            # no query string in the log: filters may name people, and keys must never show
            "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms',
            # gunicorn's control socket has one default path per user: two servers on a host
            # would share it, and we do not use gunicornc
            "control_socket_disable": True,
        },
    ).run()


def _check_assets(assets: str, output: str) -> None:
    """``--assets``: inline, cdn, a URL (or a path on the serving host, ``/…``), or a folder
    beside the map that exists (a typo would write a map without Leaflet)."""
    if assets in ("inline", "cdn") or "://" in assets or assets.startswith("/"):
        return
    folder = os.path.join(os.path.dirname(os.path.abspath(output)), assets)
    if not os.path.isdir(folder):
        raise click.BadParameter(
            f"{assets!r} is not inline, cdn, a URL, a /path or a folder beside {output} "
            f"({folder} does not exist)",
            param_hint="'--assets'",
        )


def url_notice(host: str, url: str) -> str | None:
    """A warning when the server listens beyond this machine but its links name this one.

    Every link and every page's base map names ``url`` (``TIANYA_URL``): opened from another
    machine of the intranet, ``localhost`` is that machine, so the pages would have no base
    map and their links would lead nowhere.

    >>> url_notice("127.0.0.1", "http://localhost:5000") is None
    True
    >>> url_notice("0.0.0.0", "http://10.1.2.3:5000") is None
    True
    >>> url_notice("0.0.0.0", "http://localhost:5000").startswith("Note:")
    True
    """
    from urllib.parse import urlsplit

    loopback = ("localhost", "127.0.0.1", "::1")
    if host in loopback or urlsplit(url).hostname not in loopback:
        return None
    return (
        f"Note: listening on {host}, but links and the pages' base map name {url}: other "
        "machines must be given the address they reach this one by, e.g. "
        "TIANYA_URL=http://10.1.2.3:5000"
    )


def _check_store(url: str) -> None:
    """The store at ``url`` answers and holds the incidents (else our error, one line)."""
    from layers.catalogue import get_layer
    from layers.stores import open_store

    pool_log = logging.getLogger("psycopg.pool")  # warns of every failed attempt
    level = pool_log.level
    pool_log.setLevel(max(level, logging.ERROR))
    try:
        with open_store(url) as store:  # closed: the workers must not inherit its connections
            store.require_layer(get_layer("incidents"))
    finally:
        pool_log.setLevel(level)


def _create_app(config_path: str, settings: Settings):
    """The app of one gunicorn worker."""
    from tianya.app import create_app

    return create_app(config_path, settings=settings, schedule=True)


def _openapi_once(settings: Settings, config_path: str) -> None:
    """Generate pygeoapi's OpenAPI document once for all workers (they find it cached).

    In a short-lived child process: generating it opens every provider's store, and the
    workers forked from this process must not inherit open connections.
    """
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(
        target=_write_openapi, args=(settings, config_path), name="tianya-openapi"
    )
    child.start()
    child.join()
    if child.exitcode:
        raise click.ClickException(
            "pygeoapi's OpenAPI document could not be generated (the error is above)"
        )


def _write_openapi(settings: Settings, config_path: str) -> None:
    from tianya import compat

    compat.configure(settings, config_path)


@main.command("map")
@click.argument("kind", type=click.Choice(["layers", "hotspots", "choropleth", "key_tasks"]))
@click.option(
    "--data",
    default=None,
    help="GeoPackage or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option("--output", "-o", default=None, help="HTML file [tianya-<kind>.html].")
@click.option(
    "--basemap",
    "basemap_id",
    default="tianya",
    show_default=True,
    type=click.Choice(["tianya", "osm", "tianditu", "tianditu_img", "amap", "amap_img"]),
    help="tianya: our own base map (district, sea, communities, rivers, buildings, names) "
    "drawn from the data into the file: the map works offline and asks no other host. "
    "The others are online tile services: osm; tianditu, tianditu_img (need "
    "$TIANYA_TIANDITU_KEY); amap, amap_img (overlays moved to GCJ-02; $TIANYA_AMAP_KEY if "
    "the tile URL has {key}). $TIANYA_TILES_<ID> replaces a base map's tile URL (e.g. an "
    "intranet tile server).",
)
@click.option("--lang", default="both", show_default=True, type=click.Choice(["both", "zh", "en"]))
@click.option(
    "--layers",
    "layer_ids",
    default=None,
    help="Comma-separated layer ids for `layers` [the seven thematic layers].",
)
@click.option(
    "--days",
    default=None,
    type=click.IntRange(1, 3660),
    help="Only incidents reported in the last N days of the data.",
)
@click.option(
    "--max-points",
    default=2000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Above this many features a layer is aggregated into cells.",
)
@click.option(
    "--restricted",
    is_flag=True,
    help="Draw non-public layers (poverty relief) as points (still no personal fields).",
)
@click.option(
    "--assets",
    default="inline",
    show_default=True,
    help="inline (Leaflet in the file: offline), cdn (Leaflet from the internet), or a URL "
    "prefix serving the vendor files.",
)
def map_(kind, data, output, basemap_id, lang, layer_ids, days, max_points, restricted, assets):
    """Write a static folium map: the seven layers, hot spots, community choropleths or the
    key tasks (coloured by status, milestones as of now, cases inside each area in the 90
    days before and after its start).

    With the default options the file is self-contained: our base map and Leaflet are in
    it, and opening it makes no request to any other host.
    """
    import pandas as pd

    from analytics import maps
    from layers.catalogue import THEMATIC, get_layer
    from layers.stores import open_store

    if kind != "layers":
        for given, name in ((layer_ids, "--layers"), (restricted, "--restricted")):
            if given:
                raise click.UsageError(f"{name} is for `tianya map layers`, not {kind}")
    settings = command_settings(data=data)
    ids = layer_ids.split(",") if layer_ids else list(THEMATIC)
    need = sorted(set(ids if kind == "layers" else ["incidents"]) | {"communities"})
    layers = [get_layer(i) for i in need]  # a wrong name is refused before any work
    output = writable(output or f"tianya-{kind}.html")
    _check_assets(assets, output)
    store = open_store(existing_data(settings))
    # the base map ("tianya") is drawn from the store; tiles and keys are the online ones
    base = {"tiles": settings.tiles, "keys": settings.basemap_keys(), "base": store}
    t0 = time.perf_counter()
    frames = {}
    with progress(len(layers) + 2, f"map {kind}") as bar:
        for layer in layers:
            bar.set_postfix_str(layer.id)
            frames[layer.id] = store.read_frame(layer)
            bar.update()
        if days and "incidents" in frames:
            inc = frames["incidents"]
            t = pd.to_datetime(inc["reported_at"], utc=True)
            frames["incidents"] = inc[t >= t.max() - pd.Timedelta(days=days)]
        bar.set_postfix_str("drawing")
        if kind == "layers":
            m = maps.layers_map(
                frames,
                layers=ids,
                lang=lang,
                basemap_id=basemap_id,
                max_points=max_points,
                restricted=restricted,
                **base,
            )
        elif kind == "hotspots":
            m = maps.hotspot_map(
                frames["incidents"],
                communities=frames["communities"],
                basemap_id=basemap_id,
                lang=lang,
                **base,
            )
        elif kind == "key_tasks":
            import datetime as dt

            from layers import key_task_figures

            tasks, milestones = key_task_figures.tables(store)
            m = maps.key_tasks_map(
                tasks,
                milestones,
                now=dt.datetime.now(dt.UTC),
                counts=key_task_figures.area_counts(tasks, frames["incidents"]),
                communities=frames["communities"],
                basemap_id=basemap_id,
                lang=lang,
                **base,
            )
        else:
            m = maps.choropleth_map(
                frames["incidents"], frames["communities"], basemap_id=basemap_id, lang=lang, **base
            )
        bar.update()
        bar.set_postfix_str("writing")
        out = maps.save_map(m, output, assets=assets)
        bar.update()
    click.echo(f"wrote {out.path}: {out.size / 1e6:.2f} MB in {time.perf_counter() - t0:.1f} s")


@main.command()
@click.option(
    "--week",
    default=None,
    help="ISO week in Beijing time, e.g. 2026-W47 [the latest week with cases].",
)
@click.option(
    "--data",
    default=None,
    help="GeoPackage or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option("--output", "-o", default=None, help="HTML file [tianya-report-<week>.html].")
@click.option("--pdf", "pdf_path", default=None, help="Also write a PDF (needs weasyprint).")
@click.option("--json", "json_path", default=None, help="Also write the figures as JSON.")
def report(week, data, output, pdf_path, json_path):
    """Write the weekly report (HTML, optionally PDF and JSON figures)."""
    import datetime as dt
    import json

    from analytics.opinion.hot import read_opinion
    from analytics.report import week_bounds, weekly_report
    from layers.catalogue import get_layer
    from layers.stores import open_store

    for path in (output, pdf_path, json_path):
        writable(path)  # before the work, not after it
    store = open_store(existing_data(command_settings(data=data)))
    t0 = time.perf_counter()
    steps = ["incidents", "communities", "report", "html"] + ["pdf"] * bool(pdf_path)
    with progress(len(steps), "report") as bar:
        frames = {}
        for lid in ("incidents", "communities"):
            bar.set_postfix_str(lid)
            frames[lid] = store.read_frame(get_layer(lid))
            bar.update()
        bar.set_postfix_str("figures and charts")
        from layers import key_task_figures

        # the posts of the report week and the week before (all of them without --week)
        opinion_since = None if week is None else week_bounds(week)[0] - dt.timedelta(days=7)

        rep = weekly_report(
            frames["incidents"],
            frames["communities"],
            week,
            key_tasks=(*key_task_figures.tables(store), key_task_figures.audit(store)),
            opinion=read_opinion(store, since=opinion_since),  # the week's topics (issue 14)
        )
        bar.update()
        path = output or f"tianya-report-{rep.week}.html"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(rep.html)
        bar.update()
        if pdf_path:
            bar.set_postfix_str("pdf")
            rep.pdf(pdf_path)
            bar.update()
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(rep.figures, fh, ensure_ascii=False, indent=1)
    click.echo(rep.summary())  # the week's days, each rate with its definition and as-of
    click.echo(
        f"wrote {path}"
        + (f" and {pdf_path}" if pdf_path else "")
        + f" in {time.perf_counter() - t0:.1f} s"
    )


@main.command()
@click.option(
    "--data",
    default=None,
    help="GeoPackage or postgresql:// URL [$TIANYA_DATA or geodata/tianya.gpkg].",
)
@click.option(
    "--now",
    default=None,
    help="The instant to run the clock at, ISO 8601 with its offset, e.g. "
    "2026-11-23T09:00+08:00 [now].",
)
def escalate(data, now):
    """Run the key-task supervision clock: warnings and accountability entries, each once.

    Run it every day (cron or a systemd timer); a second run at the same instant records
    nothing new (layers.key_tasks.escalate).
    """
    import datetime as dt

    from layers import key_tasks
    from layers.stores import open_store

    if now is None:
        at = dt.datetime.now(dt.UTC)
    else:
        try:
            at = dt.datetime.fromisoformat(now)
        except ValueError:
            raise click.BadParameter(
                f"{now!r} is not an ISO 8601 instant", param_hint="--now"
            ) from None
        if at.tzinfo is None:
            raise click.BadParameter(
                f"{now!r} has no offset: give one, e.g. {now}+08:00", param_hint="--now"
            )
    store = open_store(existing_data(command_settings(data=data)))
    made = key_tasks.escalate(store, at)
    levels = [m["level"] for m in made]
    click.echo(
        f"{at.isoformat()}: {levels.count('warning')} warning(s), "
        f"{levels.count('accountability')} accountability entr(y/ies) recorded"
    )
    for m in made:
        what = "the task's deadline" if m["seq"] == 0 else f"milestone {m['seq']}"
        click.echo(f"  {m['task_no']} {what} (due {m['due']}): {m['level']}")


@main.command("monitor-opinion")
@click.option(
    "--source", required=True, help="JSON or RSS/Atom feed: a file path or an http(s) URL."
)
@click.option("--data", default=None, help="GeoPackage or postgresql:// URL [$TIANYA_DATA].")
@click.option("--every", default="20m", show_default=True, help="Polling interval (20m, 1h, 90s).")
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option(
    "--platform",
    default="forum",
    show_default=True,
    type=click.Choice(["weibo", "forum", "wechat"]),
    help="Platform of RSS/Atom entries that name none.",
)
@click.option(
    "--no-cases", is_flag=True, help="Group posts into topics but open no cases from them."
)
def monitor_opinion(source, data, every, once, platform, no_cases):
    """Poll a feed of online posts: store new posts, topics, and cases from actionable topics.

    Idempotent (a post seen twice is stored once) and resumable: each batch of posts commits
    with its topics, cases and state, so a crash loses nothing and doubles nothing. Entries
    that are not posts are refused with a log line naming each and why (issue 14).
    """
    import logging

    from analytics.opinion.ingest import CaseRule
    from layers.errors import InvalidParameter
    from layers.stores import open_store
    from tianya import opinion_poller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        interval = opinion_poller.parse_every(every)
    except InvalidParameter as e:
        raise click.BadParameter(str(e), param_hint="--every") from None
    store = open_store(existing_data(command_settings(data=data)))
    try:
        res = opinion_poller.run(
            store,
            source,
            every=interval,
            once=once,
            platform=platform,
            cases=None if no_cases else CaseRule(),
        )
    except OSError as e:  # only with --once: a loop logs a failed poll and polls again
        raise click.ClickException(f"cannot read the feed {source}: {e.strerror or e}") from None
    except InvalidParameter as e:
        raise click.ClickException(f"feed {source}: {e}") from None
    click.echo(
        f"{res.entries} entries: {res.stored} new post(s) stored, {len(res.rejected)} refused, "
        f"{len(res.cases)} case(s) opened"
    )


@main.command("settings")
@click.option(
    "--markdown",
    is_flag=True,
    help="Print the README's table of every setting (variable, meaning, default) instead.",
)
def settings_(markdown):
    """Print the settings in effect (TIANYA_ variables), keys and passwords masked."""
    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    for name, text in command_settings().masked().items():
        click.echo(f"{name}={text}")


# case histories at scale: GeoParquet exports and the Dask engine (tianya/history_cli.py)
from tianya.history_cli import export_parquet, history_hotspots  # noqa: E402

main.add_command(export_parquet)
main.add_command(history_hotspots)

# forecasts of case counts (tianya/forecast_cli.py)
from tianya.forecast_cli import forecast_command  # noqa: E402

main.add_command(forecast_command)


if __name__ == "__main__":
    main()
