"""Errors raised by the analytics library.

``AnalyticsError`` is a :class:`layers.errors.InvalidParameter`, hence both a
:class:`~layers.errors.TianyaError` (HTTP 400 wherever the shell or the process adapters map
errors) and a :class:`ValueError` (for callers that only know builtins).
"""

from __future__ import annotations

from collections.abc import Iterable

from layers.errors import InvalidParameter
from layers.errors import choices as _choices_message

__all__ = ["AnalyticsError", "check_choice", "check_positive"]


class AnalyticsError(InvalidParameter):
    """Root error for invalid analytics input; the message is safe to show to users (HTTP 400)."""


def check_choice(value: object, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise :class:`AnalyticsError`.

    The message lists the valid choices, e.g. ``'hexagon2' is not a valid aggregation, must be
    one of: fishnet, hexagon, communities``.
    """
    valid = tuple(choices)
    if not isinstance(value, str) or value not in valid:
        raise AnalyticsError(_choices_message(value, valid, name))
    return value


def check_positive(value: float | None, name: str, *, integer: bool = False) -> None:
    """Raise :class:`AnalyticsError` unless ``value`` is ``None`` or a positive number."""
    if value is None:
        return
    kind = "a positive integer" if integer else "a positive number"
    try:
        ok = float(value) > 0 and (not integer or float(value) == int(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise AnalyticsError(f"{name} must be {kind}, got {value!r}")
