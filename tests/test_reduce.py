"""Tests for tad.reduce against brute-force eigen-decompositions of np.cov and scikit-learn's PCA."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from tad.reduce import Reducer, retained_axes, spectrum


def anisotropic(n: int, d: int, seed: int) -> np.ndarray:
    """Rows with clearly separated variances along random orthogonal axes."""
    rng = np.random.default_rng(seed)
    axes, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * np.geomspace(10, 0.1, d)) @ axes.T + rng.normal(size=d)


def projector(rows: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the span of orthonormal ``rows``."""
    return rows.T @ rows


@pytest.mark.parametrize(("ratio", "k"), [(0.5, 3), (0.2, 1), (1.0, 6), (0.4, 2)])
def test_npca_keeps_smallest_variance_directions(ratio, k):
    X = anisotropic(300, 6, seed=0)
    values, vectors = np.linalg.eigh(np.cov(X, rowvar=False))  # ascending
    red = Reducer("npca", ratio).fit(X)
    assert red.components_.shape == (k, 6)
    np.testing.assert_allclose(projector(red.components_), projector(vectors[:, :k].T), atol=1e-8)
    projected_var = np.sort(red.transform(X).var(axis=0, ddof=1))
    np.testing.assert_allclose(projected_var, values[:k], rtol=1e-8)


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_pca_equals_sklearn_pca_up_to_sign(ratio):
    X, Y = anisotropic(200, 6, seed=1), anisotropic(30, 6, seed=2)
    k = round(6 * ratio)
    ours = Reducer("pca", ratio).fit(X).transform(Y)
    theirs = PCA(n_components=k, svd_solver="full").fit(X).transform(Y)
    signs = np.sign((ours * theirs).sum(axis=0))
    np.testing.assert_allclose(ours, theirs * signs, atol=1e-8)


def test_none_passes_features_through():
    X = anisotropic(20, 4, seed=3)
    np.testing.assert_array_equal(Reducer("none", None).fit(X).transform(X[:5]), X[:5])


def test_fewer_images_than_dims_dims_basis_includes_null_space_rank_basis_does_not():
    n, d = 5, 12
    X = anisotropic(n, d, seed=4)
    Y = anisotropic(7, d, seed=5)
    values = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]
    rank = int((values > 1e-9 * values[0]).sum())
    assert rank == n - 1

    dims = Reducer("npca", 0.5, basis="dims").fit(X)  # 6 of 12 axes, all in the 8-dim null space
    assert dims.components_.shape == (6, d)
    np.testing.assert_allclose(dims.transform(X).var(axis=0), 0, atol=1e-12 * values[0])
    assert (dims.transform(Y).var(axis=0) > 1e-6).all()  # new images do leave the null space

    ranked = Reducer("npca", 0.5, basis="rank").fit(X)  # 2 of the 4 non-zero axes, the smaller ones
    assert ranked.components_.shape == (2, d)
    np.testing.assert_allclose(np.sort(ranked.transform(X).var(axis=0, ddof=1)), np.sort(values[2:4]), rtol=1e-8)

    top = Reducer("pca", 0.5, basis="rank").fit(X)
    np.testing.assert_allclose(np.sort(top.transform(X).var(axis=0, ddof=1)), np.sort(values[:2]), rtol=1e-8)
    assert Reducer("pca", 1.0, basis="dims").fit(X).components_.shape == (d, d)


@pytest.mark.parametrize("ratio", [0, 1.5, -0.1, "0.5", None])
def test_ratio_outside_unit_interval_raises_naming_it(ratio):
    with pytest.raises(ValueError, match="ratio"):
        Reducer("pca", ratio).fit(anisotropic(10, 3, seed=0))


@pytest.mark.parametrize(("kwargs", "name"), [({"method": "ncpa"}, "ncpa"), ({"basis": "rnak"}, "rnak")])
def test_typo_raises_naming_it_and_choices(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        Reducer(**kwargs).fit(anisotropic(10, 3, seed=0))
    assert "npca" in str(info.value) or "rank" in str(info.value)


@pytest.mark.parametrize("method", ["pca", "npca"])
def test_one_training_image_raises(method):
    with pytest.raises(ValueError, match="at least 2 training images, got 1"):
        Reducer(method, 0.5).fit(np.ones((1, 4)))


def test_nan_training_features_raise():
    X = anisotropic(10, 3, seed=0)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Reducer("npca", 0.5).fit(X)


@pytest.mark.parametrize("share", [0.5, 0.9, 0.95, 0.99, 1.0])
@pytest.mark.parametrize(("n", "d"), [(50, 8), (6, 15)])  # full rank, and a null space
def test_retained_axes_is_the_smallest_count_reaching_the_share_by_brute_force(share, n, d):
    rng = np.random.default_rng(1)
    values = spectrum(rng.normal(size=(n, d)) * np.geomspace(5, 0.2, d))[1]
    rank = min(n - 1, d)
    total = values[:rank].sum()
    brute = next(k for k in range(1, rank + 1) if values[:k].sum() >= share * total * (1 - 1e-12))
    assert retained_axes(values, share) == brute


def test_retained_axes_counts_by_hand():
    values = np.array([6.0, 3.0, 1.0, 0.0])
    assert [retained_axes(values, s) for s in (0.5, 0.6, 0.9, 0.95, 1.0)] == [1, 1, 2, 3, 3]


@pytest.mark.parametrize("share", [0, 1.5, True])
def test_retained_axes_rejects_a_share_outside_0_1(share):
    with pytest.raises(ValueError, match="share"):
        retained_axes(np.array([2.0, 1.0]), share)
