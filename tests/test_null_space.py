"""The training null space (n_train < d): which readings of the ratio are well defined, checked by rotating it."""

import warnings

import numpy as np
import pytest
from scipy.linalg import null_space
from sklearn.metrics import roc_auc_score

from tad.analysis import null_basis_spread
from tad.reduce import DEFAULT_BASIS, NullSpaceWarning, PrincipalAxes, Reducer, kept_axes
from tad.sweep import REDUCTIONS, score, score_group

N, D = 10, 30  # rank 9, null space of 21 dimensions
ROTATION_INVARIANT = ("mvg", "knn1", "knn5")  # the flow standardises coordinates: not rotation invariant


def few_images(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10 good training rows in 30 dimensions; 40 test rows, anomalies with a wider spread."""
    rng = np.random.default_rng(seed)
    scale = np.geomspace(3, 0.3, D)
    X = rng.normal(size=(N, D)) * scale
    labels = np.repeat([0, 1], 20)
    Y = rng.normal(size=(40, D)) * scale * np.where(labels[:, None], 1.3, 1.0)
    return X, Y, labels


def rotate_test_null_space(X: np.ndarray, Y: np.ndarray, seed: int) -> np.ndarray:
    """Test rows with their component in the training null space rotated by a random orthogonal matrix.

    The null space comes from scipy (SVD of the centred training rows), not from tad; the training rows, and
    so every decomposition of them, stay bit for bit the same.
    """
    mean = X.mean(axis=0)
    basis = null_space(X - mean)  # (D, 21) orthonormal
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(basis.shape[1],) * 2))
    coords = (Y - mean) @ basis
    return Y + (coords @ q.T - coords) @ basis.T


@pytest.mark.parametrize("estimator", ROTATION_INVARIANT)
def test_default_reductions_do_not_depend_on_the_null_space_basis_and_dims_does(estimator):
    X, Y, labels = few_images()
    Yr = rotate_test_null_space(X, Y, seed=1)
    changed = []
    for method, ratio in REDUCTIONS:
        same = roc_auc_score(labels, score(X, Y, method, ratio, estimator))
        assert roc_auc_score(labels, score(X, Yr, method, ratio, estimator)) == pytest.approx(same, abs=1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NullSpaceWarning)
            paper = roc_auc_score(labels, score(X, Y, method, ratio, estimator, basis="dims"))
            paper_rotated = roc_auc_score(labels, score(X, Yr, method, ratio, estimator, basis="dims"))
        changed.append(abs(paper - paper_rotated) > 1e-6)
    assert DEFAULT_BASIS != "dims" and any(changed)  # the test can fail: the paper's reading moves


def test_rank_basis_does_not_depend_on_the_null_space_basis():
    X, Y, labels = few_images()
    Yr = rotate_test_null_space(X, Y, seed=2)
    for method, ratio in REDUCTIONS:
        a = score(X, Y, method, ratio, "mvg", basis="rank")
        np.testing.assert_allclose(score(X, Yr, method, ratio, "mvg", basis="rank"), a, rtol=1e-9)


def test_score_warns_naming_the_reduction_and_its_null_axes_under_dims_only():
    X, Y, _ = few_images()
    with pytest.warns(NullSpaceWarning, match=r"npca 0\.1 \(basis 'dims'\) keeps 3 of its 21"):
        score(X, Y, "npca", 0.1, "mvg", basis="dims")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NullSpaceWarning)
        score(X, Y, "npca", 0.1, "mvg")
        score(X, Y, "npca", 0.1, "mvg", basis="rank")
        score(X, Y, "npca", 0.8, "mvg", basis="dims")  # 24 axes hold all 21 null axes: well defined


def test_score_group_rows_count_null_axes_kept():
    X, Y, labels = few_images()
    configs = [{"reduction": m, "ratio": r, "basis": b, "estimator": "mvg"}
               for m, r in [("none", None), ("npca", 0.1), ("npca", 0.5), ("pca", 0.5)] for b in ("dims", "block")]
    with pytest.warns(NullSpaceWarning):
        rows = list(score_group(X, Y, labels, configs))
    null = D - (N - 1)
    got = {(r["reduction"], r["basis"]): (r["n_null_kept"], r["basis_dependent"], r["d"]) for r in rows if
           r["ratio"] in (None, 0.1) or r["reduction"] == "pca"}
    assert all(r["n_null"] == null for r in rows)
    assert got[("none", "dims")] == got[("none", "block")] == (null, False, D)
    assert got[("npca", "dims")] == (3, True, 3)  # round(0.1 * 30) axes, all from the null space
    assert got[("npca", "block")] == (null, False, null + 1)  # the whole null space and the smallest axis
    assert got[("pca", "dims")] == (15 - (N - 1), True, 15)  # 15 axes reach 6 past the rank
    assert got[("pca", "block")] == (0, False, N - 1)  # stops at the rank
    assert rows[4]["n_null_kept"] == rows[4]["d"] == 15 and rows[4]["basis_dependent"]  # npca 0.5 dims


def test_null_basis_spread_is_flat_for_well_defined_reductions_and_not_for_dims():
    X, Y, labels = few_images()
    exact = roc_auc_score(labels, score(X, Y, "npca", 0.1, "mvg"))
    np.testing.assert_allclose(null_basis_spread(X, Y, labels, "npca", 0.1, "mvg", n_draws=5), exact, atol=1e-9)
    spread = null_basis_spread(X, Y, labels, "npca", 0.1, "mvg", basis="dims", n_draws=20)
    assert spread.shape == (20,) and spread.max() - spread.min() > 1e-3
    again = null_basis_spread(X, Y, labels, "npca", 0.1, "mvg", basis="dims", n_draws=20)
    np.testing.assert_array_equal(again, spread)  # seeded


def test_batched_decomposition_equals_one_per_slice():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 3, 12, 5)) * np.linspace(0.5, 2, 5)
    batched = PrincipalAxes.fit(X)
    view = batched.view("npca", 0.4, "dims")
    for i in range(4):
        for j in range(3):
            one = PrincipalAxes.fit(X[i, j])
            np.testing.assert_allclose(batched.mean[i, j], one.mean, rtol=1e-12)
            np.testing.assert_allclose(batched.eigenvalues[i, j], one.eigenvalues, rtol=1e-10)
            a, b = batched.components(view)[i, j], one.components(one.view("npca", 0.4, "dims"))
            np.testing.assert_allclose(a.T @ a, b.T @ b, atol=1e-10)  # same kept subspace
            np.testing.assert_allclose(np.abs(batched.project(X[i, j], view)[i, j]),
                                       np.abs(one.project(X[i, j], one.view("npca", 0.4, "dims"))), atol=1e-10)


@pytest.mark.parametrize(("n", "d"), [(40, 6), (5, 12)])
@pytest.mark.parametrize("basis", ["dims", "block", "rank"])
def test_views_span_the_axes_of_a_fresh_eigen_decomposition(n, d, basis):
    X = np.random.default_rng(4).normal(size=(n, d)) * np.geomspace(4, 0.5, d)
    values, vectors = np.linalg.eigh(np.cov(X, rowvar=False))  # ascending
    rank = min(n - 1, d)
    axes = PrincipalAxes.fit(X)
    for method in ("pca", "npca"):
        for ratio in (0.1, 0.3, 0.5, 1.0):
            view = axes.view(method, ratio, basis)
            k = max(round(ratio * (rank if basis == "rank" else d)), 1)
            if basis == "block" and method == "npca" and rank < d:
                k = max(k, d - rank + 1)
            if basis == "block" and method == "pca":
                k = min(k, rank)
            desc = vectors[:, ::-1]
            stop = rank if basis == "rank" and method == "npca" else d
            cols = desc[:, :k] if method == "pca" else desc[:, stop - k:stop]
            kept = axes.components(view)
            assert kept.shape == (k, d), (method, ratio)
            if not view.basis_dependent:
                np.testing.assert_allclose(kept.T @ kept, cols @ cols.T, atol=1e-8)
            np.testing.assert_allclose(axes.eigenvalues[view.axes], np.clip(values[::-1], 0, None)[
                list(range(d))[view.axes]], atol=1e-10)


def test_none_needs_one_training_image_and_a_reduction_two():
    X = np.ones((1, 4))
    np.testing.assert_array_equal(Reducer("none", None).fit(X).transform(X), X)
    np.testing.assert_array_equal(score(X, X, "none", None, "knn1"), [0.0])
    with pytest.raises(ValueError, match="at least 2 training images, got 1"):
        score(X, X, "npca", 0.5, "knn1")


def test_kept_axes_by_hand():
    values = np.array([5.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # rank 4, null 4..10
    assert kept_axes("npca", 0.3, values, "dims") == slice(7, 10)
    assert kept_axes("npca", 0.3, values, "block") == slice(3, 10)  # null block and the smallest non-null axis
    assert kept_axes("npca", 0.6, values, "dims") == slice(4, 10)
    assert kept_axes("npca", 0.6, values, "block") == slice(3, 10)
    assert kept_axes("npca", 0.7, values, "block") == kept_axes("npca", 0.7, values, "dims") == slice(3, 10)
    assert kept_axes("npca", 0.5, values, "rank") == slice(2, 4)
    assert kept_axes("pca", 0.5, values, "dims") == slice(0, 5)
    assert kept_axes("pca", 0.5, values, "block") == slice(0, 4)
    assert kept_axes("pca", 0.3, values, "block") == slice(0, 3)
    assert kept_axes("none", None, values, "dims") == slice(0, 10)
