"""Settings of the server and the CLI."""

from __future__ import annotations

import os

from layers.store import DEFAULT_GPKG, STORE_ENV


def data_location(data: str | None) -> str:
    """The store location: ``data``, else ``TIANYA_DATA``, else the embedded GeoPackage."""
    data = data or os.environ.get(STORE_ENV) or DEFAULT_GPKG
    return data if "://" in data else os.path.abspath(data)
