"""Has the good data shifted between training and test? A two-sample test of two feature matrices.

`two_sample_test` asks whether a class's good training images and its good test images have the same
distribution of features; `shift_audit` runs it for every (data set, layer) of a build under one declared
family of tests; `acquisition_confounds` names the data sets where a detected shift and a photometric
normalisation that changes the AUROC meet at the same layer (screw's darker good test images are the
example: the detector then scores acquisition, not defects).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tad.stats import Family

__all__ = ["TwoSample", "two_sample_test", "shift_audit", "acquisition_confounds"]

_CHUNK = 256  # permutations scored per matrix product (bounds memory at _CHUNK x n_images)


class TwoSample(NamedTuple):
    """Result of `two_sample_test`.

    Attributes
    ----------
    statistic : float
        Unbiased estimate of the squared MMD; about 0 (it can be negative) when the distributions agree.
    p : float
        Permutation p-value, ``(1 + #{permuted statistic >= observed}) / (1 + n_permutations)``.
    bandwidth : float
        The RBF kernel's length scale (median pairwise distance of the pooled, standardised rows).
    """

    statistic: float
    p: float
    bandwidth: float


def two_sample_test(first: ArrayLike, second: ArrayLike, *, n_permutations: int = 999, seed: int = 0,
                    standardise: bool = True) -> TwoSample:
    """Maximum mean discrepancy (MMD) test of "the rows of ``first`` and ``second`` come from one distribution".

    The statistic is Gretton et al.'s (2012) unbiased squared MMD with a Gaussian (RBF) kernel
    ``k(x, y) = exp(-|x - y|^2 / (2 h^2))``, ``h`` the median pairwise distance of the pooled rows (the median
    heuristic); with ``standardise`` each column is first centred and scaled by its pooled standard
    deviation, so channels of large activation do not set the distance alone. The p-value is a permutation
    test: the pooled rows are split at random ``n_permutations`` times into groups of the two sizes (seeded,
    so reproducible) and the statistic recomputed. Bandwidth and standardisation depend on the pooled rows
    only, which every split shares, so the test is exact: under the null ``P(p <= a) <= a``.

    Why MMD rather than a classifier two-sample test: here one group (the good test images, 20-60 per
    MVTec AD class) is much smaller than the other (about 200 training images) and the features have
    hundreds of columns. A classifier's cross-validated AUROC on so few minority rows is noisy, depends on
    the classifier's regularisation, and its permutation p-value needs every fold refitted per permutation.
    The MMD needs no fitting: one kernel matrix serves every permutation, each permutation's statistic
    being two matrix-vector products (batched below as one matrix product), so 999 permutations of
    300 images x 1000 features take well under a second.

    Parameters
    ----------
    first : array of shape (m, d)
        E.g. the training images' features; m >= 2.
    second : array of shape (n, d)
        E.g. the good test images' features; n >= 2, the same d.
    n_permutations : int
        Random splits for the p-value, >= 1; the smallest p reachable is ``1 / (1 + n_permutations)``.
    seed : int
        Seed of the random splits.
    standardise : bool
        Centre and scale each column by the pooled rows' mean and standard deviation first (constant
        columns are left at 0).

    Returns
    -------
    TwoSample
        ``(statistic, p, bandwidth)``.

    Raises
    ------
    ValueError
        A matrix that is not 2-D, has fewer than 2 rows or non-finite values; different column counts; a
        bad ``n_permutations``.
    """
    x, y = _matrix(first, "first"), _matrix(second, "second")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"second has {y.shape[1]} columns; expected {x.shape[1]}, as first")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations {n_permutations!r} must be an int >= 1")
    pooled = np.vstack([x, y])
    if standardise:
        pooled = pooled - pooled.mean(axis=0)
        std = pooled.std(axis=0)
        pooled = pooled / np.where(std > 0, std, 1.0)
    sq = np.einsum("ij,ij->i", pooled, pooled)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
    np.fill_diagonal(dist2, 0.0)
    median = float(np.sqrt(np.median(dist2[np.triu_indices(len(pooled), 1)])))
    bandwidth = median if median > 0 else 1.0  # all rows equal: any bandwidth gives statistic 0
    kernel = np.exp(-dist2 / (2 * bandwidth ** 2))

    m = len(x)
    observed = _mmd2(kernel, np.arange(len(pooled))[None, :] < m, m)[0]
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, n_permutations, _CHUNK):
        b = min(_CHUNK, n_permutations - start)
        ranks = rng.random((b, len(pooled))).argsort(axis=1).argsort(axis=1)
        permuted = _mmd2(kernel, ranks < m, m)
        exceed += int((permuted >= observed - 1e-12).sum())  # a tie counts as reaching the observed value
    return TwoSample(float(observed), (1 + exceed) / (1 + n_permutations), bandwidth)


def shift_audit(pairs: Mapping[tuple[str, int | str], tuple[ArrayLike, ArrayLike]], family: Family, *,
                n_permutations: int | None = None, seed: int = 0) -> pd.DataFrame:
    """`two_sample_test` of training vs good test features for every (data set, layer), under one family.

    As the book's comparisons, the family is declared per data set: each test rejects ("shift" True) when its
    p is below ``family.alpha / family.size`` (Bonferroni), so for each data set the chance that any of its
    tests flags a shift where there is none is at most ``family.alpha``, whatever other data sets the run has.

    Parameters
    ----------
    pairs : mapping of (data set, layer) to (train, test_good)
        Feature matrices, shapes (m, d) and (n, d).
    family : tad.stats.Family
        The declared family of each data set's tests; its size must cover the pairs of any one data set.
    n_permutations : int, optional
        As `two_sample_test`; ``1 / (1 + n_permutations)`` must be below the family's per-test level, else
        no test could ever reject. None means enough for the smallest reachable p to be a tenth of that level.
    seed : int
        As `two_sample_test`, the same for every pair.

    Returns
    -------
    DataFrame
        One row per pair, in order: dataset, layer, n_train, n_test_good, d, mmd2, bandwidth, p, shift (bool),
        family (the family in words, with each test's level, to print beside the verdicts).

    Raises
    ------
    ValueError
        A family smaller than the number of pairs of a data set, or ``n_permutations`` too few for the
        family's level.
    """
    per_set = max(Counter(name for name, _ in pairs).values(), default=0)
    if family.size < per_set:
        raise ValueError(f"family size {family.size} is smaller than the {per_set} tests of one data set in pairs")
    level = family.alpha / family.size
    if n_permutations is None:
        n_permutations = int(np.ceil(10 / level))
    if 1 / (1 + n_permutations) >= level:
        raise ValueError(f"n_permutations {n_permutations} cannot give a p below the family's per-test level "
                         f"{level:.2g}; use at least {int(np.ceil(1 / level))}")
    words = (f"family: {family.name}, {family.size} tests per data set, family-wise error rate "
             f"{100 * family.alpha:g} %; each test flags a shift at p < {level:.2g}")
    rows = []
    for (name, layer), (train, test) in pairs.items():
        result = two_sample_test(train, test, n_permutations=n_permutations, seed=seed)
        rows.append({"dataset": name, "layer": layer, "n_train": len(train), "n_test_good": len(test),
                     "d": np.shape(train)[1], "mmd2": result.statistic, "bandwidth": result.bandwidth,
                     "p": result.p, "shift": result.p < level, "family": words})
    return pd.DataFrame(rows, columns=["dataset", "layer", "n_train", "n_test_good", "d", "mmd2", "bandwidth",
                                       "p", "shift", "family"])


def acquisition_confounds(table: pd.DataFrame) -> list[str]:
    """Data sets with a layer where a shift is detected and normalisation changes the AUROC beyond noise.

    Parameters
    ----------
    table : DataFrame
        One row per (data set, layer): columns "dataset", "shift" (bool, as `shift_audit`) and "normalised is"
        (a `tad.stats.VERDICTS` word for normalised vs as stored).

    Returns
    -------
    list of str
        The data sets, in order of first appearance.
    """
    missing = sorted({"dataset", "shift", "normalised is"} - set(table.columns))
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    both = table["shift"].astype(bool) & (table["normalised is"] != "within noise")
    return list(dict.fromkeys(table.loc[both, "dataset"]))


def _matrix(values: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite values")
    return a


def _mmd2(kernel: np.ndarray, first: np.ndarray, m: int) -> np.ndarray:
    """Unbiased squared MMD for each row of ``first`` (bool, shape (b, N), m True per row) as group one."""
    a = first.astype(np.float64)
    n = kernel.shape[0] - m
    diag = np.diag(kernel)
    row = kernel.sum(axis=1)
    aka = np.einsum("bi,bi->b", a @ kernel, a)
    ak1 = a @ row
    within_first = aka - a @ diag
    within_second = kernel.sum() - 2 * ak1 + aka - (diag.sum() - a @ diag)
    between = ak1 - aka
    return within_first / (m * (m - 1)) + within_second / (n * (n - 1)) - 2 * between / (m * n)
