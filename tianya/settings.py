r"""The settings of the server and the CLI: one typed object, the only reader of the environment.

Every setting is a ``TIANYA_…`` environment variable (:data:`FIELDS` lists them with their
defaults; the README's table is made from it). :meth:`Settings.from_env` reads and checks
them all at once, naming each bad value, so a server refuses to start instead of failing on
the first request that needs one. The app (:func:`tianya.app.create_app`), the CLI and the
pygeoapi plugins take the object they are given (plugins, which pygeoapi builds by name,
ask :func:`current`); the library (``layers``, ``analytics``, ``geodata``) is handed plain
values and never reads the environment.

>>> s = Settings.from_env({"TIANYA_PROCESS_WORKERS": "3"})
>>> s.process_workers, s.heavy_reads
(3, 2)
>>> try:
...     Settings.from_env({"TIANYA_PROCESS_WORKERS": "many", "TIANYA_HEAVY_READS": "-1"})
... except SettingsError as err:
...     print(*str(err).split("; "), sep="\n")
TIANYA_PROCESS_WORKERS must be an integer, got 'many'
TIANYA_HEAVY_READS must be at least 0, got '-1'
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from layers import rules
from layers.store import DEFAULT_GPKG

__all__ = [
    "FIELDS",
    "Settings",
    "SettingsError",
    "current",
    "data_location",
    "env_name",
    "markdown_table",
    "use",
]

PREFIX = "TIANYA_"
LOGGER = logging.getLogger(__name__)


class SettingsError(ValueError):
    """One or more settings have values that cannot be used (the message names each)."""


def _setting(
    default,
    doc: str,
    *,
    least: float | None = None,
    shown: str | None = None,
    env: str | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
    file: bool = False,
    tile_url: bool = False,
):
    """A settings field: its default, its README text, its lower bound, its shown default.

    ``secret`` values are masked by :meth:`Settings.masked`; a ``file`` must exist; a
    ``tile_url`` is an http(s) URL template with ``{z}``, ``{x}`` and ``{y}``.
    """
    meta = {
        "doc": doc,
        "least": least,
        "shown": shown,
        "env": env,
        "choices": choices,
        "secret": secret,
        "file": file,
        "tile_url": tile_url,
    }
    if isinstance(default, dict | tuple) or callable(default):
        factory = default if callable(default) else (lambda d=default: type(d)(d))
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _run_dir() -> str:
    return f"/tmp/tianya-runs-{os.getuid()}"


@dataclass(frozen=True)
class Settings:
    """Every ``TIANYA_`` setting, typed and checked. Build it with :meth:`from_env`.

    Attributes are named after the variable without its prefix (``TIANYA_PROCESS_WORKERS``
    is ``process_workers``); the budgets of the analysis processes are ``max_*``.
    """

    # --- data and links
    data: str = _setting(
        DEFAULT_GPKG, "GeoPackage path or `postgresql://` URL", shown="`geodata/tianya.gpkg`"
    )
    url: str = _setting(
        "http://localhost:5000",
        "public base URL in links",
        shown="`http://localhost:5000` (`tianya serve`: its host and port)",
    )
    keys: str | None = _setting(
        None,
        "YAML file of API keys and roles (read again when it changes)",
        shown="none (public only)",
    )
    rules: str | None = _setting(
        None, "dispatch rules YAML (must exist)", shown="`layers/dispatch_rules.yml`", file=True
    )
    rasters: str | None = _setting(
        None, "folder of the DEM and flood COGs", shown="`rasters/` beside the GeoPackage"
    )
    # --- process jobs
    jobs: str = _setting(
        "/tmp/tianya-jobs.sqlite",
        "process job SQLite file (a table beside PostGIS data instead)",
        shown="`/tmp/tianya-jobs.sqlite`",
    )
    job_results: str = _setting(
        "/tmp/tianya-job-results", "process job results folder", shown="`/tmp/tianya-job-results`"
    )
    job_retention_hours: float = _setting(168.0, "hours finished jobs are kept", least=0)
    job_limit: int = _setting(4, "unfinished jobs per caller (0: no limit)", least=0)
    job_limit_anonymous: int = _setting(
        4, "unfinished jobs of all anonymous callers together (0: no limit)", least=0
    )
    job_max_result_bytes: int = _setting(
        64 * 2**20,
        "largest result kept per job (only asynchronous jobs keep results, written compact)",
        least=0,
    )
    job_result_quota: int = _setting(
        512 * 2**20,
        "bytes of stored results per caller, all "
        "anonymous callers sharing one (a result over it is not "
        "kept, an asynchronous submission at it is a 429; 0: no quota)",
        least=0,
    )
    # --- process runs
    process_workers: int = _setting(2, "process runs at once per host", least=1)
    process_memory_mb: int = _setting(4096, "memory (MB of address space) a run may use", least=64)
    process_seconds: float = _setting(600.0, "seconds a run may use", least=1)
    process_wait_seconds: float = _setting(
        30.0, "how long a synchronous run waits for a slot (then 429)", least=0
    )
    process_queue: int = _setting(16, "runs that may wait per server process", least=0)
    run_dir: str = _setting(_run_dir, "the run slot folder", shown="`/tmp/tianya-runs-<uid>`")
    process_scheduler: str | None = _setting(
        None,
        "a Dask scheduler address: runs go there instead of local child processes",
        shown="none",
    )
    # --- work budgets of the analysis processes (tianya.plugins.budgets)
    max_grid_cells: int = _setting(250_000, "fishnet squares or hexagons a run may build", least=1)
    max_raster_cells: int = _setting(4_000_000, "pixels of a density surface", least=1)
    max_kernel_visits: int = _setting(
        1_000_000_000, "kernel evaluations of a density surface", least=1
    )
    max_time_steps: int = _setting(1_000, "time steps of a space-time cube", least=1)
    max_cube_cells: int = _setting(10_000_000, "bins of a space-time cube", least=1)
    max_forecast_rows: int = _setting(
        3_000_000, "training rows of a forecast (series x origins x horizons)", least=1
    )
    max_draws_per_unit: int = _setting(200_000, "permutations per unit", least=1)
    max_permutation_draws: int = _setting(1_000_000_000, "permutation draws of a run", least=1)
    max_neighbours_per_unit: int = _setting(5_000, "neighbours per unit", least=1)
    max_neighbour_pairs: int = _setting(20_000_000, "neighbour pairs of a weights matrix", least=1)
    max_eps_area_share: float = _setting(
        0.01, "share of the extent a DBSCAN radius may cover", least=0
    )
    # --- the HTTP edge
    header_seconds: float = _setting(
        10.0,
        "time a client has to send its request headers (then the connection is closed)",
        least=0.1,
    )
    body_seconds: float = _setting(
        10.0, "time a client has to send its whole body (then 408)", least=0.1
    )
    heavy_reads: int = _setting(
        2,
        "item pages over 1000 features, CSV or coverages at once "
        "per caller and server process (then 429; 0 refuses them)",
        least=0,
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "comma-separated addresses of reverse "
        "proxies whose `X-Forwarded-For` names the "
        "public caller (for per-caller limits)",
        shown="none",
    )
    log_level: str = _setting(
        "ERROR",
        "pygeoapi's log level",
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"),
    )
    screen_cache: float = _setting(20.0, "seconds the `/screen` figures are cached", least=0)
    # --- periodic tasks of each server process (tianya/schedule.py)
    escalate_seconds: float = _setting(
        900.0,
        "seconds between runs of the key-task supervision clock (warnings, accountability) "
        "in each server process (0: not run; e.g. `tianya escalate` from cron instead)",
        least=0,
    )
    opinion_feed: str | None = _setting(
        None,
        "a public-opinion feed (JSON, RSS or Atom; a file or an http(s) URL) each server "
        "process polls into the store (`tianya monitor-opinion`'s --source)",
        shown="none: not polled",
    )
    opinion_poll_seconds: float = _setting(
        1200.0,
        "seconds between polls of `TIANYA_OPINION_FEED` (0: not polled)",
        least=0,
    )
    schedule_clock_file: str | None = _setting(
        None,
        "tests only: a file holding the ISO 8601 instant (with its offset) the periodic tasks "
        "take as now, read at each run",
        shown="none: the system clock",
    )
    # --- base maps of the folium maps
    tianditu_key: str | None = _setting(None, "Tianditu base-map key", shown="none", secret=True)
    amap_key: str | None = _setting(None, "Amap base-map key", shown="none", secret=True)
    tiles: dict[str, str] = _setting(
        dict,
        "a tile URL template replacing base map `<id>`'s (e.g. an intranet tile server)",
        shown="none",
        env="TIANYA_TILES_<ID>",
    )
    # --- base map of the server's HTML pages
    map_url: str | None = _setting(
        None,
        "tile URL template (`{z}`, `{x}`, `{y}`) of an online base map for the maps of the "
        "server's HTML pages, instead of its own",
        shown="none: the server's own base map (`/styles/basemap`, offline)",
        tile_url=True,
    )
    map_attribution: str | None = _setting(
        None, "attribution of `TIANYA_MAP_URL`'s tiles (HTML)", shown="none"
    )

    def __post_init__(self):
        problems = [
            f"{env_name(f)} {msg}, got {getattr(self, f.name)!r}"
            for f in FIELDS
            if (msg := _problem(f, getattr(self, f.name)))
        ]
        if problems:
            raise SettingsError("; ".join(problems))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        defaults: Mapping[str, object] | None = None,
        **overrides,
    ) -> Settings:
        """The settings of ``environ`` (default :data:`os.environ`), then ``overrides``.

        ``defaults`` (attribute names) replace the built-in default of a setting whose
        variable is unset or empty (``tianya serve`` makes its own address the URL's).
        An unknown ``TIANYA_`` variable (a typo) is logged as a warning, once.

        Raises
        ------
        SettingsError
            Naming every variable with a value that cannot be used, and the value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = dict(defaults or {})
        problems: list[str] = []
        for f in FIELDS:
            if f.name == "tiles":
                values["tiles"] = {
                    k[len(TILES) :].lower(): v
                    for k, v in env.items()
                    if k.startswith(TILES) and len(k) > len(TILES) and v
                }
                continue
            raw = env.get(env_name(f), "").strip()
            if raw == "":
                continue
            try:
                values[f.name] = value = _parse(f, raw)
            except ValueError as err:
                problems.append(f"{env_name(f)} {err}, got {raw!r}")
                continue
            if msg := _problem(f, value):
                problems.append(f"{env_name(f)} {msg}, got {raw!r}")
        _warn_unknown(env)
        if problems:
            raise SettingsError("; ".join(problems))
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes) -> Settings:
        """A copy with ``changes`` (attribute names)."""
        return dataclasses.replace(self, **changes)

    def store_location(self) -> str:
        """:attr:`data` as an absolute path, or the URL as it is."""
        return data_location(self.data)

    def basemap_keys(self) -> dict[str, str]:
        """The base-map keys that are set, by key id (``keys=`` of :mod:`analytics.maps`)."""
        keys = {"tianditu": self.tianditu_key, "amap": self.amap_key}
        return {k: v for k, v in keys.items() if v}

    def masked(self) -> dict[str, str]:
        """Every setting as text by its variable, keys and passwords masked (``tianya settings``).

        >>> Settings(data="postgresql://gis:s3cret@db/tianya", amap_key="abc").masked()[
        ...     "TIANYA_DATA"]
        'postgresql://gis:****@db/tianya'
        """
        out: dict[str, str] = {}
        for f in FIELDS:
            value = getattr(self, f.name)
            if f.name == "tiles":
                out.update({TILES + k.upper(): _mask(v) for k, v in sorted(value.items())})
            elif value is None or value == ():
                out[env_name(f)] = ""
            elif f.metadata["secret"]:
                out[env_name(f)] = "****"
            elif isinstance(value, tuple):
                out[env_name(f)] = ",".join(value)
            else:
                out[env_name(f)] = _mask(f"{value:g}" if isinstance(value, float) else str(value))
        return out


#: Variables with the prefix that are not the server's: the tests', benchmarks' and notebooks'
#: (prefixes), the notebooks' API key, and where our templates are (set by tianya.compat).
NOT_SETTINGS = ("TIANYA_TEST_", "TIANYA_FUZZ_", "TIANYA_BENCH_")
NOT_SETTING_NAMES = frozenset({"TIANYA_KEY", "TIANYA_TEMPLATES"})
TILES = PREFIX + "TILES_"

FIELDS: tuple[dataclasses.Field, ...] = dataclasses.fields(Settings)


def env_name(f: dataclasses.Field) -> str:
    """The environment variable of settings field ``f``."""
    return f.metadata.get("env") or PREFIX + f.name.upper()


def _parse(f: dataclasses.Field, raw: str):
    """The value of ``raw`` as field ``f``'s type (``ValueError`` saying what it must be)."""
    kind = str(f.type)
    if kind.startswith("tuple"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if kind.startswith("str"):
        return raw
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"must be {'an integer' if kind == 'int' else 'a number'}") from None


def _problem(f: dataclasses.Field, value) -> str | None:
    """What is wrong with ``value`` for field ``f`` (its bound, choices, file), or None."""
    if value is None:
        return None
    least, valid = f.metadata.get("least"), f.metadata.get("choices")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return "must be a finite number"
        if least is not None and value < least:
            return f"must be at least {least:g}"
    if valid and value not in valid:
        return f"must be one of {', '.join(valid)}"
    if f.metadata.get("file") and not os.path.isfile(value):
        return "must name an existing file"
    if f.metadata.get("tile_url") and not (
        value.startswith(("http://", "https://")) and all(k in value for k in ("{z}", "{x}", "{y}"))
    ):
        return "must be an http(s) tile URL template with {z}, {x} and {y}"
    return None


_WARNED: set[str] = set()


def _warn_unknown(env: Mapping[str, str]) -> None:
    """Log each ``TIANYA_`` variable that is no setting (a typo?) once per process."""
    known = {env_name(f) for f in FIELDS}
    for k in sorted(env):
        if (
            k.startswith(PREFIX)
            and k not in known
            and k not in NOT_SETTING_NAMES
            and not k.startswith((TILES, *NOT_SETTINGS))
            and k not in _WARNED
        ):
            _WARNED.add(k)
            LOGGER.warning(
                "%s is not a setting and is ignored (the settings are listed in "
                "the README and by `tianya settings`)",
                k,
            )


_PASSWORD = re.compile(r"(://[^/@:?#]*:)[^/@?#]*@")
_SECRET_PARAM = re.compile(
    r"([?&](?:tk|key|ak|apikey|api_key|token|access_token|secret|"
    r"password)=)[^&#]*",
    re.IGNORECASE,
)


def _mask(text: str) -> str:
    """``text`` with a URL's password and key-like query values replaced by ``****``."""
    return _SECRET_PARAM.sub(r"\1****", _PASSWORD.sub(r"\1****@", text))


def markdown_table() -> str:
    """The README's table of settings: variable, meaning, default."""
    rows = ["| variable | what it sets | default |", "|---|---|---|"]
    for f in FIELDS:
        shown = f.metadata.get("shown")
        if shown is None:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown = f"`{default:g}`" if isinstance(default, float) else f"`{default}`"
        doc = f.metadata["doc"]
        if f.metadata.get("choices"):
            doc += " (" + ", ".join(f"`{c}`" for c in f.metadata["choices"]) + ")"
        rows.append(f"| `{env_name(f)}` | {doc} | {shown} |")
    return "\n".join(rows) + "\n"


def data_location(data: str | None) -> str:
    """A store location as the stores take it: a path made absolute, a URL as it is."""
    data = data or DEFAULT_GPKG
    return data if "://" in data else os.path.abspath(data)


_CURRENT: Settings | None = None
_LOCK = threading.Lock()


def _apply(settings: Settings) -> Settings:
    """Hand the library its process-wide values (the dispatch rules file); lock held."""
    global _CURRENT
    _CURRENT = settings
    rules.use_rules(settings.rules)
    return settings


def use(settings: Settings) -> Settings:
    """Make ``settings`` this process's (the app, the CLI and each process run call it).

    The library's process-wide values follow: :func:`layers.rules.use_rules` gets
    :attr:`Settings.rules`.
    """
    with _LOCK:
        return _apply(settings)


def current() -> Settings:
    """This process's settings: those given to :func:`use`, else read from the environment."""
    with _LOCK:
        return _CURRENT if _CURRENT is not None else _apply(Settings.from_env())
