"""Accuracy of the opinion pipeline against a feed's truth (issue 14, "What must show").

The measures, on posts with truth columns as :func:`geodata.opinion.generate_posts` gives
them (``true_community``, ``true_category``, ``true_topic``):

``place_accuracy``
    of the posts whose text names a community (or a grid or landmark in one), the share
    resolved to the right community;
``wrong_place_rate``
    of the same posts, the share resolved to a wrong community (unknown is not wrong);
``place_unknown_rate``
    of the same posts, the share left unknown;
``category_accuracy``
    of all posts, the share with the right category or rightly not actionable;
``topic_f1``
    pairwise F1 of the topic grouping over all posts (a post without a topic, in the
    truth or the prediction, is a topic of its own).

Examples
--------
>>> pairwise_f1([0, 0, 1, -1], [5, 5, 6, None])
1.0
>>> round(pairwise_f1([0, 0, 0, 1], [1, 1, 2, 2]), 3)
0.4
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import pandas as pd

__all__ = ["confusion", "pairwise_f1", "score"]


def _label(v) -> str | None:
    return v if isinstance(v, str) else None


def pairwise_f1(truth: Sequence, pred: Sequence) -> float:
    """Pairwise F1 of a grouping: pairs put together in both / in either.

    ``truth`` labels < 0 or None and ``pred`` labels None (or NA) are singletons.
    """
    t = [f"t{v}" if v is not None and v == v and v >= 0 else f"s{i}" for i, v in enumerate(truth)]
    p = [f"p{v}" if v is not None and not pd.isna(v) else f"s{i}" for i, v in enumerate(pred)]
    pairs_t = sum(comb(c, 2) for c in pd.Series(t).value_counts())
    pairs_p = sum(comb(c, 2) for c in pd.Series(p).value_counts())
    both = sum(comb(c, 2) for c in pd.DataFrame({"t": t, "p": p}).value_counts())
    if pairs_t == 0 and pairs_p == 0:
        return 1.0
    prec = both / pairs_p if pairs_p else 1.0
    rec = both / pairs_t if pairs_t else 1.0
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def confusion(truth: Sequence, pred: Sequence, top: int = 10) -> pd.DataFrame:
    """The most frequent (truth, prediction) pairs where they differ, with counts."""
    df = pd.DataFrame(
        {
            "truth": [_label(v) or "—" for v in truth],
            "predicted": [_label(v) or "—" for v in pred],
        }
    )
    bad = df[df["truth"] != df["predicted"]]
    return bad.value_counts().head(top).rename("posts").reset_index()


def score(result: pd.DataFrame, baseline_community: Sequence | None = None) -> dict:
    """The measures above for a frame from :func:`analytics.opinion.pipeline.understand`.

    Parameters
    ----------
    result : pandas.DataFrame
        Pipeline output that still carries the truth columns.
    baseline_community : sequence, optional
        A baseline's community per post (same order), scored the same way.

    Returns
    -------
    dict
        The measures, counts, and ``place_confusion`` / ``category_confusion`` frames.
    """
    tc = [_label(v) for v in result["true_community"]]
    pc = [_label(v) for v in result["community_code"]]
    named = [v is not None for v in tc]
    n_named = sum(named)

    def place_stats(pred: Sequence) -> tuple[float, float, float]:
        right = sum(1 for t, p, k in zip(tc, pred, named, strict=True) if k and p == t)
        unk = sum(1 for p, k in zip(pred, named, strict=True) if k and p is None)
        wrong = n_named - right - unk
        return right / n_named, wrong / n_named, unk / n_named

    acc, wrong, unk = place_stats(pc)
    out: dict = {
        "posts": len(result),
        "posts_naming_a_community": n_named,
        "place_accuracy": acc,
        "wrong_place_rate": wrong,
        "place_unknown_rate": unk,
        # places given to posts whose text names no community (by GPS or a river)
        "placed_without_a_name": sum(
            1 for t, p in zip(tc, pc, strict=True) if t is None and p is not None
        ),
    }
    if baseline_community is not None:
        b = [_label(v) for v in baseline_community]
        out["baseline_place_accuracy"], out["baseline_wrong_place_rate"], _ = place_stats(b)
    tcat = [_label(v) for v in result["true_category"]]
    pcat = [_label(v) for v in result["category"]]
    out["category_accuracy"] = sum(a == b for a, b in zip(tcat, pcat, strict=True)) / len(tcat)
    out["topic_f1"] = pairwise_f1(list(result["true_topic"]), list(result["topic_id"]))
    named_rows = [i for i, k in enumerate(named) if k]
    out["place_confusion"] = confusion([tc[i] for i in named_rows], [pc[i] for i in named_rows])
    out["category_confusion"] = confusion(tcat, pcat)
    return out
