"""Where a test image's deviation from the good training images lies, axis group by axis group.

The principal axes of the good training features (`tad.reduce.spectrum`, descending variance) split into
the half PCA keeps, the half NPCA keeps, and, when n_train - 1 < d, the null space where the training
images do not vary at all. `deviation_by_axes` measures how much of a test image's squared Euclidean
distance to the training mean falls in each group: the evidence for why keeping the smallest-variance
axes (NPCA) separates anomalies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tad.reduce import n_kept, spectrum


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
        (both with ``basis="dims"``, as in the pipeline); ``"null"``: the axes past the rank of the training
        covariance (empty when the training features span all ``d`` dimensions).
    """
    rank = n_kept("pca", 1.0, eigenvalues, "rank").stop
    return {"largest": n_kept("pca", ratio, eigenvalues), "smallest": n_kept("npca", ratio, eigenvalues),
            "null": slice(rank, len(eigenvalues))}


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
