"""Benjamini–Hochberg false discovery rate control.

Functions
---------
bh_adjust
    BH-adjusted p-values (equal to ``scipy.stats.false_discovery_control(p, method="bh")``).
fdr_reject
    Which tests are rejected at a given FDR level.
"""

from __future__ import annotations

import numpy as np

from analytics.errors import AnalyticsError

__all__ = ["bh_adjust", "fdr_reject"]


def bh_adjust(p) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values).

    Parameters
    ----------
    p : array_like
        p-values in ``[0, 1]``; NaN stays NaN and is not counted as a test.

    Returns
    -------
    numpy.ndarray
        ``q[i] = min_{j : p_j >= p_i} p_j * m / rank_j``, clipped to 1.

    Examples
    --------
    >>> bh_adjust([0.01, 0.04, 0.03, 0.2]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.2]
    """
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise AnalyticsError("p-values must lie in [0, 1]")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    pv = p[ok]
    m = pv.size
    if m == 0:
        return q
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(scaled, 1.0)
    q[ok] = out
    return q


def fdr_reject(p, alpha: float = 0.05) -> np.ndarray:
    """Boolean mask of tests rejected by the BH procedure at FDR level ``alpha``."""
    if not 0 < alpha < 1:
        raise AnalyticsError(f"alpha must lie in (0, 1), got {alpha!r}")
    q = bh_adjust(p)
    return np.nan_to_num(q, nan=2.0) <= alpha
