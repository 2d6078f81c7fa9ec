"""Dispatch rules read from ``dispatch_rules.yml``, or the file given to :func:`use_rules`.

The library reads no environment: the shell calls :func:`use_rules` with the
``TIANYA_RULES`` setting (:func:`tianya.settings.use` does), so the callers of
:func:`load_rules` (dispatch, the sample generator) need not pass the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import yaml

from layers.catalogue import CATEGORIES, DEPARTMENTS, PRIORITIES
from layers.errors import InvalidParameter, choices
from layers.worktime import HOURS_PER_DAY

DEFAULT_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dispatch_rules.yml")
_RULES_FILE: str | None = None  # use_rules()


@dataclass(frozen=True)
class Rule:
    """Where a category goes and how long it may take."""

    category: str
    department: str
    limit_hours: float
    priority: str

    @property
    def territorial(self) -> bool:
        return self.department == "territorial"


def _limit_hours(text: str, category: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hd])\s*", str(text))
    if not m:
        raise InvalidParameter(f"rule {category!r}: limit {text!r} must look like '4h' or '2d'")
    n = float(m.group(1))
    return n if m.group(2) == "h" else n * HOURS_PER_DAY


def use_rules(path: str | None) -> None:
    """Make ``path`` the rules file :func:`load_rules` reads by default (None: the bundled one)."""
    global _RULES_FILE
    _RULES_FILE = path


def load_rules(path: str | None = None) -> dict[str, Rule]:
    """Rules keyed by category code, checked against the catalogue's code lists.

    ``path`` defaults to the file given to :func:`use_rules`, else :data:`DEFAULT_RULES`;
    each file is read once.
    """
    return _read_rules(path or _RULES_FILE or DEFAULT_RULES)


@lru_cache(maxsize=4)
def _read_rules(path: str) -> dict[str, Rule]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    valid_cat = [c.code for c in CATEGORIES]
    valid_dep = [c.code for c in DEPARTMENTS]
    valid_pri = [c.code for c in PRIORITIES]
    rules = {}
    for cat, spec in (doc.get("rules") or {}).items():
        if cat not in valid_cat:
            raise InvalidParameter(choices(cat, valid_cat, "category in dispatch rules"))
        if spec.get("department") not in valid_dep:
            raise InvalidParameter(choices(spec.get("department"), valid_dep, "department"))
        pri = spec.get("priority", "normal")
        if pri not in valid_pri:
            raise InvalidParameter(choices(pri, valid_pri, "priority"))
        rules[cat] = Rule(cat, spec["department"], _limit_hours(spec.get("limit", "2d"), cat), pri)
    return rules
