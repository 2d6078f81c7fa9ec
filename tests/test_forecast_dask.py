"""Forecasts from a GeoParquet history on the Dask engine equal the single process (issue 16).

The panel (counts, series, periods, cells) is equal exactly; the forecasts are bit-identical
(the models run in the calling process on an equal panel; the gradient-boosted model is
deterministic with one thread and a fixed seed).  Runs on a 2-worker ``LocalCluster``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from analytics import distributed as D
from analytics import forecast as F
from analytics.errors import AnalyticsError
from analytics.parquet import export_layer, write_months
from geodata.history import history_bounds, synthetic_history

pytestmark = [pytest.mark.filterwarnings("ignore:input CRS:UserWarning")]


@pytest.fixture(scope="module")
def client():
    with D.dask_client(None, n_workers=2, memory_limit="2GiB") as c:
        yield c


@pytest.fixture(scope="module")
def sample_export(sample_gpkg, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("parquet") / "incidents")
    export_layer(
        sample_gpkg, "incidents", path, rows_per_file=400, row_group_size=128, progress=False
    )
    return path


@pytest.fixture(scope="module")
def history(sample_data, tmp_path_factory):
    """A 200,000-case, 12-month synthetic history in several files per month."""
    path = str(tmp_path_factory.mktemp("history") / "h")
    base = shapely.get_coordinates(sample_data["incidents"].geometry.values)
    write_months(
        path,
        synthetic_history(200_000, base=base, months=12),
        total_bounds=history_bounds(base),
        rows_per_file=6_000,
    )
    return path


def assert_panels_equal(a: F.SeriesPanel, b: F.SeriesPanel) -> None:
    assert a.counts.shape == b.counts.shape
    assert np.array_equal(a.counts, b.counts)
    assert a.keys.equals(b.keys) and a.keys.name == b.keys.name
    assert a.periods.equals(b.periods)
    assert (a.freq, a.level, a.season_length) == (b.freq, b.level, b.season_length)
    if a.cells is None:
        assert b.cells is None
    else:
        pd.testing.assert_frame_equal(
            a.cells.drop(columns="geometry"), b.cells.drop(columns="geometry"), check_exact=True
        )
        assert a.cells.geometry.geom_equals_exact(b.cells.geometry, 0).all()
        assert a.cells.crs == b.cells.crs


def assert_forecasts_identical(a: F.Forecast, b: F.Forecast) -> None:
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert (a.model, a.level, a.freq) == (b.model, b.level, b.freq)


@pytest.mark.parametrize(
    "level,freq,kw",
    [("cell", "W", {"cell_size": 200.0}), ("community", "W", {}), ("category", "D", {})],
)
def test_sample_panel_equal(sample_export, sample_data, client, level, freq, kw):
    dask = D.count_series(
        sample_export, level=level, freq=freq, engine="dask", scheduler=client, **kw
    )
    single = D.count_series(sample_export, level=level, freq=freq, engine="single", **kw)
    assert_panels_equal(single, dask)
    # and the in-memory sample (what the store serves) gives the same panel
    mem = F.count_series(sample_data["incidents"], level=level, freq=freq, **kw)
    assert_panels_equal(mem, dask)
    assert dask.counts.sum() == len(sample_data["incidents"])


@pytest.mark.parametrize("model", F.MODELS)
def test_sample_forecasts_identical(sample_export, client, model):
    kw = dict(level="community", model=model, horizon=4, interval=0.8)
    _, single = D.forecast(sample_export, engine="single", **kw)
    panel, dask = D.forecast(sample_export, engine="dask", scheduler=client, **kw)
    assert_forecasts_identical(single, dask)
    assert len(dask.frame) == 4 * len(panel.keys)


def test_history_cells_identical(history, client):
    """Every 200 m cell of a 200k-case history: equal counts, bit-identical gbm forecasts."""
    kw = dict(level="cell", cell_size=200.0, model="gbm", horizon=4, origin=-2)
    ps, fs = D.forecast(history, engine="single", **kw)
    pd_, fd = D.forecast(history, engine="dask", scheduler=client, **kw)
    assert_panels_equal(ps, pd_)
    assert pd_.counts.sum() == 200_000
    assert_forecasts_identical(fs, fd)
    # the category level of the history's own column (a key_field other than the default)
    a = D.count_series(history, level="category", key_field="category", engine="single")
    b = D.count_series(
        history, level="category", key_field="category", engine="dask", scheduler=client
    )
    assert_panels_equal(a, b)


def test_local_scheduler(sample_export):
    single = D.count_series(sample_export, level="cell", engine="single")
    sync = D.count_series(sample_export, level="cell", engine="dask", scheduler="synchronous")
    assert_panels_equal(single, sync)


def test_refusals(sample_export, sample_data):
    with pytest.raises(AnalyticsError, match="GeoParquet export"):
        D.count_series(sample_data["incidents"], engine="dask")
    with pytest.raises(AnalyticsError, match="not a column"):
        D.count_series(sample_export, "nope", engine="dask", scheduler="synchronous")
    with pytest.raises(AnalyticsError, match="series key"):
        D.count_series(sample_export, level="community", key_field="nope", scheduler="synchronous")
    with pytest.raises(AnalyticsError, match="level"):
        D.count_series(sample_export, level="street", scheduler="synchronous")
    with pytest.raises(AnalyticsError, match="horizon"):
        D.forecast(sample_export, horizon=9, scheduler="synchronous")
