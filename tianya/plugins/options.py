"""Inputs of the analysis processes: :class:`Option` and the shared option sets.

An :class:`Option` is one process input: its JSON schema for the OGC API process
description and its check, which converts a value to the option's type or raises
:class:`~layers.errors.InvalidParameter` naming the input and what it accepts (choices,
bounds).  :data:`COMMON` are the inputs of every process (``collection``, ``filter``,
``datetime``), :data:`GRID_OPTIONS` those of the grid statistics (hot spots, local Moran);
:func:`numeric_fields` lists the fields a caller may name as a numeric input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from layers import access
from layers.catalogue import Layer
from layers.errors import InvalidParameter, choices

__all__ = ["COMMON", "GRID_OPTIONS", "NUMERIC", "WEIGHTS", "Option", "numeric_fields"]

NUMERIC = ("integer", "number")


@dataclass(frozen=True)
class Option:
    """One process input: its JSON schema and its check.

    Parameters
    ----------
    name : str
        Input name.
    type : {"string", "integer", "number", "boolean", "filter"}
        ``"filter"`` accepts a CQL2 text string or a CQL2 JSON object.
    description : str
        Shown in the process description.
    default : object, optional
        Value used when the input is absent (``None``: not set).
    choices : tuple of str, optional
        Valid values of a string input.
    minimum, maximum : float, optional
        Inclusive bounds of a numeric input.
    required : bool, default False
    """

    name: str
    type: str
    description: str
    default: object = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False

    def schema(self) -> dict:
        """The input's JSON schema for the OGC API process description."""
        if self.type == "filter":
            schema: dict = {"oneOf": [{"type": "string"}, {"type": "object"}]}
        else:
            schema = {"type": self.type}
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def describe(self) -> dict:
        """The pygeoapi ``inputs`` entry."""
        return {
            "title": self.name,
            "description": self.description,
            "schema": self.schema(),
            "minOccurs": 1 if self.required else 0,
            "maxOccurs": 1,
        }

    def check(self, value):
        """Return ``value`` converted to the option's type, or raise :class:`InvalidParameter`."""
        if value is None:
            if self.required:
                raise InvalidParameter(f"input {self.name!r} is required")
            return self.default
        kind = self.type
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise InvalidParameter(f"input {self.name!r} must be true or false, got {value!r}")
        if kind in NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidParameter(
                    f"input {self.name!r} must be a {_word(kind)}, got {value!r}"
                )
            try:
                number = float(value)
            except ValueError:
                raise InvalidParameter(
                    f"input {self.name!r} must be a {_word(kind)}, got {value!r}"
                ) from None
            if kind == "integer":
                if not number.is_integer():
                    raise InvalidParameter(f"input {self.name!r} must be an integer, got {value!r}")
                number = int(number)
            elif number != number or number in (float("inf"), float("-inf")):
                raise InvalidParameter(f"input {self.name!r} must be a finite number")
            if self.minimum is not None and number < self.minimum:
                raise InvalidParameter(
                    f"input {self.name!r} must be at least {self.minimum}, got {value!r}"
                )
            if self.maximum is not None and number > self.maximum:
                raise InvalidParameter(
                    f"input {self.name!r} must be at most {self.maximum}, got {value!r}"
                )
            return number
        if kind == "filter":
            if isinstance(value, dict):
                return json.dumps(value)
            if not isinstance(value, str):
                raise InvalidParameter(
                    f"input {self.name!r} must be CQL2 text or a CQL2 JSON object"
                )
            return value
        if not isinstance(value, str):
            raise InvalidParameter(f"input {self.name!r} must be a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InvalidParameter(choices(value, self.choices, self.name))
        return value


def _word(kind: str) -> str:
    return "an integer" if kind == "integer" else "number"


COMMON = (
    Option("collection", "string", "Catalogue layer id to analyse.", required=True),
    Option(
        "filter",
        "filter",
        "CQL2 filter on the layer (text, or JSON as an object).",
    ),
    Option(
        "datetime",
        "string",
        "Instant or interval 'start/end' ('..' for an open end) on "
        "the layer's temporal field, RFC 3339.",
    ),
)
WEIGHTS = ("knn", "distance_band", "inverse_distance", "queen", "rook")
GRID_OPTIONS = (
    Option(
        "field",
        "string",
        "Numeric field analysed feature by feature (aggregation "
        "'none'); omit to analyse incident counts per cell.",
    ),
    Option(
        "aggregation",
        "string",
        "Count the features per fishnet square, hexagon or "
        "community, or 'none' to analyse the features themselves (needs field). Default: "
        "'fishnet' without field, 'none' with one.",
        choices=("none", "fishnet", "hexagon", "communities"),
    ),
    Option(
        "cell_size",
        "number",
        "Fishnet side or hexagon width in metres.",
        250.0,
        minimum=20.0,
        maximum=10_000.0,
    ),
    Option(
        "weights",
        "string",
        "Neighbourhood: k nearest neighbours, distance band (binary "
        "or inverse distance) or polygon contiguity.",
        "knn",
        choices=WEIGHTS,
    ),
    Option("k", "integer", "Neighbours for weights='knn'.", 8, minimum=1, maximum=100),
    Option(
        "distance",
        "number",
        "Band in metres for 'distance_band' / 'inverse_distance'.",
        minimum=0.0,
        maximum=50_000.0,
    ),
)


def numeric_fields(layer: Layer, who) -> tuple[str, ...]:
    """The numeric fields of ``layer`` that principal ``who`` may see, in catalogue order."""
    visible = set(access.visible_fields(layer, who))
    return tuple(f.name for f in layer.fields if f.type in NUMERIC and f.name in visible)
