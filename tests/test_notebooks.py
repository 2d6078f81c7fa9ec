"""The analyst notebooks run top to bottom against a live server and draw their maps.

Notebooks are jupytext percent scripts (``notebooks/*.py``): no outputs in git by
construction. Each is converted in memory and executed with nbclient in a fresh kernel
with ``TIANYA_URL`` (the live server), ``TIANYA_DATA`` (the session GeoPackage) and
``TIANYA_RASTERS`` (its rasters) set.
"""

from __future__ import annotations

import glob
import os
import time

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
PATHS = sorted(glob.glob(os.path.join(NOTEBOOKS, "*.py")))


def test_notebooks_present():
    names = {os.path.basename(p) for p in PATHS}
    assert {
        "01_quick_start.py",
        "02_hotspots.py",
        "03_flood_exposure.py",
        "04_weekly_cases.py",
    } <= names
    for p in glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")):  # any .ipynb must be stripped
        nb = jupytext.read(p)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), p


@pytest.mark.parametrize("path", PATHS, ids=os.path.basename)
def test_notebook_runs(path, live_server, sample_gpkg, monkeypatch):
    monkeypatch.setenv("TIANYA_URL", live_server.url)
    monkeypatch.setenv("TIANYA_DATA", sample_gpkg)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = jupytext.read(path)
    t0 = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    ).execute()
    elapsed = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert images, "the notebook should draw at least one map or chart"
    assert tables, "the notebook should show at least one table"
    assert elapsed < 90, f"{os.path.basename(path)} took {elapsed:.0f} s"
