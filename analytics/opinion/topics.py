"""Topics: near-duplicate posts and same-issue grouping over a sliding window.

A post joins, in this order,

- its parent's topic when it replies to or reposts a post (``parents``) -- also when it
  says too little to be categorised on its own ("水越来越深了"): it is part of the thread;
- the open topic of its category at its place (community, or the river/landmark when no
  community is known): same place, same category within ``window`` of the topic's last
  post is one issue, so a street light out for a week stays one topic, and the same light
  out again next month is a new one;
- the topic of a near-duplicate (a copy with an @mention or "！！" added): MinHash
  signatures of character 3-shingles, banded for locality-sensitive lookup (buckets per
  category, each keeping its most recent posts), each candidate checked by the exact
  Jaccard similarity of the shingle sets (:data:`NEAR_DUP`, or :data:`NEAR_COPY` when a
  place is unknown), never across two different known places;
- for a post whose place is unknown but has candidates (a typo close to two names, two
  names), the one open topic of its category at a candidate;
- else a new topic.

Only actionable posts (and replies in their threads) get a topic.  :func:`group_topics`
takes plain sequences, so a poller can run it on a batch and keep :class:`TopicState`
between batches.

Examples
--------
>>> import pandas as pd
>>> t = pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:00", "2026-01-05 09:00"])
>>> group_topics(["红塘村路灯坏了", "转发//@a: 红塘村路灯坏了", "红塘村路灯又坏了"], t,
...              ["C1", "C1", "C1"], ["street_light"] * 3)
[0, 0, 1]
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.opinion.category import normalize

__all__ = ["TopicState", "group_topics", "minhash", "shingles"]

_K = 32  # hash functions
_BANDS = 8  # bands of _K // _BANDS rows
_RNG = np.random.default_rng(14)
_A = _RNG.integers(1, 2**63 - 1, _K, dtype=np.uint64) | np.uint64(1)
_B = _RNG.integers(0, 2**63 - 1, _K, dtype=np.uint64)
_PUNCT = re.compile(r"[\s，。！？、：；,.!?:;…~～\"'“”‘’（）()【】]+")
#: Posts kept per LSH bucket (the most recent): bounds the work per post on a busy day.
_BUCKET_CAP = 16
#: Jaccard similarity of shingle sets from which two posts are near-duplicates.
NEAR_DUP = 0.6
#: ... when one of them has no known place: the same words about another place are as
#: similar as a copy with an @mention added, so only a copy counts.
NEAR_COPY = 0.85


def shingles(text: str, k: int = 3) -> frozenset[str]:
    """Character ``k``-shingles of the normalized text (no punctuation, no repost handles).

    >>> sorted(shingles("路灯坏了！"))
    ['灯坏了', '路灯坏']
    """
    t = _PUNCT.sub("", normalize(text))
    if len(t) <= k:
        return frozenset([t]) if t else frozenset()
    return frozenset(t[i : i + k] for i in range(len(t) - k + 1))


def minhash(sh: frozenset[str]) -> np.ndarray:
    """A MinHash signature (``uint64[32]``) of a shingle set."""
    if not sh:
        return np.zeros(_K, dtype=np.uint64)
    h = np.fromiter((zlib.crc32(s.encode()) for s in sh), dtype=np.uint64, count=len(sh))
    with np.errstate(over="ignore"):
        v = h[:, None] * _A[None, :] + _B[None, :]
    return v.min(axis=0)


@dataclass
class TopicState:
    """What :func:`group_topics` remembers between batches (posts within the window)."""

    window: pd.Timedelta = pd.Timedelta(hours=72)
    next_topic: int = 0
    #: key (place, category) -> (topic, time of its last post)
    open: dict[tuple[str, str], tuple[int, pd.Timestamp]] = field(default_factory=dict)
    #: LSH bucket (band, category, band hash) -> recent posts
    #: [(time, shingles, place, category, topic, serial)]
    buckets: dict[tuple[int, str, bytes], list] = field(default_factory=dict)
    serial: int = 0
    #: post id -> topic, for replies and reposts that name their parent
    by_post: dict[str, int] = field(default_factory=dict)
    #: topic -> time of its last post
    last: dict[int, pd.Timestamp] = field(default_factory=dict)
    #: topic -> category of its first post (not expired: one entry per topic, read after a
    #: batch to give replies their topic's category)
    category: dict[int, str] = field(default_factory=dict)

    def expire(self, now: pd.Timestamp) -> None:
        """Forget posts and topics older than the window before ``now``."""
        cut = now - self.window
        self.open = {k: v for k, v in self.open.items() if v[1] >= cut}
        for key in list(self.buckets):
            kept = [e for e in self.buckets[key] if e[0] >= cut]
            if kept:
                self.buckets[key] = kept
            else:
                del self.buckets[key]
        self.last = {k: v for k, v in self.last.items() if v >= cut}
        self.by_post = {k: v for k, v in self.by_post.items() if v in self.last}


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def group_topics(
    texts: Sequence[str],
    times: Sequence[pd.Timestamp] | pd.DatetimeIndex,
    places: Sequence[str | None],
    categories: Sequence[str | None],
    state: TopicState | None = None,
    window_hours: float = 72.0,
    ids: Sequence[str] | None = None,
    parents: Sequence[str | None] | None = None,
    candidates: Sequence[Sequence[str]] | None = None,
) -> list[int | None]:
    """Topic id of each post (None for a post that is not actionable).

    Parameters
    ----------
    texts, times : sequences
        The posts and their times, in time order.
    places : sequence of str or None
        Where each post is about (community code, or another place id; None unknown).
    categories : sequence of str or None
        Category code, None for not actionable.
    state : TopicState, optional
        Carried between batches; a fresh one by default.
    window_hours : float
        A topic stays open this long after its last post (used for a fresh state).
    ids, parents : sequences of str, optional
        Post ids and the id of the post each replies to or reposts (None): a reply in a
        thread ("还是没修好，第3天了") names no place, but joins its parent's topic.
    candidates : sequence of sequences of str, optional
        For a post whose place is unknown, the places it may mean (a typo close to two
        names): it joins an open topic of its category at one of them when exactly one
        such topic is open.

    Returns
    -------
    list of int or None
        A post without a category gets its parent's topic (a reply in the thread) or
        None; ``state.category`` gives each open topic's category.
    """
    st = state or TopicState(window=pd.Timedelta(hours=window_hours))
    rows = _K // _BANDS
    out: list[int | None] = []
    last_expire: pd.Timestamp | None = None
    n = len(texts)
    ids_ = list(ids) if ids is not None else [None] * n
    parents_ = list(parents) if parents is not None else [None] * n
    cands_ = list(candidates) if candidates is not None else [()] * n
    for text, t, place, cat, pid, parent, cands in zip(
        texts, times, places, categories, ids_, parents_, cands_, strict=True
    ):
        t = pd.Timestamp(t)
        if last_expire is None or t - last_expire > st.window / 4:
            st.expire(t)
            last_expire = t
        if cat is None:
            # a reply in an actionable thread ("水越来越深了") is part of its topic even when
            # it says too little to be categorised on its own
            inherited = st.by_post.get(parent) if parent is not None else None
            if inherited is not None:
                st.last[inherited] = t
                if pid is not None:
                    st.by_post[pid] = inherited
            out.append(inherited)
            continue
        sh = shingles(text)
        sig = minhash(sh)
        keys = [(b, cat, sig[b * rows : (b + 1) * rows].tobytes()) for b in range(_BANDS)]
        # a reply or repost: its parent's topic; then the open topic of this place and
        # category; then a near-duplicate; then a topic open at one of the candidates
        topic = st.by_post.get(parent) if parent is not None else None
        okey = (place, cat) if place is not None else None
        if topic is None and okey is not None:
            hit = st.open.get(okey)
            if hit is not None and t - hit[1] <= st.window:
                topic = hit[0]
        best = NEAR_DUP
        cut = t - st.window
        seen: set[int] = set()
        for key in keys if topic is None else ():
            for e in st.buckets.get(key, ()):
                if e[0] < cut or (place is not None and e[2] is not None and e[2] != place):
                    continue
                if e[5] in seen:
                    continue
                seen.add(e[5])
                j = _jaccard(sh, e[1])
                if (place is None or e[2] is None) and j < NEAR_COPY:
                    continue  # one side's place unknown: only a copy tells it is the same
                if j >= best:
                    best, topic = j, e[4]
            if best >= 0.9:  # a repost or a copy: look no further
                break
        if topic is None and place is None and cands:
            hits = {
                h[0]
                for c in cands
                if (h := st.open.get((c, cat))) is not None and t - h[1] <= st.window
            }
            if len(hits) == 1:
                topic = hits.pop()
        if topic is None:
            topic = st.next_topic
            st.next_topic += 1
        if okey is not None:
            st.open[okey] = (topic, t)
        st.last[topic] = t
        st.category.setdefault(topic, cat)
        if pid is not None:
            st.by_post[pid] = topic
        entry = (t, sh, place, cat, topic, st.serial)
        st.serial += 1
        for key in keys:
            bucket = st.buckets.setdefault(key, [])
            bucket.append(entry)
            if len(bucket) > _BUCKET_CAP:  # a busy bucket keeps its most recent posts
                del bucket[0]
        out.append(topic)
    return out
