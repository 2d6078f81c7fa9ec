"""Errors raised by the analytics library.

``AnalyticsError`` is a :class:`ValueError`, so callers that only know builtins can catch it;
it will be reconciled with the project root error (``layers.errors.TianyaError``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["AnalyticsError", "check_choice", "check_positive"]


class AnalyticsError(ValueError):
    """Root error for invalid analytics input; the message is safe to show to users."""


def check_choice(value: object, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise :class:`AnalyticsError`.

    The message lists the valid choices, e.g. ``'hexagon2' is not a valid aggregation, must be
    one of: fishnet, hexagon, communities``.
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise AnalyticsError(
            f"{value!r} is not a valid {name}, must be one of: {', '.join(choices)}"
        )
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
