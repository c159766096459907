"""Tests for tad.analysis against brute-force projections (np.cov eigenvectors, scipy's null space)."""

import numpy as np
import pytest
from scipy.linalg import null_space

from tad.analysis import axis_groups, deviation_by_axes


def anisotropic(n: int, d: int, seed: int) -> np.ndarray:
    """Rows with clearly separated variances along random orthogonal axes."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * np.geomspace(10, 0.1, d)) @ axes.T + rng.normal(size=d)


def squared_projection(Y: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """||P (y - mean)||^2 per row of Y for the projector onto the orthonormal columns of ``basis``."""
    P = basis @ basis.T
    return (((Y - mean) @ P) ** 2).sum(axis=1)


def test_halves_match_projections_on_np_cov_eigenvectors_when_n_exceeds_d():
    X, Y = anisotropic(200, 6, seed=0), anisotropic(15, 6, seed=1) * 1.5
    _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))  # ascending variance
    out = deviation_by_axes(X, Y)
    mean = X.mean(axis=0)
    np.testing.assert_allclose(out["largest"], squared_projection(Y, mean, vectors[:, 3:]), rtol=1e-9)
    np.testing.assert_allclose(out["smallest"], squared_projection(Y, mean, vectors[:, :3]), rtol=1e-9)
    np.testing.assert_allclose(out["null"], 0)
    np.testing.assert_allclose(out["total"], ((Y - mean) ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(out["largest"] + out["smallest"], out["total"], rtol=1e-9)


def test_null_group_is_the_orthogonal_complement_of_the_centred_training_rows():
    n, d = 6, 15
    X, Y = anisotropic(n, d, seed=2), anisotropic(9, d, seed=3)
    mean = X.mean(axis=0)
    out = deviation_by_axes(X, Y)
    np.testing.assert_allclose(out["null"], squared_projection(Y, mean, null_space(X - mean)), rtol=1e-8)
    assert (out["smallest"] <= out["null"] + 1e-9).all()  # NPCA's 8 of 15 axes lie inside the 10 null axes


def test_training_rows_have_no_deviation_in_the_null_space():
    X = anisotropic(5, 12, seed=4)
    out = deviation_by_axes(X, X)
    assert (out["null"] <= 1e-10 * out["total"]).all()


def test_axis_groups_sizes_follow_ratio_and_rank():
    values = np.array([5.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    groups = axis_groups(values, 0.3)
    assert groups == {"largest": slice(0, 3), "smallest": slice(7, 10), "null": slice(4, 10)}


@pytest.mark.parametrize(("train", "test"), [(np.zeros((1, 3)), np.zeros((2, 3))), (np.zeros((4, 3)), np.zeros((2, 2)))])
def test_bad_shapes_are_rejected(train, test):
    with pytest.raises(ValueError, match="train"):
        deviation_by_axes(train, test)
