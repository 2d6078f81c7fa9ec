"""Vectorised conditional permutation inference shared by Gi* and local Moran's I.

For location ``i`` with ``k_i`` neighbours, the null distribution of its spatial lag
``L_i = sum_j w_ij v_j`` is obtained by drawing ``k_i`` values from the other ``n - 1``
locations without replacement (conditional randomisation, Anselin 1995).  One shared matrix of
``permutations x (k_max + 1)`` distinct ids is drawn; location ``i`` uses its first ``k_i`` ids,
with ``i`` itself (if drawn) replaced by id ``k_i`` -- an exact uniform draw from the other
locations.  All random lags for a block of rows are then one dense matrix product (BLAS), so
the cost is ``O(n * k * permutations)`` flops with no Python loop over locations.  Rows whose
weights are all equal (binary or row-standardised) need no product: the shared random sums are
sorted once and each location's counts are two binary searches, ``O(n log P)``, plus a
correction for the ``P * k`` draws that hit the location itself.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["permutation_counts"]

_BLOCK_BYTES = 64 * 2**20


#: Keep the plain rejection draw (redraw whole rows with a duplicate) while the ids it is
#: expected to draw, ``permutations * width / p`` (``p``: the chance that a row has no
#: duplicate, about ``exp(-width**2 / 2n)``), stay within this (about 0.15 s): seeded results
#: stay as they were.  Beyond it the loop could run for ever (``n = 44``, ``width = 44``);
#: distinct ids are then drawn without whole-row rejection (:func:`_distinct_rows`).
_REJECT_DRAWS = 4_000_000
#: Hard bound on the rounds of the rejection loop (rows still bad go to the exact draw).
_MAX_ROUNDS = 2_000
#: Rows of ``n`` random keys drawn at once by :func:`_distinct_rows` (bounds its memory).
_KEY_BYTES = 32 * 2**20


def _draw_ids(n: int, width: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """``permutations x width`` ids, distinct within each row, each row a uniform draw.

    Where that is expected to be quick (:data:`_REJECT_DRAWS`), rows with a duplicate are
    redrawn whole (at most :data:`_MAX_ROUNDS` rounds); otherwise, and for rows still bad
    after those rounds, :func:`_distinct_rows` draws them exactly in bounded time.
    """
    if width > n:
        raise ValueError(f"cannot draw {width} distinct ids from {n}")
    ids = rng.integers(0, n, size=(permutations, width))
    if width == 1:
        return ids
    p_distinct = float(np.exp(np.log1p(-np.arange(width) / n).sum())) if width < n else 0.0
    bad = np.arange(permutations)
    if p_distinct > 0 and permutations * width / p_distinct <= _REJECT_DRAWS:
        for _ in range(_MAX_ROUNDS):
            bad = _rows_with_repeats(ids)
            if bad.size == 0:
                return ids
            ids[bad] = rng.integers(0, n, size=(bad.size, width))
        bad = _rows_with_repeats(ids)  # the last round's redraws
        if bad.size == 0:
            return ids
    ids[bad] = _distinct_rows(n, width, bad.size, rng)
    return ids


def _rows_with_repeats(ids: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``ids`` that hold some id more than once."""
    s = np.sort(ids, axis=1)
    return np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))


def _distinct_rows(n: int, width: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows x width`` ids, distinct within each row, uniform, in bounded time.

    ``width > n / 2``: the ``width`` smallest of ``n`` random keys per row (a uniform subset),
    shuffled (a uniform order); ``O(rows * n)`` with ``n < 2 * width``.  Otherwise each
    repeated id (all but its first occurrence in the row) is redrawn alone until none is
    left: each redraw collides with probability below 1/2, so a few dozen rounds do.  Both
    are exact: a draw that treats all ids alike and ends with distinct ids is uniform over
    the ordered distinct tuples.
    """
    out = np.empty((rows, width), dtype=np.int64)
    if rows == 0:
        return out
    if 2 * width > n:
        chunk = max(1, _KEY_BYTES // (8 * n))
        for r0 in range(0, rows, chunk):
            r1 = min(rows, r0 + chunk)
            keys = rng.random((r1 - r0, n))
            pick = np.argpartition(keys, width - 1, axis=1)[:, :width]
            out[r0:r1] = rng.permuted(pick, axis=1)
        return out
    out[:] = rng.integers(0, n, size=(rows, width))
    while True:
        order = np.argsort(out, axis=1, kind="stable")
        s = np.take_along_axis(out, order, axis=1)
        dup = np.zeros(out.shape, dtype=bool)
        dup[:, 1:] = s[:, 1:] == s[:, :-1]  # a repeat of the value before it (in position order)
        r, c = np.nonzero(dup)
        if r.size == 0:
            return out
        out[r, order[r, c]] = rng.integers(0, n, size=r.size)


def permutation_counts(
    w: sparse.csr_array,
    values: np.ndarray,
    observed_lag: np.ndarray,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Count random lags at least / at most as large as the observed lag.

    Parameters
    ----------
    w : csr_array
        Weights **without** diagonal (the self term is not permuted).
    values : ndarray
        The values that are permuted (``y`` for Gi*, ``z`` for local Moran).
    observed_lag : ndarray
        ``w @ values``.
    permutations : int
    rng : numpy.random.Generator

    Returns
    -------
    n_ge, n_le : ndarray of int
        For each location, the number of permutations whose lag is ``>=`` (``<=``) the observed
        lag; near-ties (relative 1e-10) count in both.
    """
    w = sparse.csr_array(w)
    n = w.shape[0]
    values = np.asarray(values, dtype=float)
    card = np.diff(w.indptr)
    kmax = int(card.max()) if n else 0
    n_ge = np.zeros(n, dtype=np.int64)
    n_le = np.zeros(n, dtype=np.int64)
    if kmax == 0 or n < 2:
        return n_ge + permutations, n_le + permutations
    width = min(kmax + 1, n)
    ids = _draw_ids(n, width, permutations, rng)
    vals = values[ids]  # permutations x width
    # dense padded weights: row i has its k_i weights in columns 0..k_i-1
    rows = np.repeat(np.arange(n), card)
    cols = np.arange(w.nnz) - np.repeat(w.indptr[:-1], card)
    wpad = np.zeros((n, kmax))
    wpad[rows, cols] = w.data
    # corrections: id i drawn in column j < k_i is replaced by the id in column k_i
    pp, jj = np.nonzero(np.ones((permutations, min(kmax, width)), dtype=bool))
    ii = ids[pp, jj]
    hit = jj < card[ii]
    pp, jj, ii = pp[hit], jj[hit], ii[hit]
    repl = np.minimum(card[ii], width - 1)
    delta = wpad[ii, jj] * (vals[pp, repl] - values[ii])
    scale = np.abs(observed_lag).max() + np.abs(values).max() * np.abs(w.data).sum() / n + 1.0
    tol = 1e-10 * scale
    # rows whose weights are all equal (binary, row-standardised): lag = c_i * S, where S is a
    # plain sum of k_i random values; sort the shared sums once and count by binary search
    nz = card > 0
    starts = w.indptr[:-1][nz]
    wmax = np.zeros(n)
    wmin = np.zeros(n)
    wmax[nz] = np.maximum.reduceat(w.data, starts)
    wmin[nz] = np.minimum.reduceat(w.data, starts)
    equal = nz & (wmax == wmin) & (wmax > 0)
    general = ~equal & nz
    tol_rows = np.full(n, tol)
    for k in np.unique(card[equal]):
        rows_k = np.flatnonzero(equal & (card == k))
        c = wmax[rows_k]
        sums = vals[:, :k].sum(axis=1)
        srt = np.sort(sums)
        lo_thr = (observed_lag[rows_k] - tol_rows[rows_k]) / c
        hi_thr = (observed_lag[rows_k] + tol_rows[rows_k]) / c
        n_ge[rows_k] = permutations - np.searchsorted(srt, lo_thr, side="left")
        n_le[rows_k] = np.searchsorted(srt, hi_thr, side="right")
        # location i drawn among its own k ids: its sum uses the replacement id instead
        sel = (card[ii] == k) & equal[ii]
        if sel.any():
            pi, ci = pp[sel], ii[sel]
            old = sums[pi]
            new = old - values[ci] + vals[pi, k]
            lo = (observed_lag[ci] - tol) / wmax[ci]
            hi = (observed_lag[ci] + tol) / wmax[ci]
            np.add.at(n_ge, ci, (new >= lo).astype(np.int64) - (old >= lo))
            np.add.at(n_le, ci, (new <= hi).astype(np.int64) - (old <= hi))
    n_ge[~nz] = permutations
    n_le[~nz] = permutations
    if not general.any():
        return n_ge, n_le
    vt = np.ascontiguousarray(vals[:, :kmax].T)  # kmax x permutations
    grows = np.flatnonzero(general)
    block = max(1, _BLOCK_BYTES // (8 * permutations))
    for b0 in range(0, grows.size, block):
        rows_b = grows[b0 : b0 + block]
        lag = wpad[rows_b] @ vt  # block x permutations
        sel = np.isin(ii, rows_b)
        if sel.any():
            pos = np.searchsorted(rows_b, ii[sel])
            np.add.at(lag, (pos, pp[sel]), delta[sel])
        obs = observed_lag[rows_b, None]
        n_ge[rows_b] = (lag >= obs - tol).sum(axis=1)
        n_le[rows_b] = (lag <= obs + tol).sum(axis=1)
    return n_ge, n_le


def pseudo_p(n_ge: np.ndarray, n_le: np.ndarray, permutations: int, alternative: str) -> np.ndarray:
    """Pseudo p-values from permutation counts.

    ``"directed"``: ``(min(n_ge, n_le) + 1) / (permutations + 1)``, one-tailed in the direction
    of the observed value (GeoDa; esda's ``alternative="directed"``, except that esda folds with
    ``<`` where we count ties, ``<=``); ``"two-sided"``: twice that, capped at 1.
    """
    p = (np.minimum(n_ge, n_le) + 1.0) / (permutations + 1.0)
    if alternative == "two-sided":
        p = np.minimum(1.0, 2.0 * p)
    return p
