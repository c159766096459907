"""Dimension reduction of pooled features: PCA (largest-variance directions), NPCA (smallest), or none.

The principal axes come from the eigen-decomposition of the good training features' covariance; NPCA
(Rippel et al., "negated PCA") keeps the directions in which good images vary least.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

METHODS = ("pca", "npca", "none")
BASES = ("dims", "rank")
DEFAULT_BASIS = "dims"  # what the ratio is a share of, unless a caller says otherwise


def spectrum(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, eigenvalues (descending) and eigenvectors of the sample covariance of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, d)

    Returns
    -------
    mean : ndarray of shape (d,)
    eigenvalues : ndarray of shape (d,)
        Descending, clipped at 0. When n_samples <= d, at most n_samples - 1 are non-zero; the rest span
        the null space of the training features, where good images do not vary at all.
    eigenvectors : ndarray of shape (d, d)
        Column ``j`` belongs to ``eigenvalues[j]``.
    """
    X = check_array(X, dtype=np.float64)  # NaN or inf would otherwise surface as a LinAlgError
    mean = X.mean(axis=0)
    Xc = X - mean
    values, vectors = np.linalg.eigh(Xc.T @ Xc / max(len(X) - 1, 1))
    # A contiguous copy: matmul with the reversed (negative-stride) view skips BLAS and is ~80x slower.
    return mean, np.clip(values[::-1], 0, None), np.ascontiguousarray(vectors[:, ::-1])


def n_kept(method: str, ratio: float, eigenvalues: np.ndarray, basis: str = "dims") -> slice:
    """Which of the (descending) principal axes a reduction keeps, as a slice.

    ``basis="dims"``: keep ``round(ratio * d)`` of all ``d`` axes (the paper's reading, and the one that
    fits its table 2). ``basis="rank"``: keep ``round(ratio * rank)`` of the ``rank`` axes with non-zero
    training variance, ignoring the null space. At least one axis is always kept.
    """
    d = len(eigenvalues)
    if method == "none":
        return slice(0, d)
    tol = eigenvalues[0] * d * np.finfo(float).eps if d else 0.0
    total = d if basis == "dims" else max(int((eigenvalues > tol).sum()), 1)
    k = max(int(round(ratio * total)), 1)
    return slice(0, k) if method == "pca" else slice(total - k, total)


class Reducer(TransformerMixin, BaseEstimator):
    """PCA, NPCA or no reduction, fitted on good training features.

    Parameters
    ----------
    method : {"pca", "npca", "none"}
        ``"pca"`` keeps the largest-variance axes, ``"npca"`` the smallest, ``"none"`` passes features
        through unchanged.
    ratio : float in (0, 1]
        Share of the axes kept (ignored for ``"none"``).
    basis : {"dims", "rank"}
        What the ratio is a share of: all ``d`` feature dimensions (default, the paper's reading), or the
        rank of the training covariance (``min(n_train - 1, d)``), which leaves out the null space that
        exists whenever n_train <= d.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    components_ : ndarray of shape (k, d)
        Kept axes as rows, in descending order of training variance.
    explained_variance_ : ndarray of shape (k,)
    """

    def __init__(self, method: str = "npca", ratio: float = 0.5, basis: str = "dims") -> None:
        self.method = method
        self.ratio = ratio
        self.basis = basis

    def fit(self, X: np.ndarray, y: None = None) -> Reducer:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} not in {METHODS}")
        if self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r} not in {BASES}")
        if self.method != "none" and not (isinstance(self.ratio, (int, float)) and 0 < self.ratio <= 1):
            raise ValueError(f"ratio {self.ratio!r} must be in (0, 1]")
        X = check_array(X, dtype=np.float64)
        if len(X) < 2:
            raise ValueError(f"a reduction needs at least 2 training images, got {len(X)}")
        mean, values, vectors = spectrum(X)
        keep = n_kept(self.method, self.ratio, values, self.basis)
        self.mean_ = mean
        self.components_ = vectors[:, keep].T
        self.explained_variance_ = values[keep]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        X = check_array(X, dtype=np.float64)
        if self.method == "none":
            return X
        return (X - self.mean_) @ self.components_.T
