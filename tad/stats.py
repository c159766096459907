"""Intervals, comparisons and verdicts for image AUROCs.

Labels and scores in; out come an AUROC interval that stays honest at AUROC 1 (`auroc_ci`), per-defect
AUROCs, DeLong comparisons of two scorings of the same images (a paired permutation test where an AUROC is
0 or 1) within a declared family (Bonferroni), the wording rules the pages draw conclusions with
(`verdict`, `gain_statement`), and mean +- SEM over folds.

The comparison policy of the book is `compare` with `BOOK_FAMILY`: every paired comparison of two
configurations on the same test images is one of a declared family, tested at the Bonferroni level of that
family, so its verdict depends on the comparison alone, never on which other comparisons a page makes: the
same comparison has one verdict wherever it appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata

from tad.evaluate import auroc, check_1d

__all__ = ["VERDICTS", "GAIN_OUTCOMES", "Family", "HEADLINE_COMPARISONS", "BOOK_FAMILY", "auroc_ci",
           "score_interval", "defect_aurocs", "delong_test", "permutation_test", "DELONG",
           "PERMUTATION", "Comparison", "compare", "verdict", "gain_outcome", "gain_statement", "mean_sem"]

VERDICTS = ("higher", "lower", "within noise")
GAIN_OUTCOMES = ("established", "excluded", "neither established nor excluded")


@dataclass(frozen=True)
class Family:
    """A declared family of paired comparisons and its family-wise error rate.

    Each comparison of the family is tested at ``alpha / size`` (Bonferroni): the family-wise error rate is
    at most ``alpha`` whatever the dependence between comparisons, and a comparison's verdict depends on
    itself alone (unlike Holm's, which depends on the family's other p-values).

    Attributes
    ----------
    name : str
        What the family is, in words.
    size : int
        Number of comparisons in it, >= 1.
    alpha : float
        Family-wise error rate, in (0, 1).
    """

    name: str
    size: int
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"family size {self.size!r} must be an int >= 1")
        if not 0 < self.alpha < 1:
            raise ValueError(f"family alpha {self.alpha!r} must lie in (0, 1)")

    @property
    def level(self) -> float:
        """Coverage of each comparison's interval: ``1 - alpha / size``."""
        return 1 - self.alpha / self.size

    def describe(self) -> str:
        """The family as printed beside a verdict, e.g. "family: ..., 8 comparisons, error rate 5 %, each at 99.4 %"."""
        return (f"family: {self.name}, {self.size} comparisons per data set, family-wise error rate "
                f"{100 * self.alpha:g} %; each interval at {_percent(self.level)}")


# The book's headline comparisons (the paper's claims, and the selection page's chosen-vs-best), each tested per
# data set as one paired comparison of two configurations on the same test images; every page's verdict on one
# of them uses this family, so each has one verdict in the whole book.
HEADLINE_COMPARISONS = ("last layer vs layer 1", "last layer vs all layers", "NPCA 50 % vs no reduction",
                        "PCA 50 % vs no reduction", "NPCA 50 % vs PCA 50 %", "MVG vs 1-NN", "average vs max pooling",
                        "augmentation vs none", "EfficientNet-B5 vs the reference backbone", "chosen vs best configuration")
BOOK_FAMILY = Family("the book's headline comparisons (tad.stats.HEADLINE_COMPARISONS)", len(HEADLINE_COMPARISONS))


def auroc_ci(labels: ArrayLike, scores: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """Score-type (Wilson-like) confidence interval of the image AUROC; recommended over `bootstrap_ci`.

    After Newcombe (2006, Stat. Med. 25:559): the interval is every true AUROC ``theta`` that the
    observed ``A`` does not reject, ``(A - theta)**2 <= z**2 * V(theta)``, where ``V`` is Hanley &
    McNeil's (1982) variance of the Mann-Whitney AUROC evaluated *at theta* (not at ``A``), with both
    group sizes in its correction term replaced by their mean ``N* = (m + n) / 2``, so that it does not
    depend on which class is called positive (m good, n anomalous images)::

        V(theta) = theta (1 - theta) / (m n) * [1 + (N* - 1) ((1 - theta) / (2 - theta) + theta / (1 + theta))]

    Why this one: a percentile bootstrap (and DeLong's or Hanley-McNeil's variance at ``A``) has width 0
    when the sample separates perfectly, ``A = 1``, although with 20 good and 63 defective images a
    binormal detector of true AUROC 0.99 separates perfectly about 8 % of the time. Evaluating the
    variance at the candidate ``theta`` keeps the interval open below 1 (at ``A = 1`` the lower end is
    where the normal approximation stops accepting ``theta``: a conservative asymptotic bound, not the
    exact smallest AUROC under which a perfect separation is plausible), as Wilson's
    interval does for a proportion of 1. On simulated binormal scores (``tests/test_stats.py``) its
    coverage is close to nominal in the middle and conservative near 1 (about 97-98 % at 0.95-0.99
    for 20 good / 63 defective images; the misses are then all on the upper side).

    Parameters
    ----------
    labels : array of 0/1 or bool, shape (n,)
        1 (True) marks an anomalous image.
    scores : array of float, shape (n,)
        Anomaly scores; higher means more anomalous.
    level : float
        Two-sided coverage, in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        In [0, 1]; ``high == 1`` when ``A == 1``.
    """
    labels, scores = check_1d(labels, scores)
    _check_level(level)
    low, high = score_interval(np.array([auroc(labels, scores)]), int((~labels).sum()), int(labels.sum()), level)
    return float(low[0]), float(high[0])


def score_interval(aurocs: np.ndarray, n_good: int, n_anomalous: int,
                   level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`auroc_ci` for many AUROCs of the same group sizes at once (vectorised bisection).

    Parameters
    ----------
    aurocs : ndarray of shape (k,)
        Observed AUROCs in [0, 1].
    n_good, n_anomalous : int
        Group sizes, each >= 1.
    level : float

    Returns
    -------
    (low, high) : ndarrays of shape (k,)
    """
    a = np.asarray(aurocs, dtype=np.float64)
    z2 = norm.ppf((1 + level) / 2) ** 2
    n_star = (n_good + n_anomalous) / 2

    def outside(theta: np.ndarray) -> np.ndarray:  # theta rejected by A
        var = theta * (1 - theta) / (n_good * n_anomalous) * (
            1 + (n_star - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta)))
        return (a - theta) ** 2 > z2 * var

    # The accepted set is an interval around A: bisect [0, A] for its low end and [A, 1] for its high end.
    lo_out, lo_in = np.zeros_like(a), a.copy()
    hi_in, hi_out = a.copy(), np.ones_like(a)
    for _ in range(60):
        mid = (lo_out + lo_in) / 2
        rej = outside(mid)
        lo_out, lo_in = np.where(rej, mid, lo_out), np.where(rej, lo_in, mid)
        mid = (hi_in + hi_out) / 2
        rej = outside(mid)
        hi_in, hi_out = np.where(rej, hi_in, mid), np.where(rej, mid, hi_out)
    return lo_in, hi_in


def defect_aurocs(samples: Sequence, scores: ArrayLike, *, level: float = 0.95) -> pd.DataFrame:
    """AUROC of the good test images against each defect type alone, with `auroc_ci` intervals.

    Parameters
    ----------
    samples : sequence of tad.data.Sample, shape (n,)
        A split's test samples (``split.test``); ``label`` 0 marks a good image, ``defect`` names the type.
    scores : array of float, shape (n,)
        Anomaly scores of those samples, in the same order; higher means more anomalous.
    level : float

    Returns
    -------
    DataFrame
        Index "defect" (types in order of first appearance); columns auroc, ci_low, ci_high, n_good,
        n_defective.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(samples),):
        raise ValueError(f"scores has shape {scores.shape}; expected ({len(samples)},), one per sample")
    labels = np.array([s.label for s in samples], dtype=int)
    defects = np.array([s.defect for s in samples], dtype=object)
    good = labels == 0
    rows = {}
    for defect in dict.fromkeys(defects[~good]):
        keep = good | (defects == defect)
        y, s = labels[keep], scores[keep]
        rows[defect] = (auroc(y, s), *auroc_ci(y, s, level=level), int(good.sum()), int((~good & keep).sum()))
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["auroc", "ci_low", "ci_high", "n_good", "n_defective"])
    table.index.name = "defect"
    return table


def delong_test(labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, *,
                level: float = 0.95) -> tuple[float, float, float, float]:
    """Two scorings of the same test images compared: DeLong's p-value, and a MOVER interval of the difference.

    p-value: DeLong et al.'s (1988) test of two correlated AUROCs. The covariance of the two AUROCs comes
    from the structural components (each image's share of pairs won), so the correlation the shared
    images induce is accounted for; two-sided, normal approximation; null hypothesis equal true AUROCs,
    error rate ``1 - level`` per comparison (`compare` sets the level of a declared family).

    Interval: DeLong's own interval collapses where its variance does: two scorings that both separate
    the images perfectly get ``[0, 0]``, the bootstrap's failure at AUROC 1 again. So the interval is
    Zou & Donner's (2008) MOVER for a difference, built from each AUROC's `auroc_ci` (which stays open
    at 1) and DeLong's correlation ``r`` of the two estimates::

        low  = d - sqrt((A_a - l_a)**2 + (u_b - A_b)**2 - 2 r (A_a - l_a)(u_b - A_b))
        high = d + sqrt((u_a - A_a)**2 + (A_b - l_b)**2 - 2 r (u_a - A_a)(A_b - l_b))

    with ``r = 0`` where a variance is 0 (an AUROC of 0 or 1), so two perfect scorings get an honest
    width; scorings that rank the images alike (DeLong variance of the difference 0, AUROCs inside
    (0, 1)) get ``[d, d]``. Near AUROC 1 DeLong's
    p-value is the less reliable of the two: `compare` asks both to agree.

    Parameters
    ----------
    labels : array of 0/1 or bool, shape (n,), at least 2 images of each class
    scores_a, scores_b : array of float, shape (n,)
        Two configurations' anomaly scores of the same images; higher means more anomalous.
    level : float
        Coverage of the interval of the difference.

    Returns
    -------
    (diff, low, high, p) : tuple of float
        ``auroc(a) - auroc(b)``, its interval, and the two-sided p-value (1 when DeLong's variance is 0
        and the difference too).
    """
    labels, a = check_1d(labels, scores_a)
    _, b = check_1d(labels, scores_b)
    _check_level(level)
    if min(labels.sum(), (~labels).sum()) < 2:
        raise ValueError(f"labels must hold at least 2 images of each class; got {int((~labels).sum())} good "
                         f"and {int(labels.sum())} anomalous")
    (auc_a, auc_b), cov = _delong(labels, np.stack([a, b]))
    diff = auc_a - auc_b
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if var > 0:
        p = float(2 * norm.sf(abs(diff) / np.sqrt(var)))
    else:
        p = 1.0 if diff == 0 else 0.0
    if var <= 1e-12 * cov[0, 0] and cov[0, 0] > 0:  # the same ranking: every image contributes equally to both
        return float(diff), float(diff), float(diff), p
    r = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]) if cov[0, 0] > 0 and cov[1, 1] > 0 else 0.0
    m, n = int((~labels).sum()), int(labels.sum())
    (l_a, l_b), (u_a, u_b) = score_interval(np.array([auc_a, auc_b]), m, n, level)
    low = diff - np.sqrt(max((auc_a - l_a) ** 2 + (u_b - auc_b) ** 2 - 2 * r * (auc_a - l_a) * (u_b - auc_b), 0))
    high = diff + np.sqrt(max((u_a - auc_a) ** 2 + (auc_b - l_b) ** 2 - 2 * r * (u_a - auc_a) * (auc_b - l_b), 0))
    return float(diff), float(low), float(high), p


def permutation_test(labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, *, n_resamples: int = 20_000,
                     seed: int = 0) -> tuple[float, float]:
    """Two scorings of the same images compared where DeLong degenerates: a paired permutation test of
    ``AUROC(a) - AUROC(b)``.

    Bandos, Rockette & Gur's (2005) paired permutation test. Each scoring is turned into normalised ranks
    (rank / number of images), so the two share one scale; a permutation swaps the two scorings' ranks
    within each image independently with probability 1/2, and the statistic is the difference of the two
    AUROCs. Its distribution needs no variance estimate, so it stays valid when a scoring separates the
    images perfectly (DeLong's variance 0). A pair (anomalous i, good j) adds to the permuted difference
    ``psi(x_i, y_j) - psi(x'_i, y'_j)`` for the ranks that each image's swap picks, so the permuted
    difference is a sum of per-image terms times independent signs (``e_i`` = +1 kept, -1 swapped)::

        T(e) = 1 / (2 m n) * [sum_i e_i rowsum(D + C)_i + sum_j e_j colsum(D - C)_j]
        D_ij = psi(a_i, a_j) - psi(b_i, b_j),  C_ij = psi(a_i, b_j) - psi(b_i, a_j)

    which the Monte Carlo draws of ``e`` evaluate as one matrix product. Two-sided,
    ``p = (1 + #{|T(e)| >= |T(1)|}) / (1 + n_resamples)``, so the smallest p is ``1 / (1 + n_resamples)``.

    No interval comes with it: a bootstrap of the difference is too narrow where a scoring separates
    perfectly (every resample keeps AUROC 1, so that scoring's own uncertainty is lost), which is why
    `compare` keeps the MOVER interval there.

    Parameters
    ----------
    labels : array of 0/1 or bool, shape (n,), at least 2 images of each class
    scores_a, scores_b : array of float, shape (n,)
        Two configurations' anomaly scores of the same images; higher means more anomalous.
    n_resamples : int
        Monte Carlo permutations, >= 1.
    seed : int
        Seed of the permutations (the result is reproducible).

    Returns
    -------
    (diff, p) : tuple of float
        ``auroc(a) - auroc(b)`` and the two-sided p-value.
    """
    labels, a = check_1d(labels, scores_a)
    _, b = check_1d(labels, scores_b)
    if min(labels.sum(), (~labels).sum()) < 2:
        raise ValueError(f"labels must hold at least 2 images of each class; got {int((~labels).sum())} good "
                         f"and {int(labels.sum())} anomalous")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples {n_resamples!r} must be an int >= 1")
    rng = np.random.default_rng(seed)
    ra, rb = rankdata(a) / a.size, rankdata(b) / b.size
    m, n = int(labels.sum()), int((~labels).sum())
    pa, pb, ga, gb = ra[labels], rb[labels], ra[~labels], rb[~labels]
    d = _psi(pa, ga) - _psi(pb, gb)
    c = _psi(pa, gb) - _psi(pb, ga)
    weights = np.r_[(d + c).sum(axis=1), (d - c).sum(axis=0)] / (2 * m * n)
    diff = float(d.mean())
    swapped = np.unpackbits(rng.integers(0, 256, (n_resamples, -(-weights.size // 8)), dtype=np.uint8), axis=1,
                            count=weights.size)  # 1: the image's two ranks swapped, each with probability 1/2
    permuted = weights.sum() - 2 * (swapped @ weights)
    p = float((1 + np.sum(np.abs(permuted) >= abs(diff) - 1e-12)) / (1 + n_resamples))
    return diff, p


DELONG = "DeLong test, MOVER interval"
PERMUTATION = "paired permutation test (DeLong degenerates at AUROC 0 or 1), MOVER interval"


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two scorings of the same images under a `Family`: ``AUROC(a) - AUROC(b)``.

    Attributes
    ----------
    diff, ci_low, ci_high, p : float
        The difference, its interval at the family's level and its p-value (unadjusted), as ``method``
        computed them.
    level : float
        The interval's coverage (`Family.level`).
    verdict : str
        One of `VERDICTS`: "higher" / "lower" only when ``p < alpha / size`` and, under `DELONG`, the interval
        excludes 0 too (under `PERMUTATION` the p-value alone decides: the interval is then conservative).
    family : str
        `Family.describe`, to print beside the verdict.
    method : str
        How p was computed: `DELONG` (`delong_test`) or `PERMUTATION` (`permutation_test`); the interval is
        `delong_test`'s MOVER under both.
    """

    diff: float
    ci_low: float
    ci_high: float
    p: float
    level: float
    verdict: str
    family: str
    method: str = DELONG

    def text(self, digits: int = 3) -> str:
        """E.g. "higher (+0.012, 99.4 % interval [0.003, 0.021]; DeLong test, MOVER interval; family: ...)"."""
        sign = "−" if self.diff < 0 else "+"
        return (f"{self.verdict} ({sign}{abs(self.diff):.{digits}f}, {_percent(self.level)} interval "
                f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]; {self.method}; {self.family})")


def compare(labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, *,
            family: Family = BOOK_FAMILY) -> Comparison:
    """The book's one paired comparison: ``AUROC(a) - AUROC(b)`` on the same images, verdict under ``family``.

    `delong_test` at the family's Bonferroni level ``1 - alpha / size``; the verdict is "higher" or "lower"
    only when its interval (MOVER, open at AUROC 1) excludes 0 and the p-value is below ``alpha / size``,
    so the family-wise error rate is at most ``alpha``. The verdict depends on this comparison alone:
    wherever the book makes it, with the same family, it reads the same.

    Where DeLong degenerates, because an AUROC is 0 or 1 or the variance of the difference is 0 (its
    p-value is then 0 or 1, and the MOVER interval, built from each AUROC's score interval without their
    correlation, is valid but wide), the p-value comes from `permutation_test` instead (20,000 draws, seed
    0: p down to 5e-5) and decides the verdict alone; the interval stays MOVER's, and `Comparison.method`
    says so. Two scorings that both separate perfectly differ by 0: "within noise".
    """
    labels, a = check_1d(labels, scores_a)
    _, b = check_1d(labels, scores_b)
    if min(labels.sum(), (~labels).sum()) < 2:
        raise ValueError(f"labels must hold at least 2 images of each class; got {int((~labels).sum())} good "
                         f"and {int(labels.sum())} anomalous")
    (auc_a, auc_b), cov = _delong(labels, np.stack([a, b]))
    degenerate = bool({auc_a, auc_b} & {0.0, 1.0}) or cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] <= 0
    diff, low, high, p = delong_test(labels, a, b, level=family.level)
    if degenerate:
        _, p = permutation_test(labels, a, b)
    word = verdict(diff, p=p, alpha=family.alpha / family.size)
    if not degenerate and word != verdict(diff, interval=(low, high)):
        word = "within noise"
    return Comparison(diff, low, high, p, family.level, word, family.describe(),
                      PERMUTATION if degenerate else DELONG)


def verdict(diff: float, *, p: float | None = None, interval: tuple[float, float] | None = None,
            alpha: float = 0.05) -> str:
    """The word a page may use for a difference ``a - b``: "higher", "lower" or "within noise".

    Give exactly one of ``p`` (a p-value; compare it with ``alpha / size`` for one of a family) or
    ``interval`` (an interval of the difference). "higher" / "lower" (a scores higher / lower than b)
    only when ``p < alpha`` or the interval excludes 0, the sign taken from ``diff``; otherwise
    "within noise".

    Returns
    -------
    str
        One of `VERDICTS`.
    """
    if (p is None) == (interval is None):
        raise ValueError("give exactly one of p and interval")
    if p is not None:
        if not 0 <= p <= 1:
            raise ValueError(f"p must lie in [0, 1]; got {p!r}")
        _check_level(1 - alpha)
        clear = p < alpha
    else:
        low, high = interval
        if low > high:
            raise ValueError(f"interval {interval!r} must be (low, high) with low <= high")
        clear = low > 0 or high < 0
    if not clear or diff == 0:
        return "within noise"
    return "higher" if diff > 0 else "lower"


def gain_outcome(interval: tuple[float, float], gain: float) -> str:
    """What an interval of ``AUROC(a) - AUROC(b)`` says of a difference as large as ``gain``: one of `GAIN_OUTCOMES`.

    For a gain (``gain > 0``): "excluded" when the interval's upper end is below it, "established" when its
    lower end is at or above it (a gain at least that large), else "neither established nor excluded". A
    loss (``gain < 0``) mirrored: excluded when the lower end is above it, established when the upper end
    is at or below it.
    """
    low, high = interval
    if gain == 0 or low > high:
        raise ValueError(f"gain must be nonzero and interval (low, high) ordered; got {gain!r}, {interval!r}")
    if gain > 0:
        return "excluded" if high < gain else "established" if low >= gain else GAIN_OUTCOMES[2]
    return "excluded" if low > gain else "established" if high <= gain else GAIN_OUTCOMES[2]


def gain_statement(interval: tuple[float, float], gain: float, *, level: float = 0.95,
                   digits: int = 3) -> str:
    """`gain_outcome` in words, with the interval.

    Returns
    -------
    str
        E.g. "a gain as large as 0.020 is excluded (95 % interval of the difference: [-0.011, 0.014])",
        "a loss at least as large as 0.009 is established (...)", "a gain as large as 0.020 is neither
        established nor excluded (...)".
    """
    outcome = gain_outcome(interval, gain)
    low, high = interval
    kind = "gain" if gain > 0 else "loss"
    size = "at least as large as" if outcome == "established" else "as large as"
    return (f"a {kind} {size} {abs(gain):.{digits}f} is {outcome} "
            f"({_percent(level)} interval of the difference: [{low:.{digits}f}, {high:.{digits}f}])")


def mean_sem(values: ArrayLike) -> tuple[float, float]:
    """Mean and standard error of the mean (sample sd / sqrt(k)), as Rippel et al. report over folds.

    Parameters
    ----------
    values : array of float, shape (k,), k >= 2
        E.g. the AUROCs of `tad.sweep.fold_scores`' disjoint folds.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be 1-D with at least 2 entries; got shape {v.shape}")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


# --- helpers -----------------------------------------------------------------------------------

def _delong(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of k scorings, shape (k, n), and DeLong's covariance of them, shape (k, k)."""
    pos, neg = scores[:, labels], scores[:, ~labels]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, n_pos, n_neg)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)  # per anomalous image, per good image
    cov = np.cov(v10).reshape(len(scores), -1) / v10.shape[1] + np.cov(v01).reshape(len(scores), -1) / v01.shape[1]
    return v10.mean(axis=1), cov


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mann-Whitney kernel of every pair: 1 where x_i > y_j, 1/2 on a tie, else 0; shape (len(x), len(y))."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _percent(level: float) -> str:
    return f"{round(100 * level, 1):g} %"


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
