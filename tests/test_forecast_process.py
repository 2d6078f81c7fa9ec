"""OGC API process ``forecast`` (issue 16 item 4) on the live server, on both stores.

Synchronous and asynchronous runs are compared with the library called directly on the same
cases read from the same store; the inputs are checked with their choices and bounds; the
public cannot reach a personal field through it; the work budgets refuse before reading.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from conftest import KEYS

from analytics.forecast import count_series, forecast
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter
from layers.query import Query, parse_filter

pytestmark = [
    pytest.mark.both_stores,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:input CRS:UserWarning"),
]

INCIDENTS = {"collection": "incidents"}


def execute(server, inputs, role=None, asynchronous=False):
    headers = {"Prefer": "respond-async"} if asynchronous else {}
    if role:
        headers["Authorization"] = f"Bearer {KEYS[role]}"
    return requests.post(
        f"{server.url}/processes/forecast/execution",
        json={"inputs": inputs},
        headers=headers,
        timeout=120,
    )


def run_async(server, inputs) -> dict:
    r = execute(server, inputs, asynchronous=True)
    assert r.status_code == 201, r.text
    job = r.json()["jobID"]
    deadline = time.time() + 120
    while time.time() < deadline:
        status = requests.get(f"{server.url}/jobs/{job}?f=json", timeout=30).json()
        if status["status"] in ("successful", "failed", "dismissed"):
            break
        time.sleep(0.2)
    assert status["status"] == "successful", status
    res = requests.get(f"{server.url}/jobs/{job}/results?f=json", timeout=60)
    assert res.status_code == 200, res.text
    return res.json()


def library(store, level, model, horizon, where=None, origin=-1, **kw):
    """The library's forecast of the store's incidents (what the process must answer)."""
    layer = LAYERS["incidents"]
    q = Query(
        properties=[layer.key, "reported_at", "community_code", "major_class"],
        limit=0,
        where=parse_filter(where) if where else None,
    )
    frame = store.read_frame(layer, q)
    panel = count_series(frame, "reported_at", level=level, **kw)
    return panel, forecast(panel, model=model, horizon=horizon, origin=origin).frame


def by_key(fc) -> dict:
    return {(str(f["properties"]["key"]), f["properties"]["horizon"]): f for f in fc["features"]}


def assert_matches(fc, frame):
    got = by_key(fc)
    assert len(got) == len(frame) == fc["numberReturned"]
    for r in frame.itertuples():
        p = got[(str(r.key), r.horizon)]["properties"]
        assert p["period"] == r.period.strftime("%Y-%m-%d")
        np.testing.assert_allclose(
            [p["point"], p["mean"], p["lo"], p["hi"]],
            [r.point, r.mean, r.lo, r.hi],
            rtol=1e-12,
            atol=1e-12,
        )


def test_described_with_choices(live_server):
    r = requests.get(f"{live_server.url}/processes/forecast?f=json", timeout=30)
    assert r.status_code == 200, r.text
    desc = r.json()
    assert set(desc["jobControlOptions"]) >= {"sync-execute", "async-execute"}
    inputs = desc["inputs"]
    assert inputs["level"]["schema"]["enum"] == ["cell", "community", "category"]
    assert inputs["model"]["schema"]["enum"] == [
        "seasonal_naive",
        "moving_average",
        "ets",
        "gbm",
        "pooled",
    ]
    assert (inputs["horizon"]["schema"]["minimum"], inputs["horizon"]["schema"]["maximum"]) == (
        1,
        4,
    )
    assert "appearance" in inputs["major_class"]["schema"]["enum"]
    ids = [p["id"] for p in requests.get(f"{live_server.url}/processes?f=json").json()["processes"]]
    assert "forecast" in ids


def test_sync_community_pooled_matches_the_library(live_server, gpkg_store):
    # the model chosen on the backtest (analytics.backtest.select_model)
    r = execute(live_server, {**INCIDENTS, "level": "community", "model": "pooled", "horizon": 3})
    assert r.status_code == 200, r.text
    fc = r.json()
    _, frame = library(gpkg_store, "community", "pooled", 3)
    assert_matches(fc, frame)
    assert fc["forecast"]["model"] == "pooled" and len(fc["features"]) == 3 * 44


def test_sync_community_gbm_matches_the_library(live_server, gpkg_store):
    r = execute(live_server, {**INCIDENTS, "level": "community", "model": "gbm", "horizon": 2})
    assert r.status_code == 200, r.text
    fc = r.json()
    _, frame = library(gpkg_store, "community", "gbm", 2)
    assert_matches(fc, frame)
    assert fc["forecast"]["origin"] == "2026-11-16" and fc["forecast"]["model"] == "gbm"
    assert fc["numberFeatures"] == 5600
    first = fc["features"][0]
    assert first["geometry"]["type"] in ("Polygon", "MultiPolygon") and first["properties"]["name"]
    # nothing personal in the answer
    assert set(first["properties"]) == {
        "key",
        "name",
        "horizon",
        "period",
        "point",
        "mean",
        "lo",
        "hi",
        "recent_mean",
        "warning",
    }


def test_async_cells_with_filters_match_the_library(live_server, gpkg_store):
    inputs = {
        **INCIDENTS,
        "level": "cell",
        "model": "ets",
        "horizon": 3,
        "cell_size": 500,
        "major_class": "appearance",
        "origin": "2026-10-05",
        "filter": "priority <> 'urgent'",
    }
    fc = run_async(live_server, inputs)
    panel, frame = library(
        gpkg_store,
        "cell",
        "ets",
        3,
        where="priority <> 'urgent' AND major_class = 'appearance'",
        origin="2026-10-05",
        cell_size=500.0,
    )
    assert_matches(fc, frame)
    assert fc["forecast"]["origin"] == "2026-10-05"
    assert {f["geometry"]["type"] for f in fc["features"]} == {"Polygon"}
    assert fc["forecast"]["series"] == len(panel.keys)


def test_category_daily(live_server, gpkg_store):
    r = execute(
        live_server,
        {**INCIDENTS, "level": "category", "freq": "D", "model": "moving_average", "horizon": 4},
    )
    assert r.status_code == 200, r.text
    _, frame = library(gpkg_store, "category", "moving_average", 4, freq="D")
    assert_matches(r.json(), frame)
    assert all(f["geometry"] is None for f in r.json()["features"])


@pytest.mark.parametrize(
    "inputs,words",
    [
        ({"horizon": 5}, "'horizon' must be at most 4"),
        ({"horizon": 0}, "'horizon' must be at least 1"),
        ({"level": "street"}, "cell, community, category"),
        ({"model": "prophet"}, "seasonal_naive, moving_average, ets, gbm"),
        ({"interval_level": 1.5}, "'interval_level' must be at most 0.99"),
        ({"freq": "M"}, "must be one of: W, D"),
        ({"origin": "2026-11-03"}, "must be a Monday"),
        ({"origin": "next week"}, "must be a date YYYY-MM-DD"),
        ({"origin": "2030-01-07"}, "outside the selected cases' periods"),
        ({"major_class": "nope"}, "appearance"),
        ({"community": "nope"}, "not a valid community"),
        ({"cell_size": 10, "level": "cell"}, "'cell_size' must be at least 100"),
        ({"collection": "buildings"}, "collection for process 'forecast'"),
    ],
)
def test_inputs_refused_with_choices(live_server, inputs, words):
    r = execute(live_server, {**INCIDENTS, **inputs})
    assert r.status_code == 400, r.text
    assert words in r.json()["description"]


def test_the_public_cannot_reach_personal_fields(live_server):
    """Neither as an input nor through the filter; a trusted role may filter on them."""
    r = execute(live_server, {**INCIDENTS, "reporter_phone": "138"})
    assert r.status_code == 400 and "not a valid input" in r.json()["description"]
    flt = {**INCIDENTS, "filter": "reporter_name LIKE '%'"}
    r = execute(live_server, flt)
    assert r.status_code == 400 and "reporter_name" in r.json()["description"]
    r = execute(live_server, flt, asynchronous=True)
    assert r.status_code == 400
    r = execute(live_server, flt, role="dispatcher")
    assert r.status_code == 200, r.text
    assert "reporter_name" not in r.json()["features"][0]["properties"]


def test_budgets_refuse_before_reading(live_server):
    """Daily 100 m cells over the extent: series x days over MAX_CUBE_CELLS, a quick 400."""
    started = time.monotonic()
    r = execute(live_server, {**INCIDENTS, "level": "cell", "cell_size": 100, "freq": "D"})
    assert r.status_code == 400, r.text
    assert time.monotonic() - started < 10
    text = r.json()["description"]
    assert "MAX_CUBE_CELLS" in text and "more than the limit of" in text


def test_training_rows_budget(sample_gpkg, monkeypatch):
    """The gbm's training rows are checked on the selection against MAX_FORECAST_ROWS."""
    from tianya import settings
    from tianya.plugins.processes import PROCESSORS

    monkeypatch.setenv("TIANYA_MAX_FORECAST_ROWS", "10000")
    monkeypatch.setattr(settings, "_CURRENT", settings.Settings.from_env(data=sample_gpkg))
    proc = PROCESSORS["forecast"]({"name": "forecast"})
    # 9 classes x 52 weeks x 4 horizons = 1,872 rows: within the limit
    gbm = {**INCIDENTS, "model": "gbm"}
    proc.execute({**gbm, "level": "category", "horizon": 4})
    with pytest.raises(InvalidParameter, match="MAX_FORECAST_ROWS") as info:
        proc.execute({**gbm, "level": "cell", "horizon": 4})
    assert "training rows of the gbm model" in str(info.value)
    # ETS and the pooled default have no training rows
    proc.execute({**INCIDENTS, "level": "cell", "horizon": 4, "model": "ets"})
    proc.execute({**INCIDENTS, "level": "cell", "horizon": 4})


def test_warnings_match_the_library(live_server, gpkg_store):
    """ETS per community: the answer's warnings are the library's early warnings of the same
    forecast, explained; each warned series' feature says so; a gbm run warns from ETS too;
    warnings=false leaves them out."""
    from analytics.early_warning import early_warnings

    r = execute(live_server, {**INCIDENTS, "level": "community", "model": "ets", "horizon": 2})
    assert r.status_code == 200, r.text
    fc = r.json()
    panel, _ = library(gpkg_store, "community", "ets", 2)
    lib = early_warnings(panel, forecast(panel, model="ets", horizon=2), horizon=2).frame
    got = [(w["key"], w["kind"], w["horizon"]) for w in fc["warnings"]]
    assert got == list(zip(lib["key"], lib["kind"], lib["horizon"], strict=True))
    assert got, "the sample's last weeks have a community that warns"
    for w, (_, row) in zip(fc["warnings"], lib.iterrows(), strict=True):
        assert w["reason"] == row["reason"] and w["drivers"] == row["drivers"]
        np.testing.assert_allclose(w["expected"], row["expected"], rtol=1e-12)
    flagged = {
        (f["properties"]["key"], f["properties"]["horizon"])
        for f in fc["features"]
        if f["properties"]["warning"]
    }
    assert flagged == {(k, h) for k, _, h in got}
    assert fc["warnings_model"] == "ets"
    # a gbm forecast warns from the ETS forecast of the same counts (analytics.early_warning)
    r = execute(live_server, {**INCIDENTS, "level": "community", "model": "gbm", "horizon": 2})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == fc["warnings"] and r.json()["warnings_model"] == "ets"
    r = execute(live_server, {**INCIDENTS, "model": "ets", "warnings": False})
    assert r.status_code == 200 and r.json()["warnings"] is None
    assert all(f["properties"]["warning"] is None for f in r.json()["features"])
