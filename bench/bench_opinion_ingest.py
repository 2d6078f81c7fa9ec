"""Public-opinion ingest through the store (issue 14): posts/s on the GeoPackage and PostGIS.

Run: ``python bench/bench_opinion_ingest.py [--posts 30000] [--pg postgresql://...]``
(PostGIS from ``--pg`` or ``$TIANYA_TEST_PG``; skipped without either). Writes
``bench/results/opinion_ingest.md``.

For each store, on a fresh copy of the sample, the default generated feed (the sample year):

1. **poller**: :func:`tianya.opinion_poller.poll_once` on the feed as a JSON file: read,
   validate, drop the posts already stored, batches of 200 posts each in one transaction
   (posts, topics, cases opened by the default :class:`~analytics.opinion.ingest.CaseRule`
   through the normal intake, the topic state);
2. **bulk**: one :func:`analytics.opinion.ingest.ingest` of the whole feed, no cases (as
   ``tianya generate`` does for the sample);
3. **again**: the poller on the same feed once more (everything already stored: the
   idempotence check's cost).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.opinion.ingest import CaseRule, ingest  # noqa: E402
from geodata.opinion import generate_posts  # noqa: E402
from geodata.sample import DEFAULT_SEED, write_sample  # noqa: E402
from layers.catalogue import LAYERS  # noqa: E402
from layers.gpkg import GeoPackageStore  # noqa: E402
from layers.stores import open_store  # noqa: E402
from tianya.opinion_poller import GAZETTEER_LAYERS, gazetteer_of, poll_once  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "opinion_ingest.md"


def feed_file(posts, path: str) -> str:
    items = []
    for r in posts.to_dict("records"):
        e = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        e["posted_at"] = r["posted_at"].isoformat()
        items.append(e)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"items": items}, fh, ensure_ascii=False)
    return path


def copies(sample: str, tmp: str, pg: str | None):
    """(label, store location, cleanup) for each store."""
    out = []
    for i in range(2):
        dst = os.path.join(tmp, f"copy{i}.gpkg")
        shutil.copy(sample, dst)
        out.append(("GeoPackage", dst, None))
    if pg:
        from layers.pgload import load_gpkg

        for _ in range(2):
            schema = f"bench_op_{uuid.uuid4().hex[:8]}"
            sep = "&" if "?" in pg else "?"
            url = f"{pg}{sep}schema={schema}"
            load_gpkg(sample, url, progress=False)
            out.append(("PostGIS", url, schema))
    return out


def drop(pg: str, schema: str) -> None:
    import psycopg

    from layers.postgis import split_url

    conninfo, _ = split_url(pg)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=30_000)
    ap.add_argument("--pg", default=os.environ.get("TIANYA_TEST_PG"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_op_")
    sample = os.path.join(tmp, "sample.gpkg")
    write_sample(sample, seed=DEFAULT_SEED)
    s = GeoPackageStore(sample)
    frames = {lid: s.read_frame(LAYERS[lid]) for lid in GAZETTEER_LAYERS}
    s.close()
    posts = generate_posts(frames, n_posts=args.posts)
    posts = posts[[c for c in posts.columns if not c.startswith("true_")]]
    feed = feed_file(posts, os.path.join(tmp, "feed.json"))
    rows = []
    stores = copies(sample, tmp, args.pg)
    for k in range(0, len(stores), 2):
        (label, poll_at, s1), (_, bulk_at, s2) = stores[k], stores[k + 1]
        st = open_store(poll_at)
        gz = gazetteer_of(st)
        t = time.perf_counter()
        res = poll_once(st, feed, gazetteer=gz, cases=CaseRule())
        poll_s = time.perf_counter() - t
        t = time.perf_counter()
        again = poll_once(st, feed, gazetteer=gz, cases=CaseRule())
        again_s = time.perf_counter() - t
        st.close()
        st = open_store(bulk_at)
        t = time.perf_counter()
        bulk = ingest(st, posts, gz, cases=None)
        bulk_s = time.perf_counter() - t
        st.close()
        rows.append(
            f"| {label} | {res.stored:,} posts, {len(res.batches)} batches, "
            f"{len(res.cases):,} cases: {poll_s:.1f} s, **{res.stored / poll_s:,.0f} posts/s** "
            f"| {bulk.posts:,} posts, {bulk.topics_new:,} topics: {bulk_s:.1f} s, "
            f"**{bulk.posts / bulk_s:,.0f} posts/s** | {again.new} new of {again.entries:,}: "
            f"{again_s:.1f} s |"
        )
        print(rows[-1], flush=True)
        for schema in (s1, s2):
            if schema:
                drop(args.pg, schema)
    shutil.rmtree(tmp, ignore_errors=True)
    text = (
        "# Public-opinion ingest through the store (issue 14)\n\n"
        f"`python bench/bench_opinion_ingest.py --posts {args.posts}` on {platform.node()} "
        f"({os.cpu_count()} CPUs shared), Python {platform.python_version()}.\n\n"
        "| store | poller (batches of 200, cases on) | one transaction, no cases "
        "| the same feed again |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
