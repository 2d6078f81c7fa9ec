"""Audit trails and serial counters, one shape for cases and key tasks.

A workflow (cases: :mod:`layers.lifecycle`, :mod:`layers.cases`; key tasks:
:mod:`layers.key_tasks`) keeps beside its items, outside the published catalogue:

* an **audit table** (:func:`history_layer`): one row per change, who (``actor``, ``role``),
  when (``at``), what (``action``, ``from_status`` → ``to_status``) and why (``note``),
  appended by :func:`append` inside the transaction that makes the change;
* a **counters table** (:func:`counters_layer`): the last serial handed out per period (a
  day's case numbers, a year's task numbers), handed out by :func:`next_serial` under the
  period row's lock, so concurrent writers on either store take turns and lose nothing.

Examples
--------
>>> from layers.catalogue import Field
>>> log = history_layer("x_history", "记录", "History", "记录。", "History.",
...     Field("x_no", "string", "编号", "Number", required=True, indexed=True))
>>> [f.name for f in log.fields]
['event_id', 'x_no', 'at', 'actor', 'role', 'action', 'from_status', 'to_status', 'note']
>>> [f.name for f in counters_layer("x_counters", "计数", "Counters", "计数。", "Counters.",
...     Field("year", "string", "年份", "Year")).fields]
['year', 'last']
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from layers import access
from layers.catalogue import Field, Layer
from layers.errors import Conflict, NotFound
from layers.store import Store

__all__ = ["append", "counters_layer", "history_layer", "next_serial"]


def history_layer(
    id: str,
    zh: str,
    en: str,
    description_zh: str,
    description_en: str,
    subject: Field,
    *,
    after_role: tuple[Field, ...] = (),
    after_action: tuple[Field, ...] = (),
    action_indexed: bool = False,
    stage: tuple[str, str] = ("阶段", "stage"),
) -> Layer:
    """An audit table: ``event_id``, ``subject`` (the item's number), ``at``, ``actor``,
    ``role``, the ``after_role`` fields, ``action``, the ``after_action`` fields,
    ``from_status``, ``to_status`` and ``note``, keyed by ``event_id``, in time by ``at``.

    ``stage`` names what ``from_status``/``to_status`` hold (zh, en): a case's 阶段 (stage),
    a task's 状态 (status).
    """
    word_zh, word_en = stage
    return _table(
        (id, zh, en, description_zh, description_en),
        "event_id",
        (
            Field("event_id", "string", "记录编号", "Event ID"),
            subject,
            Field("at", "datetime", "时间", "At", required=True),
            Field("actor", "string", "操作人", "Actor", required=True),
            Field("role", "string", "角色", "Role", required=True),
            *after_role,
            Field("action", "string", "操作", "Action", required=True, indexed=action_indexed),
            *after_action,
            Field("from_status", "string", f"原{word_zh}", f"From {word_en}"),
            Field("to_status", "string", f"新{word_zh}", f"To {word_en}"),
            Field("note", "string", "备注/理由", "Note or reason"),
        ),
        temporal="at",
    )


def _table(names: tuple[str, str, str, str, str], key: str, fields, temporal=None) -> Layer:
    """A table without geometry kept beside a workflow's items: ``names`` are its id, zh
    and en titles, zh and en descriptions."""
    id, zh, en, description_zh, description_en = names
    return Layer(
        id=id,
        zh=zh,
        en=en,
        description_zh=description_zh,
        description_en=description_en,
        geometry_type=None,
        key=key,
        temporal=temporal,
        fields=tuple(fields),
    )


def append(
    store: Store, layer: Layer, who: access.Principal, *, at: dt.datetime, action: str, **columns
) -> None:
    """Append one row to the audit table ``layer``: a new ``event_id``, ``who``'s name and
    role, ``at``, ``action`` and the other ``columns`` (call inside the transaction that
    makes the change, so the row and the change stand or fall together)."""
    props = {
        "event_id": uuid.uuid4().hex,
        "at": at,
        "actor": who.name,
        "role": who.role,
        "action": action,
        **columns,
    }
    store.insert(layer, [{"geometry": None, "properties": props}])


def counters_layer(
    id: str, zh: str, en: str, description_zh: str, description_en: str, period: Field
) -> Layer:
    """A counters table: one row per ``period`` (its key) with the ``last`` serial given out."""
    last = Field("last", "integer", "最后流水号", "Last serial", required=True)
    return _table((id, zh, en, description_zh, description_en), period.name, (period, last))


def next_serial(
    store: Store, counters: Layer, period: str, *, first: Callable[[], int] = lambda: 0
) -> int:
    """The next serial of ``period`` in the counters table ``counters``.

    Call inside the transaction that stores the numbered item: the period's row is locked
    (:meth:`~layers.store.Store.get_for_update`) until it ends, so concurrent writers take
    turns. A period without a row starts after ``first()`` (the highest serial already
    stored, for items stored before the counter existed); two writers creating its row at
    once: the second waits for the first's row.
    """
    try:
        last = store.get_for_update(counters, period)["properties"]["last"]
    except NotFound:
        last = first()
        row = {"geometry": None, "properties": {counters.key: period, "last": last}}
        try:
            store.insert(counters, [row])
        except Conflict:  # another writer created it first: wait for its row
            last = store.get_for_update(counters, period)["properties"]["last"]
    last += 1
    store.update(counters, period, {"last": last})
    return last
