"""The generated config stays in sync with the catalogue; library doctests run; work time."""

import datetime as dt
import doctest
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from layers.errors import InvalidParameter
from layers.params import check_items_params, to_cql2_text
from layers.query import parse_filter
from layers.worktime import TZ, WorkCalendar, add_working_time
from tianya import config as cfg


def test_server_config_matches_the_catalogue():
    with open(cfg.CONFIG_PATH, encoding="utf-8") as fh:
        assert fh.read() == cfg.render(), "server_config.yml is stale: run `tianya config`"


def test_pygeoapi_validates_the_config():
    exe = os.path.join(os.path.dirname(sys.executable), "pygeoapi")
    out = subprocess.run(
        [exe, "config", "validate", "-c", cfg.CONFIG_PATH], capture_output=True, text=True
    )
    assert "Valid configuration" in out.stdout + out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize(
    "module", ["layers.errors", "layers.query", "layers.worktime", "geodata.sample"]
)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_working_time_skips_lunch_nights_weekends_and_holidays():
    fri = dt.datetime(2026, 11, 20, 17, 0, tzinfo=TZ)  # Friday 17:00
    assert add_working_time(fri, hours=2).astimezone(TZ) == dt.datetime(
        2026, 11, 23, 9, 0, tzinfo=TZ
    )
    # National Day 2026: 1-7 October are holidays
    sep30 = dt.datetime(2026, 9, 30, 17, 0, tzinfo=TZ)
    assert add_working_time(sep30, hours=2).astimezone(TZ).date() == dt.date(2026, 10, 8)
    morning = dt.datetime(2026, 11, 18, 11, 0, tzinfo=TZ)
    assert add_working_time(morning, hours=2).astimezone(TZ).hour == 15  # 11-12, 14-15
    assert add_working_time(morning, days=1).astimezone(TZ) == dt.datetime(
        2026, 11, 19, 11, 0, tzinfo=TZ
    )


def test_work_calendar_round_trip():
    cal = WorkCalendar(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    rng = np.random.default_rng(0)
    starts = np.datetime64("2026-03-01T00:00:00") + rng.integers(0, 200 * 86400, 500).astype(
        "timedelta64[s]"
    )
    minutes = rng.integers(1, 3000, 500)
    ends = cal.add(starts, minutes)
    # the working minutes between start and deadline are what was asked (minute precision)
    got = cal.between(starts, ends)
    assert np.all(np.abs(got - minutes) <= 1)


def test_cql2_text_encoding_round_trips():
    for text in [
        "category = 'street_light' AND satisfaction >= 4",
        "title LIKE '%垃圾%' OR channel IN ('wechat', 'hotline')",
        "satisfaction BETWEEN 1 AND 3",
        "closed_at IS NULL",
        "S_INTERSECTS(geometry, POLYGON((109 18, 110 18, 110 19, 109 18)))",
        "NOT (priority = 'urgent')",
    ]:
        node = parse_filter(text)
        assert parse_filter(to_cql2_text(node)) == node


def test_items_params_refuse_what_they_cannot_apply():
    from layers.catalogue import LAYERS

    inc = LAYERS["incidents"]
    with pytest.raises(InvalidParameter, match="'q'"):
        check_items_params(inc, {"q": "garbage"})
    # no temporal field: datetime matches every feature (Features /req/core/fc-time-response C),
    # but its syntax is still checked
    assert check_items_params(LAYERS["communities"], {"datetime": "2026-01-01"})
    with pytest.raises(InvalidParameter, match="RFC 3339"):
        check_items_params(LAYERS["communities"], {"datetime": "soon"})
    out = check_items_params(
        inc,
        {
            "filter": '{"op": "=", "args": [{"property": "nature"}, "praise"]}',
            "filter-lang": "cql2-json",
        },
    )
    assert out["filter"] == "\"nature\" = 'praise'" and out["filter-lang"] == "cql2-text"
