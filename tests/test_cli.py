"""The ``tianya`` command as a tool: a user's mistake is one line and a non-zero status.

Each command is tried with the ordinary mistakes (a wrong layer name, a missing ``--data``
file, an output that exists or cannot be written, a bad week, an unreachable PostGIS, bad
option combinations); the answer must be exactly one ``Error: …`` line, no traceback, and
the documented exit status (2 for bad options, settings and a missing ``--data`` file, 1
for the rest). ``--debug`` shows the traceback; a bug keeps it.
"""

from __future__ import annotations

import os
import re
import sys

import click
import pytest
from click.testing import CliRunner

from layers.errors import NotFound
from tianya import cli, cli_settings


def _run(argv):
    return CliRunner().invoke(cli.main, argv)


def _one_line(r, status: int, pattern: str) -> None:
    """``r`` ended with status ``status`` and one ``Error:`` line matching ``pattern``."""
    assert r.exit_code == status, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.output
    assert re.search(pattern, errors[0]), errors[0]
    if status == 1:  # not a usage error: nothing but the line
        assert r.output.strip().splitlines()[-1] == errors[0]
        assert r.stderr.strip() == errors[0]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _mistakes(gpkg: str, tmp: str):
    missing = os.path.join(tmp, "typo.gpkg")
    exists = os.path.join(tmp, "exists")
    os.makedirs(exists, exist_ok=True)
    no_dir = os.path.join(tmp, "no", "such", "folder")
    layer_names = r"'nope' is not a valid collection, must be one of: incidents, "
    return [
        # map
        (["map", "layers", "--data", gpkg, "--layers", "nope"], 1, layer_names),
        (["map", "layers", "--data", missing], 2, rf"GeoPackage {missing} does not exist"),
        (["map", "layers", "--data", gpkg, "-o", exists], 1, rf"{exists} is a folder"),
        (
            ["map", "hotspots", "--data", gpkg, "-o", f"{no_dir}/m.html"],
            1,
            rf"cannot write {no_dir}/m.html: folder {no_dir} does not exist",
        ),
        (
            ["map", "choropleth", "--data", gpkg, "--layers", "rivers"],
            2,
            r"--layers is for `tianya map layers`, not choropleth",
        ),
        (
            ["map", "layers", "--data", gpkg, "--assets", "vendr"],
            2,
            r"Invalid value for '--assets': 'vendr' is not inline, cdn, a URL",
        ),
        (["map", "layers", "--data", gpkg, "--max-points", "-1"], 2, r"'--max-points'"),
        # report
        (["report", "--data", gpkg, "--week", "2026-W99"], 1, r"'2026-W99' is not an ISO week"),
        (["report", "--data", gpkg, "--week", "last"], 1, r"2026-W47.*'last'|'last'.*2026-W47"),
        (["report", "--data", missing], 2, rf"GeoPackage {missing} does not exist"),
        (
            ["report", "--data", gpkg, "--json", f"{no_dir}/f.json"],
            1,
            rf"cannot write {no_dir}/f.json",
        ),
        # rasters
        (["rasters", "--data", missing], 2, rf"GeoPackage {missing} does not exist"),
        (["rasters", "--data", gpkg, "-o", gpkg], 1, r"is a file: --output is the folder"),
        # generate
        (["generate", "-o", f"{no_dir}/s.gpkg"], 1, rf"cannot write {no_dir}/s.gpkg"),
        (["generate", "-o", exists], 1, rf"{exists} is a folder"),
        # config
        (["config", "-o", f"{no_dir}/c.yml"], 1, rf"{no_dir}/c.yml: No such file or directory"),
        (["config", "--check", "-o", missing], 1, rf"{missing}: No such file or directory"),
        # load-postgis
        (["load-postgis", "not-a-url", "--data", gpkg], 2, r"give a postgresql:// URL"),
        (["load-postgis", "postgresql://h/db", "--data", missing], 2, rf"{missing} does not exist"),
        # export-parquet
        (["export-parquet", "nope", "out", "--data", gpkg], 1, layer_names),
        (
            ["export-parquet", "incidents", exists, "--data", gpkg],
            1,
            rf"{exists} exists: pass --overwrite to replace it",
        ),
        (["export-parquet", "incidents", "out", "--data", missing], 2, rf"{missing} does not"),
        # history-hotspots
        (["history-hotspots", f"{no_dir}"], 1, rf"{no_dir} does not exist"),
        (
            ["history-hotspots", exists, "--shape", "communities"],
            2,
            r"emerging hot spots use fishnet or hexagon bins",
        ),
        (
            ["history-hotspots", exists, "--engine", "single", "--scheduler", "tcp://h:8786"],
            2,
            r"--scheduler is for --engine dask",
        ),
        (
            ["history-hotspots", exists, "--analysis", "optimized", "--data", missing],
            2,
            rf"GeoPackage {missing} does not exist",
        ),
        # forecast
        (["forecast", "--data", missing], 2, rf"GeoPackage {missing} does not exist"),
        (["forecast", "--history", no_dir], 1, rf"{no_dir} does not exist"),
        (["forecast", "--engine", "dask"], 2, r"read a GeoParquet --history"),
        (["forecast", "--data", gpkg, "-o", f"{no_dir}/f.csv"], 1, r"folder .* does not exist"),
        (["forecast", "--data", gpkg, "--horizon", "5"], 2, r"Invalid value for '--horizon'"),
        # escalate
        (["escalate", "--data", missing], 2, rf"GeoPackage {missing} does not exist"),
        (["escalate", "--data", gpkg, "--now", "soon"], 2, r"'soon' is not an ISO 8601"),
        (["escalate", "--data", gpkg, "--now", "2027-06-01"], 2, r"has no offset"),
        # monitor-opinion
        (["monitor-opinion", "--source", missing, "--data", missing], 2, rf"{missing} does not"),
        (["monitor-opinion", "--source", "f.json", "--every", "soon"], 2, r"'soon' is not like"),
        (
            ["monitor-opinion", "--source", missing, "--once", "--data", gpkg],
            1,
            rf"cannot read the feed {missing}: No such file or directory",
        ),
        (
            ["monitor-opinion", "--source", gpkg, "--once", "--data", gpkg],
            1,
            r"is neither JSON nor RSS/Atom XML",
        ),
        # serve (refused before gunicorn starts)
        (["serve", "--data", missing], 2, rf"GeoPackage {missing} does not exist.*--generate"),
        (["serve", "--data", gpkg, "--port", "99999"], 2, r"Invalid value for '--port'"),
        (["serve", "--data", gpkg, "--config", missing], 2, r"Invalid value for '--config'"),
    ]


def test_every_command_has_its_mistakes_tried():
    names = {argv[0] for argv, _, _ in _mistakes("x.gpkg", "/tmp")} | {"settings"}
    assert names == set(cli.main.commands)


@pytest.mark.parametrize("index", range(len(_mistakes("x.gpkg", "/tmp"))))
def test_a_mistake_is_one_line_and_a_status(index, sample_gpkg, workdir):
    argv, status, pattern = _mistakes(sample_gpkg, str(workdir))[index]
    before = sorted(p.name for p in workdir.rglob("*"))
    r = _run(argv)
    _one_line(r, status, pattern)
    assert sorted(p.name for p in workdir.rglob("*")) == before, "a refused command wrote"


def test_settings_mistake_is_one_line(workdir, monkeypatch):
    monkeypatch.setenv("TIANYA_SCREEN_CACHE", "often")
    _one_line(_run(["settings"]), 2, r"TIANYA_SCREEN_CACHE must be a number, got 'often'")


@pytest.mark.parametrize("command", ["report", "serve"])
def test_an_unreachable_postgis_is_one_line(workdir, started, command):
    url = "postgresql://nobody@127.0.0.1:1/none"
    r = _run([command, "--data", url])
    _one_line(r, 1, r"PostgreSQL at 127\.0\.0\.1:1/none is unavailable: no connection")
    assert "server" not in started


def test_serve_refuses_a_postgis_without_the_tables(started):
    """``tianya serve`` on an empty database: one line naming it, before gunicorn starts."""
    pg = os.environ.get("TIANYA_TEST_PG")
    if not pg:
        pytest.skip('TIANYA_TEST_PG is not set (eval "$(bash .ci/postgis.sh)")')
    url = pg + ("&" if "?" in pg else "?") + "schema=tianya_cli_never_loaded"
    r = _run(["serve", "--data", url])
    _one_line(r, 1, r"collection 'incidents' is not in the PostGIS database .*never_loaded")
    assert "server" not in started


def test_debug_shows_the_traceback(sample_gpkg, workdir):
    r = _run(["--debug", "map", "layers", "--data", sample_gpkg, "--layers", "nope"])
    assert r.exit_code == 1
    assert isinstance(r.exception, NotFound)
    assert "Error:" not in r.output


def test_a_bug_keeps_its_traceback(sample_gpkg, workdir, monkeypatch):
    """Only our errors, bad settings and path errors are a user's mistakes."""
    from analytics import report

    def broken(*args, **kwargs):
        raise KeyError("completion_rate")

    monkeypatch.setattr(report, "weekly_report", broken)
    r = _run(["report", "--data", sample_gpkg])
    assert r.exit_code == 1
    assert isinstance(r.exception, KeyError)
    assert "Error:" not in r.output


def test_user_message_tells_mistakes_from_bugs():
    um = cli_settings.user_message
    assert um(FileExistsError("out exists")) == "out exists"
    assert um(PermissionError(13, "Permission denied", "/etc/x")) == "/etc/x: Permission denied"
    assert um(OSError(28, "No space left on device", "/d/x.gpkg")) == (
        "/d/x.gpkg: No space left on device"
    )
    assert um(OSError("socket closed")) is None  # not about a path
    assert um(ValueError("x")) is None and um(TypeError("x")) is None


# --- serve --data ---------------------------------------------------------------------------


@pytest.fixture
def started(monkeypatch):
    """``tianya serve`` up to gunicorn: what it would run, without running it (and without
    the rasters, which take seconds)."""
    seen: dict = {"rasters": []}
    from geodata import rasters
    from tianya import worker

    def write_rasters(data, directory=None, seed=0):
        seen["rasters"].append(directory)
        return {"dem": os.path.join(directory, "dem.tif")}

    monkeypatch.delenv("TIANYA_RASTERS", raising=False)
    monkeypatch.setattr(rasters, "write_rasters_from_store", write_rasters)
    monkeypatch.setattr(rasters, "rasters_exist", lambda directory: True)
    monkeypatch.setattr(worker.Server, "run", lambda server: seen.update(server=server))
    monkeypatch.setattr(cli, "_openapi_once", lambda s, c: seen.update(openapi=(s, c)))
    return seen


def test_serve_refuses_a_missing_data_path(started, workdir, monkeypatch):
    """A mistyped path is refused, not filled with synthetic data (the issue's example)."""
    r = _run(["serve", "--data", "typo.gpkg"])
    _one_line(r, 2, r"GeoPackage .*typo\.gpkg does not exist")
    assert not (workdir / "typo.gpkg").exists() and "server" not in started
    monkeypatch.setenv("TIANYA_DATA", str(workdir / "typo2.gpkg"))
    _one_line(_run(["serve"]), 2, r"GeoPackage .*typo2\.gpkg does not exist")
    assert list(workdir.iterdir()) == []


def test_serve_generates_where_asked(started, workdir):
    """``--generate`` writes the sample at the path."""
    r = _run(["serve", "--data", "new.gpkg", "--generate"])
    assert r.exit_code == 0, r.output
    assert (workdir / "new.gpkg").stat().st_size > 1e6
    assert started["server"].factory.args[1].data == str(workdir / "new.gpkg")
    assert started["rasters"] == [str(workdir / "rasters")]


def test_serve_generates_the_default_geopackage(started, workdir, monkeypatch):
    """The default path generates by itself (``make serve`` on a fresh clone)."""
    default = str(workdir / "geodata" / "tianya.gpkg")
    os.makedirs(os.path.dirname(default))
    monkeypatch.setattr(cli, "DEFAULT_GPKG", default)
    monkeypatch.setenv("TIANYA_DATA", default)
    r = _run(["serve"])
    assert r.exit_code == 0, r.output
    assert "is missing: generating the sample data first" in r.output
    assert os.path.getsize(default) > 1e6


def test_make_serve_runs_tianya_serve_on_the_default_path():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(here, "Makefile"), encoding="utf-8") as fh:
        recipe = fh.read().split("\nserve:", 1)[1].split("\n\n", 1)[0]
    assert "tianya serve" in recipe and "--data" not in recipe


# --- progress -------------------------------------------------------------------------------


class _Tty:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, []

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass


@pytest.mark.parametrize(
    ("tty", "group_quiet", "quiet", "shown"),
    [
        (True, False, False, True),
        (False, False, False, False),  # a pipe or a log file: no bar
        (True, True, False, False),  # tianya --quiet
        (True, False, True, False),  # the command's own --quiet
    ],
)
def test_progress_on_stderr_only_on_a_terminal(monkeypatch, tty, group_quiet, quiet, shown):
    err = _Tty(tty)
    monkeypatch.setattr(sys, "stderr", err)
    ctx = click.Context(cli.main)
    ctx.meta[cli_settings.QUIET] = group_quiet
    with ctx:
        assert cli_settings.showing_progress(quiet) is shown
        with cli_settings.progress(2, "work", quiet=quiet) as bar:
            bar.update(2)
    assert bool("".join(err.text)) is shown
    if shown:
        assert "work" in "".join(err.text)


def test_long_commands_show_progress(sample_gpkg, workdir, monkeypatch):
    """``map`` and ``report`` draw their bars through :func:`cli_settings.progress`."""
    seen = []
    real = cli_settings.progress

    def spy(total, desc, unit="step", quiet=False):
        seen.append(desc)
        return real(total, desc, unit, quiet)

    monkeypatch.setattr(cli, "progress", spy)
    assert _run(["map", "hotspots", "--data", sample_gpkg]).exit_code == 0
    assert _run(["report", "--data", sample_gpkg]).exit_code == 0
    assert seen == ["map hotspots", "report"]


def test_key_tasks_map_and_report_section(sample_gpkg, workdir):
    """Issue 15: ``tianya map key_tasks`` draws every task of the store; ``tianya report``
    has the key-work section (its figures in the JSON, its ranking in the HTML)."""
    import json

    from layers import key_task_figures
    from layers.stores import open_store

    with open_store(sample_gpkg) as s:
        tasks, _ = key_task_figures.tables(s)
    r = _run(["map", "key_tasks", "--data", sample_gpkg, "-o", "kt.html"])
    assert r.exit_code == 0, r.output
    html = open("kt.html", encoding="utf-8").read()
    assert all(t in html for t in tasks["task_no"]) and "重点工作督办" in html
    r = _run(["report", "--data", sample_gpkg, "-o", "r.html", "--json", "r.json"])
    assert r.exit_code == 0, r.output
    figures = json.load(open("r.json", encoding="utf-8"))["key_tasks"]
    assert figures["all"]["tasks"] > 0 and figures["ranking"][0]["rank"] == 1
    assert 'id="key-ranking"' in open("r.html", encoding="utf-8").read()


def test_escalate_records_each_overdue_entry_once(writable_gpkg):
    """Issue 15: ``tianya escalate`` runs the supervision clock. Far past every due date,
    each open task's deadline and each of its open milestones gets its warning and its
    accountability entry (those already recorded excepted), counted here from the raw
    tables; a second run records nothing."""
    import sqlite3

    con = sqlite3.connect(writable_gpkg)
    open_tasks = {
        t
        for (t,) in con.execute(
            "SELECT task_no FROM key_tasks WHERE status IN ('assigned', 'in_progress', 'returned')"
        )
    }
    items = {(t, 0) for t in open_tasks} | {
        (t, int(seq))
        for t, seq in con.execute(
            "SELECT task_no, seq FROM key_task_milestones WHERE done_date IS NULL"
        )
        if t in open_tasks
    }
    recorded = {
        (t, int(seq or 0), a)
        for t, seq, a in con.execute(
            "SELECT task_no, milestone_seq, action FROM key_task_history"
            " WHERE action IN ('warning', 'accountability')"
        )
    }
    con.close()
    expected = {
        (t, s, level) for t, s in items for level in ("warning", "accountability")
    } - recorded  # fmt: skip
    assert open_tasks and expected
    r = _run(["escalate", "--data", writable_gpkg, "--now", "2027-06-01T09:00+08:00"])
    assert r.exit_code == 0, r.output
    lines = [ln.split() for ln in r.output.splitlines() if ln.startswith("  ")]
    made = {(w[0], 0 if w[1] == "the" else int(w[2]), w[-1]) for w in lines}
    assert made == expected and len(lines) == len(expected)
    again = _run(["escalate", "--data", writable_gpkg, "--now", "2027-06-01T09:00+08:00"])
    assert again.exit_code == 0 and "0 warning(s), 0 accountability" in again.output
