"""Supervision figures (督办) on the sample year and on hand-made cases."""

from __future__ import annotations

import pandas as pd
import pytest

from layers import supervision
from layers.errors import InvalidParameter


@pytest.fixture(scope="module")
def incidents(sample_data):
    return sample_data["incidents"]


def _cases():
    return pd.DataFrame(
        {
            "status": ["evaluated", "closed", "handling", "dispatched", "returned"],
            "department": ["water", "water", "power", "power", None],
            "category": ["waterlogging", "manhole_cover", "street_light", "street_light", "other"],
            "channel": ["wechat", "hotline", "wechat", "grid_app", "hotline"],
            "community_code": ["A", "A", "B", "B", "B"],
            "reported_at": [
                "2026-03-02T01:00:00Z",
                "2026-03-02T02:00:00Z",
                "2026-03-09T01:00:00Z",
                "2026-03-09T02:00:00Z",
                "2026-03-09T03:00:00Z",
            ],
            "dispatched_at": [
                "2026-03-02T01:30:00Z",
                "2026-03-02T03:00:00Z",
                "2026-03-09T01:10:00Z",
                "2026-03-09T04:00:00Z",
                None,
            ],
            "handled_at": ["2026-03-02T03:00:00Z", "2026-03-02T09:00:00Z", None, None, None],
            "closed_at": ["2026-03-02T05:00:00Z", "2026-03-02T12:00:00Z", None, None, None],
            "deadline": [
                "2026-03-02T06:00:00Z",
                "2026-03-02T06:00:00Z",
                "2026-03-20T00:00:00Z",
                "2026-03-10T00:00:00Z",
                None,
            ],
        }
    )


def test_definitions_by_hand():
    f = supervision.figures(_cases(), now="2026-03-12T00:00:00Z").loc["all"]
    assert f["cases"] == 5 and f["open"] == 3 and f["completed"] == 2
    assert f["overdue"] == 1  # the dispatched case past its 10 March deadline
    assert f["completion_rate"] == pytest.approx(0.4)
    assert f["due"] == 3 and f["due_completion_rate"] == pytest.approx(2 / 3)
    assert f["on_time"] == 1 and f["on_time_rate"] == pytest.approx(0.5)
    assert f["median_dispatch_h"] == pytest.approx((0.5 + 1) / 2)  # of 1/6, 0.5, 1, 2
    assert f["median_close_h"] == pytest.approx((4 + 10) / 2)


def test_groups_by_hand():
    df = _cases()
    by_dep = supervision.figures(df, by="department", now="2026-03-12T00:00:00Z")
    assert by_dep.loc["water", "completed"] == 2 and by_dep.loc["power", "open"] == 2
    weeks = supervision.figures(df, by="week")
    assert list(weeks.index) == ["2026-W10", "2026-W11"]
    assert weeks["cases"].tolist() == [2, 3]
    comm = supervision.figures(df, by="community")
    assert comm.loc["B", "cases"] == 3


def test_sample_year_completion_near_99_percent(incidents):
    f = supervision.figures(incidents).loc["all"]
    assert len(incidents) == f["cases"]
    assert 0.97 <= f["completion_rate"] <= 1.0
    assert 0.985 <= f["due_completion_rate"] <= 1.0
    assert 0.85 <= f["on_time_rate"] <= 0.98
    assert 0.1 < f["median_dispatch_h"] < 2  # dispatched within about half an hour
    assert supervision.completion_rate(incidents) == pytest.approx(f["completion_rate"])


@pytest.mark.parametrize("by", list(supervision.GROUPS))
def test_groups_add_up(incidents, by):
    total = supervision.figures(incidents).loc["all"]
    table = supervision.figures(incidents, by=by)
    for col in ("cases", "open", "overdue", "completed", "on_time"):
        assert table[col].sum() == total[col]
    recs = supervision.to_records(table)
    assert len(recs) == len(table) and by in recs[0]


def test_open_and_overdue_rows(incidents):
    now = "2026-11-23T00:00:00Z"
    open_ = supervision.open_cases(incidents, now=now)
    overdue = supervision.open_cases(incidents, now=now, overdue_only=True)
    assert set(open_["status"]) <= set(supervision.OPEN)
    assert len(overdue) <= len(open_)
    assert (pd.to_datetime(overdue["deadline"], utc=True) < pd.Timestamp(now)).all()


def test_bad_grouping_lists_choices(incidents):
    with pytest.raises(InvalidParameter, match="must be one of: department, category"):
        supervision.figures(incidents, by="street")


def test_missing_columns_named():
    with pytest.raises(InvalidParameter, match="deadline"):
        supervision.figures(
            pd.DataFrame(
                {
                    "status": [],
                    "reported_at": [],
                    "dispatched_at": [],
                    "handled_at": [],
                    "closed_at": [],
                }
            )
        )
