"""Alarm thresholds from good images only, with the false-positive rate they promise and the one they realise.

Split-conformal calibration: score ``n`` good images that the model was *not* fitted on, and flag a new image
when its score exceeds the ``k``-th smallest of them, ``k = ceil((n + 1)(1 - fpr))``. If the new good image and
the calibration images are exchangeable (drawn alike, scored by the same fitted model), its rank among the
``n + 1`` scores is uniform, so it is flagged with probability ``(n + 1 - k) / (n + 1) <= fpr``
(`expected_fpr`), whatever the score's distribution. That is a promise on average over calibration sets; the
false-positive rate of one calibrated threshold is Beta distributed around it (`fpr_upper_bound`). A rate
realised on test images is a binomial proportion, reported with its exact interval (`clopper_pearson`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import beta

__all__ = ["calibration_split", "conformal_rank", "min_calibration_size", "conformal_threshold", "expected_fpr",
           "fpr_upper_bound", "calibration_percentile", "clopper_pearson"]


def calibration_split(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fitting and calibration rows of ``n`` good images: a seeded permutation, the first ``round(fraction * n)``
    calibrate, the rest fit.

    Returns
    -------
    (fit, calibration) : tuple of sorted int arrays, disjoint, together ``0..n-1``

    Raises
    ------
    ValueError
        ``fraction`` not in (0, 1), or fewer than 2 rows left to fit or 1 to calibrate.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"calibration_fraction {fraction!r} must lie in (0, 1)")
    n_cal = round(fraction * n)
    if n_cal < 1 or n - n_cal < 2:
        raise ValueError(f"{n} good images leave {n - n_cal} to fit and {n_cal} to calibrate: need at least 2 and 1")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


def conformal_rank(n: int, fpr: float) -> int:
    """``k = ceil((n + 1)(1 - fpr))``: which smallest calibration score is the threshold.

    Raises
    ------
    ValueError
        ``fpr`` not in (0, 1), or ``n`` too small for it: ``k > n`` when ``n < 1 / fpr - 1`` (fewer than 99
        good calibration images for 1 %). No threshold among the scores then keeps the promise, since even the
        largest flags a new good image with probability ``1 / (n + 1) > fpr``; the message says how many
        images it takes, or which target these images can promise.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n {n!r} must be a positive int (good calibration images)")
    if not 0 < fpr < 1:
        raise ValueError(f"fpr {fpr!r} must lie in (0, 1)")
    k = math.ceil((n + 1) * (1 - fpr) - 1e-9)  # 1e-9: (99 + 1) * 0.99 is 98.99999999999999 in floats
    if k > n:
        need = min_calibration_size(fpr)
        raise ValueError(f"{n} good calibration images cannot promise a false-positive rate of {fpr:g}: that "
                         f"needs at least {need}; with {n} the smallest target is 1/(n+1) = {1 / (n + 1):.4g}")
    return k


def min_calibration_size(fpr: float) -> int:
    """The fewest good calibration images that can promise ``fpr``: ``ceil(1 / fpr - 1)`` (99 for 1 %)."""
    if not 0 < fpr < 1:
        raise ValueError(f"fpr {fpr!r} must lie in (0, 1)")
    return math.ceil(1 / fpr - 1 - 1e-9)


def conformal_threshold(scores: ArrayLike, fpr: float) -> float:
    """The split-conformal threshold: the ``conformal_rank(n, fpr)``-th smallest calibration score.

    Flag an image anomalous when its score is strictly above the threshold (as
    `tad.evaluate.rates_at_threshold` does); a new good image is then flagged with probability at most
    ``fpr`` (exactly `expected_fpr` when scores do not tie).

    Parameters
    ----------
    scores : array of float, shape (n,)
        Scores of good images held out from the fit (never the fitted images: their scores are too low).
    fpr : float
        Target false-positive rate, in (0, 1).
    """
    s = np.sort(_check_scores(scores))
    return float(s[conformal_rank(s.size, fpr) - 1])


def expected_fpr(n: int, fpr: float) -> float:
    """False-positive rate of the conformal threshold on a new good image, averaged over calibration sets.

    ``(n + 1 - k) / (n + 1)`` with ``k = conformal_rank(n, fpr)``: at most ``fpr``, and above
    ``fpr - 1 / (n + 1)``. With tied scores the rate can only be lower.
    """
    return (n + 1 - conformal_rank(n, fpr)) / (n + 1)


def fpr_upper_bound(n: int, fpr: float, level: float = 0.95) -> float:
    """A bound the false-positive rate of *this* calibrated threshold stays under with probability ``level``.

    Over calibration sets, the rate of the threshold set at the ``k``-th smallest of ``n`` continuous scores
    is Beta(n + 1 - k, k) distributed (the share of good images above an order statistic); its ``level``
    quantile is returned. Its mean is `expected_fpr`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level {level!r} must lie in (0, 1)")
    k = conformal_rank(n, fpr)
    return float(beta.ppf(level, n + 1 - k, k))


def calibration_percentile(calibration: ArrayLike, scores: ArrayLike) -> np.ndarray:
    """Percent of the calibration scores at or below each score: 0 below them all, 100 at or above their max.

    Returns
    -------
    ndarray of shape (m,), float64
    """
    cal = np.sort(_check_scores(calibration))
    return 100.0 * np.searchsorted(cal, np.asarray(scores, dtype=np.float64), side="right") / cal.size


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion: ``k`` successes in ``n`` trials.

    The interval inverts two one-sided binomial tests, each at ``(1 - level) / 2``: its bounds are Beta
    quantiles, ``Beta(k, n - k + 1)`` below and ``Beta(k + 1, n - k)`` above, with 0 at ``k = 0`` and 1 at
    ``k = n``. It covers the true proportion with probability at least ``level`` for every proportion.

    Returns
    -------
    (low, high) : tuple of float
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n {n!r} must be a positive int")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"k {k!r} must be an int in 0..n ({n})")
    if not 0 < level < 1:
        raise ValueError(f"level {level!r} must lie in (0, 1)")
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


# --- helpers -----------------------------------------------------------------------------------

def _check_scores(scores: ArrayLike) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or np.isnan(s).any():
        raise ValueError(f"calibration scores must be a non-empty 1-D array without NaN; got shape {s.shape}")
    return s
