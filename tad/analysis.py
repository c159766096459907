"""Where a test image's deviation from the good training images lies, and how much the training null space matters.

The principal axes of the good training features (`tad.reduce.spectrum`, descending variance) split into
the half PCA keeps, the half NPCA keeps, and, when n_train - 1 < d, the null space where the training
images do not vary at all. `deviation_by_axes` measures how much of a test image's squared Euclidean
distance to the training mean falls in each group: the evidence for why keeping the smallest-variance
axes (NPCA) separates anomalies. `null_basis_spread` measures how much an AUROC moves when the basis of the
null space is drawn at random instead of taken from `numpy.linalg.eigh`. `shrunk_mahalanobis` and
`shrinkage_aurocs` score with a Gaussian at a chosen shrinkage intensity (how much weight the null space
gets); `subsample_aurocs` follows an AUROC as the training set grows past the dimension, and
`subsample_summary` sums its draws up per size.

The factorial study crosses estimators (`FACTORIAL_ESTIMATORS`, `factorial_estimator`) with subspaces of the
principal axes (`factorial_axes`): `factorial_study` scores every cell, `factorial_contrasts` compares
cells pairwise with `tad.stats.compare` under a declared family (`tad.book.words.verdict_sentence` says
where a contrast came out which way). `below_chance` flags a score whose AUROC is below 0.5 beyond its interval (a ranking
inverted, e.g. by an acquisition shift).

The grey-level helpers measure an acquisition shift between a class's image groups (`grey_levels`,
`grey_level_table`) and remove it by scaling every image to one mean grey level (`normalise_grey`,
`normalised_copies`, written as lossless PNG so the features see only the scaling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.base import BaseEstimator

from tad.estimators import (KNN, MVG, CentroidDistance, OASGaussian, PinvGaussian, RidgeGaussian, WhitenedKNN,
                            make_estimator)
from tad.evaluate import auroc
from tad.reduce import (DEFAULT_BASIS, PrincipalAxes, kept_axes, null_axes, retained_axes,
                        spectrum)
from tad.stats import Family, auroc_ci, compare

__all__ = ["FACTORIAL_ESTIMATORS", "ISOTROPIC_ESTIMATORS", "axis_groups", "below_chance", "deviation_by_axes",
           "factorial_axes", "factorial_contrasts", "factorial_estimator", "factorial_study", "grey_levels",
           "grey_level_table", "normalise_grey", "normalised_copies", "null_basis_spread", "shrunk_mahalanobis",
           "shrinkage_aurocs", "subsample_aurocs", "subsample_summary"]

# The factorial study's estimators, by the names the page prints.
FACTORIAL_ESTIMATORS = ("Ledoit-Wolf MVG", "OAS MVG", "ridge Gaussian", "pseudo-inverse Gaussian",
                        "Euclidean 1-NN", "whitened 1-NN", "distance to mean")
# Those that need no training variance: defined on axes where the good images do not vary at all.
ISOTROPIC_ESTIMATORS = ("Euclidean 1-NN", "distance to mean")


def axis_groups(eigenvalues: np.ndarray, ratio: float = 0.5) -> dict[str, slice]:
    """The axis groups of a descending spectrum, as slices into its eigenvectors' columns.

    Parameters
    ----------
    eigenvalues : ndarray of shape (d,)
        Descending, as returned by `tad.reduce.spectrum`.
    ratio : float in (0, 1]
        Share of the ``d`` axes in the "largest" and "smallest" groups.

    Returns
    -------
    dict
        ``"largest"``: the axes PCA at ``ratio`` keeps; ``"smallest"``: those NPCA at ``ratio`` keeps
        (both with ``basis="dims"``, the paper's reading: ``round(ratio * d)`` axes); ``"null"``: the axes past
        the rank of the training covariance (`tad.reduce.null_axes`; empty when the training features span
        all ``d`` dimensions).
    """
    return {"largest": kept_axes("pca", ratio, eigenvalues, "dims"),
            "smallest": kept_axes("npca", ratio, eigenvalues, "dims"), "null": null_axes(eigenvalues)}


def deviation_by_axes(train: np.ndarray, test: np.ndarray, ratio: float = 0.5) -> pd.DataFrame:
    """Squared distance of each test row to the training mean, split by principal-axis group.

    In plain (not whitened) coordinates: for axis group ``G`` with unit eigenvectors ``v_j``, the value is
    ``sum_{j in G} (v_j . (y - mean))^2``; over all ``d`` axes the sum is ``||y - mean||^2`` ("total").

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Good training features; at least 2 rows.
    test : ndarray of shape (n_test, d)
    ratio : float in (0, 1]
        See `axis_groups`.

    Returns
    -------
    DataFrame of shape (n_test, 4)
        Columns "largest", "smallest", "null" (see `axis_groups`) and "total". Shares are column / total.
    """
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"train {train.shape} and test {test.shape} must be 2-D with the same number of columns")
    if len(train) < 2:
        raise ValueError(f"train needs at least 2 rows to have principal axes, got {len(train)}")
    mean, values, vectors = spectrum(train)
    squared = ((test - mean) @ vectors) ** 2  # (n_test, d): squared coordinate along each principal axis
    out = {name: squared[:, axes].sum(axis=1) for name, axes in axis_groups(values, ratio).items()}
    return pd.DataFrame({**out, "total": ((test - mean) ** 2).sum(axis=1)})


def grey_levels(paths: Sequence[str | Path]) -> np.ndarray:
    """Mean grey level of each image, 0-255 (PIL's "L" luminance of the image as stored).

    Returns
    -------
    ndarray of shape (n_images,), float64
    """
    out = np.empty(len(paths))
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            out[i] = np.asarray(im.convert("L"), dtype=np.float64).mean()
    return out


def grey_level_table(groups: Mapping[str, Sequence[str | Path]], *, low: float = 0.05,
                     high: float = 0.95) -> pd.DataFrame:
    """Median and ``low``-``high`` quantile range of the images' mean grey levels, one row per group.

    Parameters
    ----------
    groups : mapping of str to sequence of path
        Group name (e.g. "train (good)") to its image files; each group non-empty.

    Returns
    -------
    DataFrame of shape (n_groups, 4)
        Index the group names; columns "images", "median", "q05", "q95" (named for the default quantiles:
        ``f"q{100 * low:02.0f}"``), quantiles by linear interpolation (`numpy.quantile`).
    """
    if not 0 <= low < high <= 1:
        raise ValueError(f"quantiles low={low}, high={high} must satisfy 0 <= low < high <= 1")
    empty = [name for name, paths in groups.items() if len(paths) == 0]
    if empty:
        raise ValueError(f"groups {empty} hold no images")
    rows = {}
    for name, paths in groups.items():
        g = grey_levels(paths)
        rows[name] = {"images": len(g), "median": float(np.median(g)),
                      f"q{100 * low:02.0f}": float(np.quantile(g, low)), f"q{100 * high:02.0f}": float(np.quantile(g, high))}
    return pd.DataFrame.from_dict(rows, orient="index")


def normalise_grey(image: Image.Image, target: float) -> Image.Image:
    """``image`` with every pixel value multiplied by ``target / mean grey level``, rounded and clipped to 0-255.

    The mode is kept (grayscale stays "L", colour stays "RGB"; other modes are converted to RGB). The result's
    mean grey level equals ``target`` up to rounding, unless clipping at 255 lowers it (bright images scaled up).

    Raises
    ------
    ValueError
        ``target`` outside (0, 255], or an all-black image (no scale brings it to ``target``).
    """
    if not 0 < target <= 255:
        raise ValueError(f"target grey level {target!r} must be in (0, 255]")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    mean = np.asarray(image.convert("L"), dtype=np.float64).mean()
    if mean == 0:
        raise ValueError("the image is all black: no scaling brings its mean grey level to the target")
    pixels = np.asarray(image, dtype=np.float64) * (target / mean)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode=image.mode)


def normalised_copies(paths: Sequence[str | Path], folder: str | Path, target: float) -> list[Path]:
    """`normalise_grey` of each image written to ``folder`` as lossless PNG; returns the new paths in order.

    Files are named ``{index:05d}_{stem}.png``; an existing file of that name is reused only if it was made
    for the same ``target`` (the folder keeps a ``target.txt``), else everything is rewritten.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "target.txt"
    fresh = stamp.is_file() and stamp.read_text() == repr(float(target))
    out = []
    for i, path in enumerate(paths):
        dest = folder / f"{i:05d}_{Path(path).stem}.png"
        if not (fresh and dest.is_file()):
            with Image.open(path) as im:
                normalise_grey(im, target).save(dest, format="PNG", compress_level=1)  # lossless, fast
        out.append(dest)
    stamp.write_text(repr(float(target)))
    return out


def null_basis_spread(train: np.ndarray, test: np.ndarray, labels: np.ndarray, reduction: str,
                      ratio: float | None, estimator: str, *, basis: str = DEFAULT_BASIS, n_draws: int = 20,
                      seed: int = 0, flow_params: dict | None = None) -> np.ndarray:
    """Image AUROCs of one reduction under random orthonormal bases of the training null space.

    Each draw rotates the null-space block of the principal axes (`tad.reduce.null_axes`) by a Haar-random
    orthogonal matrix (QR of a Gaussian matrix, signs fixed), keeps the same axis positions as
    `tad.reduce.kept_axes`, and refits the estimator. When the reduction keeps all or none of the null space
    (``View.basis_dependent`` False) every draw gives the AUROC of `tad.sweep.score` up to rounding (for
    estimators invariant to rotations, MVG and k-NN); when it keeps part of it, the spread is how much the
    AUROC owes to the arbitrary basis ``eigh`` returned. Report it as an interval, e.g. min to max.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Good training features.
    test : ndarray of shape (n_test, d)
    labels : ndarray of shape (n_test,)
        1 = anomalous.
    reduction, ratio, basis
        As `tad.reduce.kept_axes`.
    estimator : one of `tad.estimators.ESTIMATORS`
    n_draws : int
        Random bases drawn.
    seed : int
        Seeds the bases (and the estimator).

    Returns
    -------
    ndarray of shape (n_draws,)
        One AUROC per random null-space basis.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ValueError(f"n_draws {n_draws!r} must be a positive int")
    axes = PrincipalAxes.fit(np.asarray(train, dtype=np.float64))
    view = axes.view(reduction, ratio, basis)
    null = null_axes(axes.eigenvalues)
    Zx, Zy = axes.project(train), axes.project(test)
    rng = np.random.default_rng(seed)
    out = np.empty(n_draws)
    for i in range(n_draws):
        if view.method == "none":
            Ztrain, Ztest = train, test
        else:
            Q = _random_rotation(null.stop - null.start, rng)
            Ztrain, Ztest = Zx.copy(), Zy.copy()
            Ztrain[:, null], Ztest[:, null] = Zx[:, null] @ Q, Zy[:, null] @ Q
            Ztrain, Ztest = np.ascontiguousarray(Ztrain[:, view.axes]), np.ascontiguousarray(Ztest[:, view.axes])
        est = make_estimator(estimator, seed=seed, **(flow_params or {})).fit(Ztrain)
        out[i] = auroc(labels, est.score_samples(Ztest))
    return out


def _random_rotation(m: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal (m, m) matrix: QR of a Gaussian matrix with R's diagonal made positive."""
    q, r = np.linalg.qr(rng.normal(size=(m, m)))
    return q * np.sign(np.diag(r))


def shrunk_mahalanobis(train: np.ndarray, test: np.ndarray, shrinkage: float | None = None
                       ) -> tuple[np.ndarray, float]:
    """Squared Mahalanobis distances under a shrunk covariance with a given (or Ledoit-Wolf) intensity.

    The covariance is ``(1 - delta) S + delta mu I`` with ``S`` the empirical (1/n) covariance of ``train``
    and ``mu = trace(S) / d``, as `tad.estimators.MVG` shrinks it; along a principal axis of training
    variance ``lambda_i`` the distance divides by ``(1 - delta) lambda_i + delta mu``, so null-space axes
    (``lambda_i = 0``) get the finite weight ``1 / (delta mu)``, not an infinite one.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Good training features; at least 2 rows.
    test : ndarray of shape (n_test, d)
    shrinkage : float in (0, 1] or None
        ``delta``; None means Ledoit-Wolf's estimate, i.e. exactly `tad.estimators.MVG`.

    Returns
    -------
    scores : ndarray of shape (n_test,)
        Higher = more anomalous.
    delta : float
        The intensity used.
    """
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1] or len(train) < 2:
        raise ValueError(f"train {train.shape} (at least 2 rows) and test {test.shape} must be 2-D with the same "
                         "number of columns")
    if shrinkage is None:
        est = MVG().fit(train)
        return est.score_samples(test), est.shrinkage_
    if isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float)) or not 0 < shrinkage <= 1:
        raise ValueError(f"shrinkage {shrinkage!r} must be None (Ledoit-Wolf) or a float in (0, 1]")
    mean, values, vectors = spectrum(train)
    values = values * (len(train) - 1) / len(train)  # the 1/n covariance MVG shrinks
    variances = (1 - shrinkage) * values + shrinkage * values.sum() / len(values)
    return ((((test - mean) @ vectors) ** 2) / variances).sum(axis=1), float(shrinkage)


def shrinkage_aurocs(train: np.ndarray, test: np.ndarray, labels: np.ndarray,
                     reductions: list[tuple[str, float | None]], shrinkages: list[float | None], *,
                     basis: str = DEFAULT_BASIS) -> pd.DataFrame:
    """Image AUROC of each reduction followed by a shrunk Gaussian at each shrinkage intensity.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
    test : ndarray of shape (n_test, d)
    labels : ndarray of shape (n_test,)
        1 = anomalous.
    reductions : list of (method, ratio)
        As `tad.reduce.kept_axes`.
    shrinkages : list of float or None
        See `shrunk_mahalanobis`; None is Ledoit-Wolf's estimate.
    basis : one of `tad.reduce.BASES`

    Returns
    -------
    DataFrame
        One row per (reduction, shrinkage): ``reduction``, ``ratio``, ``shrinkage`` (as asked, NaN for
        Ledoit-Wolf), ``delta`` (the intensity used), ``auroc``, ``n_null_kept``.
    """
    axes = PrincipalAxes.fit(np.asarray(train, dtype=np.float64))
    Zx, Zy = axes.project(train), axes.project(test)
    rows = []
    for method, ratio in reductions:
        view = axes.view(method, ratio, basis)
        for shrinkage in shrinkages:
            s, delta = shrunk_mahalanobis(Zx[:, view.axes], Zy[:, view.axes], shrinkage)
            rows.append({"reduction": method, "ratio": ratio, "shrinkage": shrinkage, "delta": delta,
                         "auroc": auroc(labels, s), "n_null_kept": view.n_null_kept})
    return pd.DataFrame(rows)


def subsample_aurocs(train: np.ndarray, test: np.ndarray, labels: np.ndarray, sizes: list[int], *,
                     reduction: str, ratio: float | None, estimator: str, basis: str = DEFAULT_BASIS,
                     n_draws: int = 1, seed: int = 0) -> pd.DataFrame:
    """Image AUROC with its `tad.stats.auroc_ci` interval when fitted on random subsets of the training rows.

    For each size, ``n_draws`` subsets are drawn without replacement (seeded; a size equal to ``n_train``
    is the whole set, drawn once), reduced and fitted as `tad.sweep.score` does, and scored on the full test set.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
    test : ndarray of shape (n_test, d)
    labels : ndarray of shape (n_test,)
        1 = anomalous.
    sizes : list of int
        Training-set sizes, each from 2 to ``n_train``.
    reduction, ratio, basis, estimator
        As `tad.sweep.score`.
    n_draws : int
        Subsets per size.
    seed : int
        Seeds the subsets and the estimator.

    Returns
    -------
    DataFrame
        One row per (size, draw): ``n_train``, ``draw``, ``d``, ``n_null`` (training null-space dimension of
        the subset), ``n_null_kept``, ``auroc``, ``ci_low``, ``ci_high``.
    """
    train = np.asarray(train, dtype=np.float64)
    bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 2 <= s <= len(train)]
    if bad:
        raise ValueError(f"sizes {bad} must be ints from 2 to the number of training rows ({len(train)})")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ValueError(f"n_draws {n_draws!r} must be a positive int")
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        for draw in range(1 if size == len(train) else n_draws):
            X = train[np.sort(rng.choice(len(train), size=size, replace=False))]
            axes = PrincipalAxes.fit(X)
            view = axes.view(reduction, ratio, basis)
            if reduction == "none":
                Xr, Yr = X, test
            else:  # as `tad.trial.score` reduces, with the decomposition made once
                Xr, Yr = axes.project(X, view), axes.project(test, view)
            s = make_estimator(estimator, seed=seed).fit(Xr).score_samples(Yr)
            lo, hi = auroc_ci(labels, s)
            rows.append({"n_train": int(size), "draw": draw, "d": X.shape[1], "n_null": view.n_null,
                         "n_null_kept": view.n_null_kept, "auroc": auroc(labels, s), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def subsample_summary(draws: pd.DataFrame) -> pd.DataFrame:
    """`subsample_aurocs` rows summed up per training-set size: mean, spread and widest interval of the draws.

    Parameters
    ----------
    draws : DataFrame
        Rows of `subsample_aurocs` (``n_train``, ``d``, ``auroc``, ``ci_low``, ``ci_high``), optionally with
        columns ``dataset``, ``layer``, ``reduction``, ``estimator`` that tell curves apart.

    Returns
    -------
    DataFrame
        One row per curve and size: those columns, ``n_train``, ``d``, ``n_over_d`` (``n_train / d``),
        ``draws`` (subsets drawn), ``auroc_mean``, ``auroc_min``, ``auroc_max`` (the spread over draws),
        ``ci_low`` (lowest interval end) and ``ci_high`` (highest).
    """
    keys = [c for c in ("dataset", "layer", "reduction", "estimator") if c in draws.columns] + ["n_train", "d"]
    out = draws.groupby(keys, sort=False).agg(draws=("auroc", "size"), auroc_mean=("auroc", "mean"),
                                               auroc_min=("auroc", "min"), auroc_max=("auroc", "max"),
                                               ci_low=("ci_low", "min"), ci_high=("ci_high", "max")).reset_index()
    out.insert(len(keys), "n_over_d", out.n_train / out.d)
    return out


def below_chance(labels: np.ndarray, scores: np.ndarray, *, level: float = 0.95) -> bool:
    """Whether the AUROC of ``scores`` is below 0.5 beyond its `tad.stats.auroc_ci` interval at ``level``.

    Such a score ranks the good images above the anomalous ones systematically: its ranking is inverted
    (on screw's loud axes, by an acquisition shift between the training and the test images).
    """
    return auroc_ci(labels, scores, level=level)[1] < 0.5


def factorial_estimator(name: str, *, ridge: float = 0.01) -> BaseEstimator:
    """A fresh estimator for a name in `FACTORIAL_ESTIMATORS`.

    ``"Ledoit-Wolf MVG"`` is `tad.estimators.MVG`, ``"OAS MVG"`` `OASGaussian`, ``"ridge Gaussian"``
    `RidgeGaussian` (``alpha=ridge``), ``"pseudo-inverse Gaussian"`` `PinvGaussian` (every axis it is given
    counts: `factorial_study` gives it the axes with training variance only), ``"Euclidean 1-NN"`` `KNN`
    (k = 1), ``"whitened 1-NN"`` `WhitenedKNN` (k = 1, ``alpha=ridge``), ``"distance to mean"``
    `CentroidDistance`.
    """
    makers = {"Ledoit-Wolf MVG": MVG, "OAS MVG": OASGaussian, "ridge Gaussian": lambda: RidgeGaussian(alpha=ridge),
              "pseudo-inverse Gaussian": lambda: PinvGaussian(rtol=0.0), "Euclidean 1-NN": lambda: KNN(k=1),
              "whitened 1-NN": lambda: WhitenedKNN(k=1, alpha=ridge), "distance to mean": CentroidDistance}
    if name not in makers:
        raise ValueError(f"estimator {name!r} not in {FACTORIAL_ESTIMATORS}")
    return makers[name]()


def factorial_axes(eigenvalues: np.ndarray, ratio: float = 0.5,
                   variances: Sequence[float] = (0.95, 0.99)) -> dict[str, slice]:
    """The factorial study's reductions, each a slice of the descending principal axes.

    With ``rank`` the axes of non-zero training variance (`tad.reduce.null_axes`), ``p`` = ``ratio`` in
    percent and ``k_v`` = `tad.reduce.retained_axes` at share ``v``:

    - ``"none"``: every axis; ``"non-null axes"``: the first ``rank`` (none without the null block);
    - ``"PCA p %"`` / ``"NPCA p %"``: the largest / smallest ``ratio`` of the non-null axes (the ``"rank"``
      reading of `tad.reduce.kept_axes`); ``"NPCA p % + null"``: NPCA's axes with the null block added;
    - ``"null space (SPE)"``: the null block alone, where the distance to the mean is the SPE (Q statistic)
      of the full-rank PCA; empty when the training features span every dimension;
    - ``"T² axes (v %)"``: the leading ``k_v`` axes, where the pseudo-inverse Gaussian is Hotelling's T²;
      ``"DFM residual (v %)"``: the axes after them, where the distance to the mean is DFM's score.

    Returns
    -------
    dict of str to slice
        In the order above; a slice may be empty.
    """
    d = len(eigenvalues)
    rank = null_axes(eigenvalues).start
    percent = f"{100 * ratio:g} %"
    npca = kept_axes("npca", ratio, eigenvalues, "rank")
    out = {"none": slice(0, d), "non-null axes": slice(0, rank),
           f"PCA {percent}": kept_axes("pca", ratio, eigenvalues, "rank"), f"NPCA {percent}": npca,
           f"NPCA {percent} + null": slice(npca.start, d), "null space (SPE)": slice(rank, d)}
    for v in variances:
        k = retained_axes(eigenvalues, v)
        out[f"T² axes ({100 * v:g} %)"] = slice(0, k)
        out[f"DFM residual ({100 * v:g} %)"] = slice(k, d)
    return out


def factorial_study(train: np.ndarray, test: np.ndarray, labels: np.ndarray, *, ratio: float = 0.5,
                    variances: Sequence[float] = (0.95, 0.99),
                    estimators: Sequence[str] = FACTORIAL_ESTIMATORS,
                    ridge: float = 0.01) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Every estimator on every reduction of `factorial_axes`: test scores and AUROCs with intervals.

    The features are projected once on the training principal axes and each reduction's columns sliced
    out; for "none" this is a rotation of the features, which leaves every estimator here unchanged. Cells
    that are not defined are left out: a reduction with no axes, and on the null block alone (no training
    variance) every estimator but the `ISOTROPIC_ESTIMATORS`. The pseudo-inverse Gaussian is fitted on the
    reduction's non-null axes only (the null ones would get weight 0 anyway, but their rounding-level
    variances would not be told from zero reliably within a small block).

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Good training features.
    test : ndarray of shape (n_test, d)
    labels : ndarray of shape (n_test,)
        1 = anomalous.
    ratio, variances
        See `factorial_axes`.
    estimators : sequence of names in `FACTORIAL_ESTIMATORS`
    ridge : float > 0
        See `factorial_estimator`.

    Returns
    -------
    table : DataFrame
        One row per defined cell: ``reduction``, ``estimator``, ``n_axes`` (columns the estimator saw),
        ``n_null_kept`` (of them in the null block), ``auroc``, ``ci_low``, ``ci_high`` (`auroc_ci`).
    scores : dict of (reduction, estimator) to ndarray of shape (n_test,)
    """
    unknown = sorted(set(estimators) - set(FACTORIAL_ESTIMATORS))
    if unknown:
        raise ValueError(f"estimators {unknown} not in {FACTORIAL_ESTIMATORS}")
    axes = PrincipalAxes.fit(np.asarray(train, dtype=np.float64))
    rank = null_axes(axes.eigenvalues).start
    Zx, Zy = axes.project(train), axes.project(test)
    rows, scores = [], {}
    for reduction, kept in factorial_axes(axes.eigenvalues, ratio, variances).items():
        for name in estimators:
            stop = min(kept.stop, rank) if name == "pseudo-inverse Gaussian" else kept.stop
            if stop <= kept.start or (kept.start >= rank and name not in ISOTROPIC_ESTIMATORS):
                continue
            cols = slice(kept.start, stop)
            s = factorial_estimator(name, ridge=ridge).fit(Zx[:, cols]).score_samples(Zy[:, cols])
            scores[reduction, name] = s
            rows.append({"reduction": reduction, "estimator": name, "n_axes": stop - kept.start,
                         "n_null_kept": max(0, stop - max(kept.start, rank)), "auroc": auroc(labels, s),
                         **dict(zip(("ci_low", "ci_high"), auroc_ci(labels, s)))})
    return pd.DataFrame(rows), scores


def factorial_contrasts(labels: np.ndarray, scores: Mapping[tuple[str, str], np.ndarray],
                        pairs: Sequence[tuple[str, str]], family: Family) -> pd.DataFrame:
    """Paired comparisons of reductions under each estimator: ``AUROC(a) - AUROC(b)`` by `tad.stats.compare`.

    Parameters
    ----------
    labels : ndarray of shape (n_test,)
    scores : mapping of (reduction, estimator) to scores
        As `factorial_study` returns.
    pairs : sequence of (a, b)
        Reductions to compare, each under every estimator that has scores for both.
    family : tad.stats.Family
        The declared family every comparison is tested in.

    Returns
    -------
    DataFrame
        One row per (pair, estimator): ``a``, ``b``, ``estimator``, ``diff``, ``ci_low``, ``ci_high``, ``p``,
        ``verdict``, ``family`` (`tad.stats.Comparison`). A pair whose two scores are identical (one
        model: e.g. with and without a null block that is empty) is left out.
    """
    rows = []
    estimators = list(dict.fromkeys(name for _, name in scores))
    for a, b in pairs:
        for name in estimators:
            if (a, name) not in scores or (b, name) not in scores or np.array_equal(scores[a, name], scores[b, name]):
                continue
            c = compare(labels, scores[a, name], scores[b, name], family=family)
            rows.append({"a": a, "b": b, "estimator": name, "diff": c.diff, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "p": c.p, "verdict": c.verdict, "family": c.family})
    return pd.DataFrame(rows, columns=["a", "b", "estimator", "diff", "ci_low", "ci_high", "p", "verdict",
                                       "family"])
