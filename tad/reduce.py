"""Dimension reduction of features: PCA (largest-variance directions), NPCA (smallest), or none.

`PrincipalAxes` eigen-decomposes the good training features' covariance once (batched over leading
dimensions for per-position maps) and hands out any (method, ratio, basis) `View` of it: which axes are
kept, how many lie in the training null space, and whether the result depends on an arbitrary basis of
that null space. NPCA (Rippel et al., "negated PCA") keeps the directions in which good images vary least.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["METHODS", "BASES", "DEFAULT_BASIS", "NullSpaceWarning", "check_reduction", "spectrum", "null_axes",
           "kept_axes", "retained_axes", "View", "warn_basis_dependent", "PrincipalAxes", "Reducer"]

METHODS = ("pca", "npca", "none")
BASES = ("block", "rank", "dims")
# The null space is kept or dropped as one block: the same axes as the paper's reading ("dims") wherever
# that reading is well defined, and the whole null space (NPCA) or none of it (PCA) where it is not.
DEFAULT_BASIS = "block"


class NullSpaceWarning(UserWarning):
    """A reduction keeps part of the training null space: its scores depend on an arbitrary basis there."""


def check_reduction(method: str, ratio: float | None, basis: str = DEFAULT_BASIS) -> None:
    """Raise ValueError unless ``(method, ratio)`` is ``("none", any)`` or ``("pca"|"npca", r)``, r in (0, 1].

    ``basis`` must be one of `BASES`.
    """
    if method not in METHODS or (method != "none" and not (
            isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0 < ratio <= 1)):
        raise ValueError(f"reduction {(method, ratio)!r}: expected ('none', None) or ('pca'|'npca', r) with "
                         "ratio r in (0, 1]")
    if basis not in BASES:
        raise ValueError(f"basis {basis!r} not in {BASES}")


def spectrum(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, eigenvalues (descending) and eigenvectors of the sample covariance of ``X``.

    Parameters
    ----------
    X : ndarray of shape (..., n_samples, d)
        Leading dimensions are independent groups (e.g. positions of a feature map).

    Returns
    -------
    mean : ndarray of shape (..., d)
    eigenvalues : ndarray of shape (..., d)
        Descending, clipped at 0. When n_samples <= d, at most n_samples - 1 are non-zero; the rest span
        the null space of the training features, where good images do not vary at all (see `null_axes`).
    eigenvectors : ndarray of shape (..., d, d)
        Column ``j`` belongs to ``eigenvalues[..., j]``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 2 or not np.isfinite(X).all():  # NaN or inf would otherwise surface as a LinAlgError
        raise ValueError(f"X of shape {X.shape} must be at least 2-D and hold no NaN or infinity")
    mean = X.mean(axis=-2)
    Xc = X - mean[..., None, :]
    values, vectors = np.linalg.eigh(np.swapaxes(Xc, -1, -2) @ Xc / max(X.shape[-2] - 1, 1))
    # A contiguous copy: matmul with the reversed (negative-stride) view skips BLAS and is ~80x slower.
    return mean, np.clip(values[..., ::-1], 0, None), np.ascontiguousarray(vectors[..., ::-1])


def null_axes(eigenvalues: np.ndarray) -> slice:
    """The axes of a descending spectrum that span the training null space, as a slice.

    An eigenvalue counts as zero when it is at most ``eigenvalues[0] * d * eps`` (float64 ``eps``): the
    rounding error of an eigen-decomposition of a d x d covariance. ``slice(rank, d)``; empty when the
    training features span all ``d`` dimensions.
    """
    d = len(eigenvalues)
    tol = eigenvalues[0] * d * np.finfo(float).eps if d else 0.0
    return slice(int((eigenvalues > tol).sum()), d)


def kept_axes(method: str, ratio: float | None, eigenvalues: np.ndarray, basis: str = DEFAULT_BASIS) -> slice:
    """Which of the (descending) principal axes a reduction keeps, as a slice.

    ``k = max(round(ratio * d), 1)`` of all ``d`` axes, then, by ``basis``:

    - ``"dims"``: the paper's literal reading (the one that fits its table 2): PCA keeps the first ``k``
      axes, NPCA the last ``k``. When n_train <= d and NPCA's ``k`` is smaller than the null space (or
      PCA's reaches past the rank), it keeps *part* of the null space: ``k`` of its axes that
      ``numpy.linalg.eigh`` happens to return, and the scores depend on that arbitrary choice.
    - ``"block"`` (default): as ``"dims"``, but the null space, whose axes all have the same (zero)
      training variance, is one block kept or dropped whole. PCA stops at the rank. NPCA, once it reaches
      into the null space, keeps all of it and at least the smallest non-null axis: more than ``k`` axes
      when ``k`` is at most the null space's dimension, so that a Gaussian has a training variance to shrink
      towards (on null axes alone Ledoit-Wolf would shrink towards rounding noise). Equal to ``"dims"``
      wherever that reading keeps none of the null space, or all of it and more.
    - ``"rank"``: ``k = max(round(ratio * rank), 1)`` of the ``rank`` axes with non-zero training
      variance; the null space is left out.

    ``"none"`` keeps every axis. The null-space part of an NPCA reduction measures the distance of a test
    image to the affine span of the training features: the residual of a PCA on every non-zero axis (the
    SPE or Q statistic), which DFM (Ahuja et al., 2019) computes with fewer axes, chosen by retained
    variance (`tad.baselines.Reconstruction`). With the null
    space alone, k-NN scores exactly that distance (every training image projects to the same point);
    with the null block whole beside other axes, the shrunk Gaussian adds that squared distance divided by
    its shrinkage variance, the same for any basis of the block.
    """
    check_reduction(method, ratio, basis)
    d = len(eigenvalues)
    if method == "none":
        return slice(0, d)
    rank = null_axes(eigenvalues).start
    if basis == "rank":
        total = max(rank, 1)
        k = max(int(round(ratio * total)), 1)
        return slice(0, k) if method == "pca" else slice(total - k, total)
    k = max(int(round(ratio * d)), 1)
    if basis == "block" and rank == 0:  # every axis is null: one block, kept whole
        return slice(0, d)
    if basis == "block" and method == "pca" and k > rank:
        return slice(0, rank)
    if basis == "block" and method == "npca" and k <= d - rank:
        return slice(rank - 1, d)
    return slice(0, k) if method == "pca" else slice(d - k, d)


def retained_axes(eigenvalues: np.ndarray, share: float) -> int:
    """The number k of leading principal axes that retain at least ``share`` of the training variance.

    DFM's rule (Ahuja et al. 2019; `tad.baselines.Reconstruction` with ``variance=share``): the smallest k
    with ``sum(eigenvalues[:k]) >= share * sum(eigenvalues)``, counted over the axes of non-zero variance
    (`null_axes`), so k is at most the rank; 0 when no axis varies.

    Parameters
    ----------
    eigenvalues : ndarray of shape (d,)
        Descending, as returned by `spectrum`.
    share : float in (0, 1]
    """
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError(f"share {share!r} must be a share of the training variance in (0, 1]")
    rank = null_axes(eigenvalues).start
    if rank == 0:
        return 0
    retained = np.cumsum(eigenvalues[:rank])
    return min(int(np.searchsorted(retained, share * retained[-1], side="left")) + 1, rank)


@dataclass(frozen=True)
class View:
    """One reduction of a `PrincipalAxes`: the kept axes and how they meet the training null space.

    Attributes
    ----------
    method, ratio, basis
        As given to `PrincipalAxes.view`.
    axes : slice
        Kept columns of the descending eigenvectors (`kept_axes`).
    n_null : int
        Dimension of the training null space (largest over the groups of a batched decomposition).
    n_null_kept : int
        Kept axes that lie in it (largest over the groups).
    basis_dependent : bool
        True when some but not all null-space axes are kept (in some group): then another orthonormal basis
        of the null space would keep another subspace and give other scores. False means the kept subspace
        is unique, so estimators invariant to rotations of the kept coordinates (MVG with Ledoit-Wolf,
        k-NN; not the flow, which standardises each coordinate) give the same scores for any null-space
        basis. One case is not flagged: a view of null axes only (``"dims"`` with ``k`` equal to the null
        dimension) is well defined for k-NN, but an MVG there shrinks towards rounding noise.
    """

    method: str
    ratio: float | None
    basis: str
    axes: slice
    n_null: int
    n_null_kept: int
    basis_dependent: bool


def warn_basis_dependent(views: Iterable[View], what: str = "", stacklevel: int = 3) -> None:
    """One `NullSpaceWarning`, prefixed by ``what``, naming every basis-dependent view and its null axes."""
    named = dict.fromkeys(f"{v.method} {v.ratio} (basis {v.basis!r}) keeps {v.n_null_kept} of its {v.n_null}"
                          for v in views if v.basis_dependent)
    if named:
        warnings.warn(f"{what}{'; '.join(named)} null-space axes of the training features: an arbitrary subset, "
                      "so the scores depend on the basis eigh returned; basis 'block' or 'rank' keeps a "
                      "well-defined one", NullSpaceWarning, stacklevel=stacklevel)


@dataclass(frozen=True)
class PrincipalAxes:
    """Principal axes of good training features, decomposed once, for any reduction of them.

    Attributes
    ----------
    mean : ndarray of shape (..., d)
    eigenvalues : ndarray of shape (..., d)
        Descending training variances along the axes.
    eigenvectors : ndarray of shape (..., d, d)
        Column ``j`` is the axis of ``eigenvalues[..., j]``.
    n_samples : int
        Training rows per group.
    """

    mean: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_samples: int

    @classmethod
    def fit(cls, X: np.ndarray) -> PrincipalAxes:
        """Decompose the sample covariance of ``X`` of shape (..., n_samples, d), one per leading index."""
        mean, values, vectors = spectrum(X)
        return cls(mean, values, vectors, np.shape(X)[-2])

    def view(self, method: str, ratio: float | None, basis: str = DEFAULT_BASIS) -> View:
        """The axes a reduction keeps (see `kept_axes`) and how many of them lie in the null space.

        Raises ValueError for PCA/NPCA with fewer than 2 training rows (one row has no covariance: every
        axis would be an arbitrary null-space axis), or when the groups of a batched decomposition would
        keep different axes (possible with ``basis`` "rank" or "block" when their ranks differ).
        """
        check_reduction(method, ratio, basis)
        if method != "none" and self.n_samples < 2:
            raise ValueError(f"a PCA/NPCA reduction needs at least 2 training images, got {self.n_samples}")
        spectra = self.eigenvalues.reshape(-1, self.eigenvalues.shape[-1])
        keeps = {(s.start, s.stop) for s in (kept_axes(method, ratio, values, basis) for values in spectra)}
        if len(keeps) > 1:
            raise ValueError(f"{method} {ratio} with basis {basis!r} keeps different axes in different groups "
                             f"(start, stop: {sorted(keeps)}); use basis 'dims'")
        axes = slice(*keeps.pop())
        nulls = [null_axes(values) for values in spectra]
        kept_null = [max(0, axes.stop - max(axes.start, null.start)) for null in nulls]
        dependent = any(0 < kept < null.stop - null.start for kept, null in zip(kept_null, nulls))
        return View(method, ratio, basis, axes, max(n.stop - n.start for n in nulls), max(kept_null), dependent)

    def components(self, view: View) -> np.ndarray:
        """Kept axes as rows, ndarray of shape (..., k, d), in descending order of training variance."""
        return np.swapaxes(self.eigenvectors[..., view.axes], -1, -2)

    def project(self, X: np.ndarray, view: View | None = None) -> np.ndarray:
        """Coordinates of ``X`` of shape (..., m, d) on the kept axes (all with ``view=None``), centred.

        Returns
        -------
        ndarray of shape (..., m, k)
        """
        # All axes, then the kept columns: the same rounding whatever the view, so a view's scores equal the
        # same columns sliced from a shared projection (as `tad.sweep.score_group` does) bit for bit.
        Z = (np.asarray(X, dtype=np.float64) - self.mean[..., None, :]) @ self.eigenvectors
        return Z if view is None else np.ascontiguousarray(Z[..., view.axes])


class Reducer(TransformerMixin, BaseEstimator):
    """PCA, NPCA or no reduction, fitted on good training features.

    Parameters
    ----------
    method : {"pca", "npca", "none"}
        ``"pca"`` keeps the largest-variance axes, ``"npca"`` the smallest, ``"none"`` passes features
        through unchanged.
    ratio : float in (0, 1]
        Share of the axes kept (ignored for ``"none"``).
    basis : {"block", "rank", "dims"}
        How the ratio meets the null space that exists whenever n_train <= d (see `kept_axes`):
        ``"block"`` (default) keeps or drops it whole, ``"rank"`` takes the ratio of the non-null axes,
        ``"dims"`` is the paper's literal reading (a share of all ``d`` dimensions; may keep an arbitrary
        part of the null space).

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    components_ : ndarray of shape (k, d)
        Kept axes as rows, in descending order of training variance (all ``d`` for ``"none"``).
    explained_variance_ : ndarray of shape (k,)
    view_ : View
        The kept axes and how many lie in the training null space.
    """

    def __init__(self, method: str = "npca", ratio: float = 0.5, basis: str = DEFAULT_BASIS) -> None:
        self.method = method
        self.ratio = ratio
        self.basis = basis

    def fit(self, X: np.ndarray, y: None = None) -> Reducer:
        check_reduction(self.method, self.ratio, self.basis)
        axes = PrincipalAxes.fit(check_array(X, dtype=np.float64))
        self.view_ = axes.view(self.method, self.ratio, self.basis)
        self.mean_ = axes.mean
        self.components_ = axes.components(self.view_)
        self.explained_variance_ = axes.eigenvalues[self.view_.axes]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        if self.method == "none":
            return X
        return (X - self.mean_) @ self.components_.T
