"""Helpers of the opinion poller and topics-to-cases tests: a feed of the sample's posts,
a store copy on either store, and the stored rows read back."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time

from stores import writable_copy

from layers.catalogue import LAYERS
from layers.gpkg import GeoPackageStore
from layers.stores import open_store

#: The generator's ground truth: never in a feed.
TRUTH = ("true_place", "true_community", "true_category", "true_topic", "true_actionable")


def sample_posts(sample_gpkg: str, n: int = 600, days: int = 14):
    """``n`` posts of the sample generator over the last ``days`` of the sample year."""
    from geodata.opinion import generate_posts
    from geodata.sample import YEAR_END
    from tianya.opinion_poller import GAZETTEER_LAYERS

    s = GeoPackageStore(sample_gpkg)
    frames = {lid: s.read_frame(LAYERS[lid]) for lid in GAZETTEER_LAYERS}
    start = YEAR_END - dt.timedelta(days=days - 1)
    return generate_posts(frames, seed=7, n_posts=n, start=start, end=YEAR_END)


def entries(posts) -> list[dict]:
    """JSON feed entries of a frame of posts (truth left out; ids prefixed ``F``: the session
    sample holds posts of the same generator)."""
    out = []
    for r in posts.drop(columns=list(TRUTH)).to_dict("records"):
        e = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        e["posted_at"] = r["posted_at"].isoformat()
        for k in ("post_id", "repost_of", "reply_to"):  # apart from the sample's own posts
            e[k] = f"F{e[k]}" if e[k] else e[k]
        out.append(e)
    return out


def write_feed(path, items) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"items": items}, fh, ensure_ascii=False)
    return str(path)


def copy_store(kind: str, sample_gpkg: str, name: str) -> str:
    """A private writable copy of the sample (path or PostGIS URL)."""
    return writable_copy(kind, sample_gpkg, name)


def rows(data: str, lid: str, fields=None) -> dict[str, dict]:
    """Every row of ``lid`` (key -> properties), ``fields`` only when given."""
    layer = LAYERS[lid]
    s = open_store(data)
    try:
        frame = s.read_frame(layer)
    finally:
        s.close()
    out = {}
    for p in frame.drop(columns="geometry", errors="ignore").to_dict("records"):
        p = {k: (None if v is None or v != v else v) for k, v in p.items()}  # NaN, NaT: None
        out[str(p[layer.key])] = {k: p.get(k) for k in fields} if fields else p
    return out


#: A ``tianya monitor-opinion`` process that stops inside its write transaction the ``n``-th
#: time it reaches ``stage`` (tianya.opinion_poller.PAUSE), after writing ``marker``.
_PAUSED = """
import os, sys, time
import tianya.opinion_poller as poller
from tianya.cli import main
stage, nth, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = [0]
def pause(at):
    if at == stage:
        seen[0] += 1
        if seen[0] == nth:
            with open(marker, "w") as fh:
                fh.write(str(os.getpid()))
            time.sleep(600)
poller.PAUSE = pause
main(sys.argv[4:], prog_name="tianya")
"""


def monitor(data: str, feed: str, pause: tuple[str, int, str] | None = None):
    """``tianya monitor-opinion --once`` on ``data`` in a subprocess (a Popen); ``pause``:
    ``(stage, n, marker)``, stop inside the transaction at the ``n``-th ``stage``."""
    args = ["monitor-opinion", "--source", feed, "--once", "--data", data]
    if pause is None:
        cmd = [sys.executable, "-m", "tianya.cli", *args]
    else:
        cmd = [sys.executable, "-c", _PAUSED, pause[0], str(pause[1]), pause[2], *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_at(data: str, feed: str, stage: str, marker: str, timeout: float = 180.0) -> None:
    """Run the poller until it stops at ``stage`` (``posts#2``: the second time it writes
    a batch's posts) inside its transaction, then SIGKILL it."""
    if os.path.exists(marker):
        os.remove(marker)
    name, _, nth = stage.partition("#")
    p = monitor(data, feed, pause=(name, int(nth or 1), marker))
    deadline = time.time() + timeout
    while not os.path.exists(marker):
        if p.poll() is not None:
            raise AssertionError(f"the poller ended before {stage}: {p.stdout.read()}")
        if time.time() > deadline:
            p.kill()
            raise AssertionError(f"the poller never reached {stage}")
        time.sleep(0.1)
    time.sleep(0.2)  # the marker is written; the transaction is open, holding its writes
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    assert p.returncode == -signal.SIGKILL


def finish(data: str, feed: str) -> str:
    """Run the poller to its end; its output."""
    p = monitor(data, feed)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    return out


def sample_opinion_frames(frames: dict, path: str) -> dict:
    """The opinion layers as ``tianya generate`` fills them, for the frames of
    :func:`geodata.sample.generate` (ingested in a scratch GeoPackage at ``path``)."""
    from geodata.sample import DEFAULT_SEED
    from layers.catalogue import OPINION
    from tianya.opinion_poller import GAZETTEER_LAYERS, ingest_sample

    s = GeoPackageStore(path)
    try:
        for lid in GAZETTEER_LAYERS:
            s.write_frame(LAYERS[lid], frames[lid])
        ingest_sample(s, DEFAULT_SEED)
        return {lid: s.read_frame(LAYERS[lid]) for lid in OPINION}
    finally:
        s.close()
