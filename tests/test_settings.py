"""The one settings object: every ``TIANYA_`` variable parsed and checked, the README's table
made from it, the CLI building one object from the environment and its options and handing it
to the server without the environment, and the library reading no environment."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tianya import cli, settings
from tianya.settings import FIELDS, Settings, SettingsError, env_name

ROOT = Path(__file__).resolve().parent.parent
SCALARS = [f for f in FIELDS if f.name != "tiles"]
NUMBERS = [f for f in SCALARS if str(f.type) in ("int", "float")]


@pytest.fixture(autouse=True)
def _no_settings_from_outside(monkeypatch):
    """No ``TIANYA_`` setting of the caller's shell (the test sets its own); the process's
    settings object restored after the test."""
    for k in list(os.environ):
        if k.startswith("TIANYA_") and not k.startswith(("TIANYA_TEST_", "TIANYA_FUZZ_")):
            monkeypatch.delenv(k)
    from layers import rules

    saved = settings._CURRENT
    yield
    settings._CURRENT = saved
    rules.use_rules(saved.rules if saved else None)


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


# --- the README ----------------------------------------------------------------------------------


def test_the_readme_table_is_the_settings_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert m, "README.md lost the settings:begin / settings:end markers"
    assert m.group(1) == settings.markdown_table(), (
        "README.md's settings table differs from tianya/settings.py: paste "
        "`tianya settings --markdown` between the markers"
    )


def test_every_setting_is_in_the_table_with_its_doc():
    table = settings.markdown_table()
    for f in FIELDS:
        assert f"| `{env_name(f)}` | {f.metadata['doc']}" in table
    assert "`TIANYA_SCREEN_CACHE`" in table


# --- parsing and refusing, every field -----------------------------------------------------------


@pytest.mark.parametrize("f", SCALARS, ids=lambda f: f.name)
def test_every_setting_parses_its_variable(f, tmp_path):
    default = _default(f)
    if f.metadata.get("file"):
        raw = str(tmp_path / "given.yml")
        Path(raw).write_text("rules: {}\n")
        want = raw
    elif f.metadata.get("choices"):
        raw = want = f.metadata["choices"][-1]
    elif f.metadata.get("tile_url"):
        raw = want = "https://tiles.example/{z}/{x}/{y}.png"
    elif isinstance(default, tuple):
        raw, want = " 10.0.0.1 , 10.0.0.2,", ("10.0.0.1", "10.0.0.2")
    elif str(f.type) == "int":
        want = default + 1
        raw = f" {want} "
    elif str(f.type) == "float":
        want = default * 2 + 0.5
        raw = repr(want)
    else:
        raw = want = "/somewhere/else"
    assert getattr(Settings.from_env({env_name(f): raw}), f.name) == want


@pytest.mark.parametrize("f", SCALARS, ids=lambda f: f.name)
def test_an_empty_variable_keeps_the_default(f):
    assert getattr(Settings.from_env({env_name(f): "  "}), f.name) == _default(f)


@pytest.mark.parametrize("f", NUMBERS, ids=lambda f: f.name)
def test_every_number_refuses_what_is_not_one(f):
    for raw in ("many", "1e3x", "nan", "inf"):
        with pytest.raises(SettingsError) as err:
            Settings.from_env({env_name(f): raw})
        msg = str(err.value)
        assert msg.startswith(env_name(f) + " must be ") and repr(raw) in msg, msg
    if str(f.type) == "int":
        with pytest.raises(SettingsError, match=f"^{env_name(f)} must be an integer, got '2.5'$"):
            Settings.from_env({env_name(f): "2.5"})


@pytest.mark.parametrize(
    "f", [f for f in NUMBERS if f.metadata.get("least") is not None], ids=lambda f: f.name
)
def test_every_number_refuses_a_value_below_its_bound(f):
    least = f.metadata["least"]
    below = least - 1 if str(f.type) == "int" else least - 0.05
    raw = str(int(below)) if str(f.type) == "int" else repr(below)
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env_name(f): raw})
    assert str(err.value) == f"{env_name(f)} must be at least {least:g}, got {raw!r}"
    ok = str(int(least)) if str(f.type) == "int" else repr(float(least))
    assert getattr(Settings.from_env({env_name(f): ok}), f.name) == least


def test_a_choice_is_refused_with_the_choices():
    f = next(f for f in FIELDS if f.metadata.get("choices"))
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env_name(f): "LOUD"})
    assert str(err.value) == (
        f"{env_name(f)} must be one of {', '.join(f.metadata['choices'])}, got 'LOUD'"
    )


def test_a_rules_file_that_does_not_exist_is_refused(tmp_path):
    missing = str(tmp_path / "ruels.yml")
    with pytest.raises(
        SettingsError,
        match=f"^TIANYA_RULES must name an existing file, got '{re.escape(missing)}'$",
    ):
        Settings.from_env({"TIANYA_RULES": missing})


def test_every_bad_value_is_named_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_env(
            {"TIANYA_JOB_LIMIT": "-1", "TIANYA_BODY_SECONDS": "soon", "TIANYA_LOG_LEVEL": "chatty"}
        )
    names = [p.split(" ", 1)[0] for p in str(err.value).split("; ")]
    assert sorted(names) == ["TIANYA_BODY_SECONDS", "TIANYA_JOB_LIMIT", "TIANYA_LOG_LEVEL"]


def test_a_job_limit_of_zero_means_no_limit():
    # the job manager's documented meaning (tianya/plugins/jobstore.py), kept by the settings
    s = Settings.from_env({"TIANYA_JOB_LIMIT": "0", "TIANYA_JOB_LIMIT_ANONYMOUS": "0"})
    assert (s.job_limit, s.job_limit_anonymous) == (0, 0)


def test_replace_and_construction_are_checked_too():
    with pytest.raises(SettingsError, match="^TIANYA_PROCESS_WORKERS must be at least 1, got 0$"):
        Settings().replace(process_workers=0)
    with pytest.raises(SettingsError, match="^TIANYA_HEAVY_READS must be at least 0, got -2$"):
        Settings.from_env({}, heavy_reads=-2)


def test_tile_templates_are_read_by_base_map():
    s = Settings.from_env(
        {
            "TIANYA_TILES_OSM": "https://tiles.local/{z}/{x}/{y}.png",
            "TIANYA_TILES_AMAP": "",
            "TIANYA_TILES_": "x",
        }
    )
    assert s.tiles == {"osm": "https://tiles.local/{z}/{x}/{y}.png"}


def test_defaults_apply_only_to_unset_variables():
    given = Settings.from_env(
        {"TIANYA_URL": "https://gis.example"}, defaults={"url": "http://localhost:8000"}
    )
    unset = Settings.from_env({}, defaults={"url": "http://localhost:8000"})
    assert (given.url, unset.url) == ("https://gis.example", "http://localhost:8000")


def test_an_unknown_variable_is_warned_about_once(caplog):
    env = {"TIANYA_PROCES_WORKERS": "3", "TIANYA_TEST_PG": "x", "TIANYA_KEY": "k"}
    Settings.from_env(env)
    Settings.from_env(env)
    warned = [r.getMessage() for r in caplog.records if r.name == "tianya.settings"]
    assert len(warned) == 1 and warned[0].startswith("TIANYA_PROCES_WORKERS is not a setting")


def test_masked_hides_keys_and_passwords():
    s = Settings.from_env(
        {
            "TIANYA_DATA": "postgresql://gis:pa55word@db:5432/tianya?sslmode=require",
            "TIANYA_AMAP_KEY": "amap-secret",
            "TIANYA_TIANDITU_KEY": "tdt-secret",
            "TIANYA_TILES_TIANDITU": "https://t0.example/img_w/wmts?tk=tdt-secret&x={x}",
        }
    )
    shown = s.masked()
    text = "\n".join(shown.values())
    assert "pa55word" not in text and "secret" not in text
    assert shown["TIANYA_DATA"] == "postgresql://gis:****@db:5432/tianya?sslmode=require"
    assert shown["TIANYA_AMAP_KEY"] == shown["TIANYA_TIANDITU_KEY"] == "****"
    assert shown["TIANYA_TILES_TIANDITU"] == "https://t0.example/img_w/wmts?tk=****&x={x}"
    assert set(shown) >= {env_name(f) for f in SCALARS}


# --- the library reads no environment ----------------------------------------------------------


def test_the_rules_file_comes_from_the_settings_not_the_environment(tmp_path, monkeypatch):
    from layers import rules

    custom = tmp_path / "rules.yml"
    custom.write_text("rules:\n  waterlogging: {department: sanitation, limit: 9h}\n")
    bundled = rules.load_rules(rules.DEFAULT_RULES)
    monkeypatch.setenv("TIANYA_RULES", str(custom))
    settings.use(Settings())  # the environment's file is not the library's business
    assert rules.load_rules() == bundled
    settings.use(Settings.from_env())  # the shell hands it over
    assert rules.load_rules() == {
        "waterlogging": rules.Rule("waterlogging", "sanitation", 9.0, "normal")
    }


def test_the_raster_folder_is_an_argument_not_the_environment(tmp_path, monkeypatch):
    from geodata.rasters import default_dir

    gpkg = str(tmp_path / "data" / "tianya.gpkg")
    monkeypatch.setenv("TIANYA_RASTERS", str(tmp_path / "elsewhere"))
    assert default_dir(gpkg) == str(tmp_path / "data" / "rasters")
    assert default_dir(gpkg, str(tmp_path / "cogs")) == str(tmp_path / "cogs")


# --- the CLI -------------------------------------------------------------------------------------


def _commands():
    """Every command with arguments that parse (the settings are checked before anyway)."""
    args = {
        "map": ["layers"],
        "export-parquet": ["incidents", "/nonexistent/out"],
        "history-hotspots": ["/nonexistent/src"],
        "load-postgis": ["postgresql://x/y"],
        "config": ["--check"],
        "generate": ["-o", "/nonexistent/never.gpkg"],
    }
    return [[name, *args.get(name, [])] for name in sorted(cli.main.commands)]


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: a[0])
def test_every_command_refuses_a_bad_setting_before_any_work(argv, monkeypatch, tmp_path):
    monkeypatch.setenv("TIANYA_PROCESS_WORKERS", "many")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli.main, argv)
    assert r.exit_code == 2, r.output
    assert r.output == "Error: TIANYA_PROCESS_WORKERS must be an integer, got 'many'\n"
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_to_start_with_a_bad_setting(tmp_path):
    """The real command line: one line on stderr, status 2, no data generated."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANYA_")}
    env.update(TIANYA_HEAVY_READS="-1", TIANYA_PROCESS_SECONDS="soon")
    data = tmp_path / "tianya.gpkg"
    r = subprocess.run(
        [sys.executable, "-m", "tianya.cli", "serve", "--data", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr == (
        "Error: TIANYA_PROCESS_SECONDS must be a number, got 'soon'; "
        "TIANYA_HEAVY_READS must be at least 0, got '-1'\n"
    )
    assert r.stdout == "" and not data.exists()


def test_create_app_refuses_to_start_with_a_bad_setting(monkeypatch):
    from tianya.app import create_app

    monkeypatch.setenv("TIANYA_BODY_SECONDS", "0")
    with pytest.raises(SettingsError, match="^TIANYA_BODY_SECONDS must be at least 0.1, got '0'$"):
        create_app()


@pytest.fixture
def started(monkeypatch):
    """``tianya serve`` up to gunicorn: what it would run, without running it."""
    seen: dict = {}

    def run(server):
        seen["server"] = server

    from tianya import worker

    monkeypatch.setattr(worker.Server, "run", run)
    monkeypatch.setattr(cli, "_openapi_once", lambda s, c: seen.update(openapi=(s, c)))
    return seen


def _served(started, argv):
    before = dict(os.environ)
    r = CliRunner().invoke(cli.main, ["serve", *argv])
    assert r.exit_code == 0, r.output
    assert dict(os.environ) == before, "serve wrote the environment"
    factory = started["server"].factory
    assert isinstance(factory, functools.partial)
    return r, factory.args[1], started["server"]


def test_serve_options_override_the_environment(started, sample_gpkg, monkeypatch, tmp_path):
    monkeypatch.setenv("TIANYA_DATA", str(tmp_path / "not-this.gpkg"))
    monkeypatch.setenv("TIANYA_URL", "https://gis.example/tianya")
    monkeypatch.setenv("TIANYA_SCREEN_CACHE", "5")
    r, s, server = _served(
        started, ["--data", sample_gpkg, "--port", "5099", "--workers", "3", "--threads", "8"]
    )
    assert (s.data, s.url, s.screen_cache) == (sample_gpkg, "https://gis.example/tianya", 5)
    assert s.rasters == os.path.join(os.path.dirname(sample_gpkg), "rasters")
    assert started["openapi"][0] is s
    assert settings.current() is s
    assert not (tmp_path / "not-this.gpkg").exists()
    cfg = server.cfg
    assert (cfg.bind, cfg.workers, cfg.threads) == (["127.0.0.1:5099"], 3, 8)
    assert cfg.worker_class_str == "tianya.worker.Worker"
    assert (cfg.timeout, cfg.graceful_timeout, cfg.accesslog) == (120, 10, "-")
    assert "%(U)s" in cfg.access_log_format and "%(r)s" not in cfg.access_log_format
    assert "%(q)s" not in cfg.access_log_format
    assert cfg.control_socket_disable  # no control socket shared by the servers of a host
    assert r.output.endswith(f"serving https://gis.example/tianya from {sample_gpkg}\n")


def test_serve_takes_the_data_from_the_environment_and_its_own_url(
    started, sample_gpkg, monkeypatch
):
    """Without ``--data`` the store is ``TIANYA_DATA`` (not the bundled GeoPackage), and
    without ``TIANYA_URL`` the URL is serve's own address."""
    monkeypatch.setenv("TIANYA_DATA", sample_gpkg)
    _, s, _ = _served(started, ["--port", "5098"])
    assert (s.data, s.url) == (sample_gpkg, "http://localhost:5098")
    _, s, _ = _served(started, ["--port", "5097", "--host", "gis.internal"])
    assert s.url == "http://gis.internal:5097"


def test_the_worker_app_is_built_from_the_settings_object(
    started, sample_gpkg, monkeypatch, tmp_path
):
    import tianya.app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.yml").write_text("server: {}\n")  # --config must name a file

    built = []
    monkeypatch.setattr(
        tianya.app,
        "create_app",
        lambda config_path=None, settings=None, schedule=False: (
            built.append((config_path, settings, schedule)) or "app"
        ),
    )
    _, s, server = _served(started, ["--data", sample_gpkg, "--config", "other.yml"])
    assert server.load() == "app"
    # each worker runs the periodic tasks (tianya/schedule.py)
    assert built == [(os.path.abspath("other.yml"), s, True)]


def test_the_settings_command_prints_them_masked(monkeypatch):
    monkeypatch.setenv("TIANYA_DATA", "postgresql://gis:pa55@db/tianya")
    monkeypatch.setenv("TIANYA_TIANDITU_KEY", "tdt-key-1234")
    monkeypatch.setenv("TIANYA_HEAVY_READS", "7")
    r = CliRunner().invoke(cli.main, ["settings"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "TIANYA_DATA=postgresql://gis:****@db/tianya" in lines
    assert "TIANYA_TIANDITU_KEY=****" in lines and "TIANYA_HEAVY_READS=7" in lines
    assert "pa55" not in r.output and "tdt-key" not in r.output
    assert len(lines) == len(SCALARS)
    md = CliRunner().invoke(cli.main, ["settings", "--markdown"])
    assert md.exit_code == 0 and md.output == settings.markdown_table()


def test_other_commands_take_the_data_from_the_environment(sample_gpkg, monkeypatch, tmp_path):
    """``--data`` overrides ``TIANYA_DATA``, which overrides the bundled GeoPackage."""
    from layers import stores

    opened = []

    class Stop(Exception):
        pass

    def fake_open(url=None):
        opened.append(url)
        raise Stop

    monkeypatch.setattr(stores, "open_store", fake_open)
    monkeypatch.setenv("TIANYA_DATA", sample_gpkg)
    (tmp_path / "b.gpkg").touch()  # a missing --data GeoPackage is refused before opening
    for argv in (["report"], ["map", "layers"], ["report", "--data", str(tmp_path / "b.gpkg")]):
        r = CliRunner().invoke(cli.main, argv)
        assert isinstance(r.exception, Stop), r.output
    assert opened == [sample_gpkg, sample_gpkg, str(tmp_path / "b.gpkg")]


def test_the_server_class_takes_its_options_and_nothing_else(monkeypatch):
    from tianya.worker import Server

    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers 9")
    server = Server(lambda: "app", {"bind": ["127.0.0.1:0"], "workers": 3})
    assert (server.cfg.workers, server.cfg.bind, server.load()) == (3, ["127.0.0.1:0"], "app")


def test_map_takes_the_base_map_keys_and_tiles_from_the_settings(
    sample_gpkg, monkeypatch, tmp_path
):
    """``tianya map`` hands ``TIANYA_TIANDITU_KEY`` and ``TIANYA_TILES_<ID>`` to the maps
    (which no longer read the environment themselves)."""
    argv = ["map", "layers", "--layers", "communities", "--data", sample_gpkg, "--assets", "cdn"]
    out = tmp_path / "tdt.html"
    r = CliRunner().invoke(cli.main, [*argv, "--basemap", "tianditu", "-o", str(out)])
    assert r.exit_code == 1 and "TIANYA_TIANDITU_KEY" in r.output, r.output
    monkeypatch.setenv("TIANYA_TIANDITU_KEY", "tdt-key-4711")
    monkeypatch.setenv("TIANYA_TILES_OSM", "https://tiles.intranet.example/{z}/{x}/{y}.png")
    r = CliRunner().invoke(cli.main, [*argv, "--basemap", "tianditu", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "tdt-key-4711" in out.read_text(encoding="utf-8")
    osm = tmp_path / "osm.html"
    r = CliRunner().invoke(cli.main, [*argv, "--basemap", "osm", "-o", str(osm)])
    assert r.exit_code == 0, r.output
    assert "tiles.intranet.example" in osm.read_text(encoding="utf-8")
