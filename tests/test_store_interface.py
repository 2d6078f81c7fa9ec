"""The stores' public interface for SQL built outside them (the vector tiles).

``layers/tiles.py`` used private names of the PostGIS store (``_ident``, ``_require``,
``_property_sql``, ``_read``); it now uses :meth:`~layers.store.Store.require_layer`,
:meth:`~layers.postgis.PostGISStore.property_sql`,
:meth:`~layers.postgis.PostGISStore.fetch_one` and :func:`layers.store.quote`.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from layers.catalogue import LAYERS
from layers.errors import NotFound
from layers.store import quote
from layers.stores import open_store

TILES = Path(__file__).resolve().parent.parent / "layers" / "tiles.py"


def _private_names(path: Path) -> list[str]:
    """Private names imported from other modules, or private attributes used, in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if not (node.attr.startswith("__") and node.attr.endswith("__")):
                found.append(f"{ast.unparse(node.value)}.{node.attr} (line {node.lineno})")
    return found


def test_tiles_use_no_private_name_of_the_stores():
    assert _private_names(TILES) == []


def test_require_layer_names_the_missing_collection(sample_gpkg):
    missing = dataclasses.replace(LAYERS["incidents"], id="no_such_layer")
    with open_store(sample_gpkg) as store:
        store.require_layer(LAYERS["incidents"])  # present: no error
        with pytest.raises(NotFound, match=r"collection 'no_such_layer' is not in the GeoPackage"):
            store.require_layer(missing)


def test_postgis_property_sql_and_fetch_one(pg_sample_url):
    """``property_sql`` gives the items' text of a datetime; ``fetch_one`` binds parameters."""
    layer = LAYERS["incidents"]
    with open_store(pg_sample_url) as store:
        store.require_layer(layer)
        with pytest.raises(NotFound, match=r"'no_such_layer' is not in the PostGIS database"):
            store.require_layer(dataclasses.replace(layer, id="no_such_layer"))
        t = store.table(layer)
        key = store.fetch_one(f"SELECT t.{quote(layer.key)} FROM {t} t ORDER BY t.fid LIMIT 1")[0]
        item = store.get(layer, key)
        expr = store.property_sql(layer, layer.temporal, "t.")
        row = store.fetch_one(f"SELECT {expr} FROM {t} t WHERE t.{quote(layer.key)} = %s", [key])
        assert row == (item["properties"][layer.temporal],)
        assert isinstance(row[0], str) and row[0].endswith("Z")
        none = store.fetch_one(f"SELECT 1 FROM {t} WHERE {quote(layer.key)} = %s", ["-"])
        assert none is None
