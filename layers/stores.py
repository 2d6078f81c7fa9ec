"""Opening a store: the GeoPackage or the PostGIS store, chosen by its location.

Kept apart from :mod:`layers.store` (the interface both stores implement) so that
the interface imports neither store.
"""

from __future__ import annotations

from layers.store import DEFAULT_GPKG, Store


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url``: a GeoPackage path or a ``postgresql://`` URL.

    With no argument it is the embedded GeoPackage (``geodata/tianya.gpkg``); the server
    and the CLI pass the ``TIANYA_DATA`` setting (:mod:`tianya.settings`). The store is a
    context manager that closes its connections (or pool) on exit::

        with open_store(url) as store:
            frame = store.read_frame(LAYERS["incidents"])
    """
    url = url or DEFAULT_GPKG
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from layers.postgis import PostGISStore  # imported lazily: optional server

        return PostGISStore(url)
    from layers.gpkg import GeoPackageStore

    return GeoPackageStore(url)
