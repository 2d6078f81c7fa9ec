"""Copy a GeoPackage into PostGIS at ``COPY`` speed.

Every catalogue layer present in the GeoPackage (or the ones asked for) is
recreated in PostGIS with the catalogue's DDL and streamed across with
psycopg 3's ``cursor.copy`` in chunks, geometries as hex EWKB: no GeoDataFrame
in between, constant memory, ``fid`` values (and so the features' order) kept.
Rows are copied ``FREEZE`` (all-visible at once, so index-only scans for deep
pages and counts need no ``VACUUM``), indexes are built after the data, then the
table is ``ANALYZE``-d. Each layer is one
transaction: a failed layer leaves the previous table as it was.

Examples
--------
From the shell (a tqdm progress bar is shown when tqdm is installed)::

    python -m layers.pgload geodata/tianya.gpkg postgresql://tianya:tianya@localhost/tianya
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator

from layers.catalogue import LAYERS, OPINION_STATE, Layer, get_layer
from layers.gpkg import GeoPackageStore, decode
from layers.key_tasks import HISTORY as KEY_TASK_HISTORY
from layers.postgis import PostGISStore, ewkb_hex

#: Rows read from SQLite and sent per batch.
CHUNK = 20_000


def _rows(src: GeoPackageStore, layer: Layer, chunk: int) -> Iterator[list]:
    names = [f.name for f in layer.fields]
    bools = [i for i, f in enumerate(layer.fields) if f.type == "boolean"]
    cols = ["fid"] + (["geom"] if layer.geometry_type else []) + [f'"{n}"' for n in names]
    cur = src.con.execute(f'SELECT {", ".join(cols)} FROM "{layer.id}" ORDER BY fid')
    while True:
        batch = cur.fetchmany(chunk)
        if not batch:
            return
        if layer.geometry_type:
            geoms = ewkb_hex(decode([r[1] for r in batch]))
            rows = [[r[0], g, *r[2:]] for r, g in zip(batch, geoms, strict=True)]
        else:
            rows = [list(r) for r in batch]
        off = 2 if layer.geometry_type else 1
        for r in rows:
            for i in bools:
                v = r[off + i]
                if v is not None:
                    r[off + i] = bool(v)
        yield rows


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # optional: plain output without it
        return None
    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, leave=True, file=sys.stderr)


def load_layer(
    src: GeoPackageStore,
    dst: PostGISStore,
    layer: Layer,
    *,
    progress: bool = True,
    chunk: int = CHUNK,
) -> int:
    """Copy one layer; returns the number of rows."""
    total = src.con.execute(f'SELECT count(*) FROM "{layer.id}"').fetchone()[0]
    bar = _progress(total, layer.id, progress)
    n = 0
    try:
        with dst.transaction() as conn:
            dst.create_layer(conn, layer, indexes=False)
            for rows in _rows(src, layer, chunk):
                n += dst.copy_rows(conn, layer, _counted(rows, bar), with_fid=True, freeze=True)
            dst.finish_layer(conn, layer, indexes=True, fid_synced=True)
    finally:
        if bar is not None:
            bar.close()
    return n


def _counted(rows: list, bar) -> Iterable[list]:
    yield from rows
    if bar is not None:
        bar.update(len(rows))


def load_gpkg(
    gpkg_path: str,
    url: str | PostGISStore,
    layers: Iterable[str] | None = None,
    *,
    progress: bool = True,
) -> dict[str, int]:
    """Copy catalogue layers from a GeoPackage into PostGIS.

    Parameters
    ----------
    gpkg_path : str
        The source GeoPackage (e.g. ``geodata/tianya.gpkg``).
    url : str or PostGISStore
        The target database (``postgresql://…``, store options allowed) or an open store.
    layers : iterable of str, optional
        Layer ids to copy; default every catalogue layer the GeoPackage holds, and the
        key tasks' history (``key_task_history``) when it holds it.
    progress : bool
        Show a tqdm progress bar per layer when tqdm is installed.

    Returns
    -------
    dict of str to int
        Rows copied per layer.

    Raises
    ------
    NotFound
        A requested layer is not in the catalogue or not in the GeoPackage.
    """
    src = GeoPackageStore(gpkg_path)
    dst = url if isinstance(url, PostGISStore) else PostGISStore(url)
    try:
        if layers is None:
            todo = [lay for lay in LAYERS.values() if src.has_layer(lay)]
            # the sample's key-task audit trail and the opinion topics' state (outside the
            # catalogue) go with their layers
            todo += [lay for lay in (KEY_TASK_HISTORY, OPINION_STATE) if src.has_layer(lay)]
        else:
            todo = [get_layer(i) for i in layers]
            for lay in todo:
                src.require_layer(lay)
        return {lay.id: load_layer(src, dst, lay, progress=progress) for lay in todo}
    finally:
        src.close()
        if dst is not url:
            dst.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m layers.pgload GPKG URL [--layers a,b] [--quiet]``."""
    ap = argparse.ArgumentParser(
        prog="python -m layers.pgload", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("gpkg", help="source GeoPackage")
    ap.add_argument("url", help="target postgresql:// URL")
    ap.add_argument("--layers", help="comma-separated layer ids (default: all present)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    counts = load_gpkg(
        args.gpkg,
        args.url,
        args.layers.split(",") if args.layers else None,
        progress=not args.quiet,
    )
    dt = time.perf_counter() - t0
    total = sum(counts.values())
    for k, v in counts.items():
        print(f"{k}: {v} rows")
    print(f"{total} rows in {dt:.1f} s ({total / max(dt, 1e-9):,.0f} rows/s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
