"""Tests for tad.estimators against scikit-learn, explicit formulas and exhaustive search."""

import numpy as np
import pytest
from sklearn.covariance import OAS, LedoitWolf, ledoit_wolf
from sklearn.neighbors import NearestNeighbors

from tad.estimators import (ESTIMATORS, KNN, MVG, CentroidDistance, Flow, OASGaussian, PinvGaussian, RidgeGaussian,
                            WhitenedKNN, knn_distance, ledoit_wolf_precision, mahalanobis_sq,
                            make_estimator, n_neighbours)


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = np.random.default_rng(100).normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ A + shift


@pytest.mark.parametrize(("n", "d"), [(60, 5), (8, 20)])  # n > d and n < d (shrinkage needed)
def test_mvg_score_is_mahalanobis_with_ledoit_wolf_inverse(n, d):
    X, Y = gaussian(n, d, seed=0), gaussian(10, d, seed=1, shift=0.5)
    cov, _ = ledoit_wolf(X)
    inv = np.linalg.inv(cov)
    mu = X.mean(axis=0)
    expected = np.array([(y - mu) @ inv @ (y - mu) for y in Y])
    np.testing.assert_allclose(MVG().fit(X).score_samples(Y), expected, rtol=1e-7)


@pytest.mark.parametrize(("n", "d"), [(60, 5), (8, 20)])
def test_mvg_on_principal_axis_coordinates_uses_the_diagonal_and_still_matches(n, d):
    X, Y = gaussian(n, d, seed=4), gaussian(10, d, seed=5, shift=0.5)
    mu = X.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
    Z, W = (X - mu) @ vectors, (Y - mu) @ vectors  # decorrelated: the training covariance is diagonal
    model = MVG().fit(Z)
    assert np.count_nonzero(model.precision_ - np.diag(np.diag(model.precision_))) == 0  # the fast path ran
    inv = np.linalg.inv(ledoit_wolf(Z)[0])
    expected = np.array([(w - Z.mean(0)) @ inv @ (w - Z.mean(0)) for w in W])
    np.testing.assert_allclose(model.score_samples(W), expected, rtol=1e-6)


@pytest.mark.parametrize(("m", "d"), [(40, 5), (6, 12)])  # m > d, and m < d where shrinkage is needed
def test_batched_ledoit_wolf_equals_scikit_learn_on_each_group(m, d):
    X = np.stack([gaussian(m, d, seed=g) * (g + 1) for g in range(3)])
    location, covariance, precision, shrinkage = ledoit_wolf_precision(X)
    for g in range(3):
        lw = LedoitWolf().fit(X[g])
        np.testing.assert_allclose(location[g], lw.location_, rtol=1e-12)
        np.testing.assert_allclose(covariance[g], lw.covariance_, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(shrinkage[g], lw.shrinkage_, rtol=1e-10)
        np.testing.assert_allclose(precision[g] @ lw.covariance_, np.eye(d), atol=1e-9)


def test_batched_maths_equals_the_single_group_estimators():
    X = np.stack([gaussian(20, 4, seed=g, shift=g) for g in range(5)])
    Y = np.stack([gaussian(7, 4, seed=10 + g) for g in range(5)])
    location, _, precision, _ = ledoit_wolf_precision(X)
    mahalanobis = mahalanobis_sq(Y, location, precision)
    distance = knn_distance(Y, X, 3)
    assert mahalanobis.shape == distance.shape == (5, 7)
    for g in range(5):
        np.testing.assert_allclose(mahalanobis[g], MVG().fit(X[g]).score_samples(Y[g]), rtol=1e-12)
        np.testing.assert_allclose(distance[g], KNN(3).fit(X[g]).score_samples(Y[g]), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_knn_distance_equals_scikit_learn_across_query_blocks(dtype):
    bank, queries = gaussian(50, 6, seed=0)[None], gaussian(30, 6, seed=1, shift=0.3)[None]
    got = knn_distance(queries.astype(dtype), bank.astype(dtype), 4, max_elements=50 * 7)  # blocks of 7 queries
    dist, _ = NearestNeighbors(n_neighbors=4, algorithm="brute").fit(bank[0]).kneighbors(queries[0])
    np.testing.assert_allclose(got[0], dist.mean(axis=1), rtol=1e-12 if dtype == np.float64 else 1e-5)


def test_n_neighbours_reads_k_from_the_name_and_rejects_other_estimators():
    assert [n_neighbours(name) for name in ("knn1", "knn5", "knn10")] == [1, 5, 10]
    with pytest.raises(ValueError, match="'mvg' is not a k-NN estimator"):
        n_neighbours("mvg")


@pytest.mark.parametrize("k", [1, 5, 10])
def test_knn_score_equals_exhaustive_search(k):
    X, Y = gaussian(30, 4, seed=2), gaussian(12, 4, seed=3, shift=1.0)
    dist = np.sqrt(((Y[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    expected = np.sort(dist, axis=1)[:, :k].mean(axis=1)
    np.testing.assert_allclose(KNN(k).fit(X).score_samples(Y), expected, rtol=1e-10)
    np.testing.assert_allclose(make_estimator(f"knn{k}").fit(X).score_samples(Y), expected, rtol=1e-10)


def test_knn1_of_a_training_row_is_zero():
    X = gaussian(10, 3, seed=4)
    np.testing.assert_allclose(KNN(1).fit(X).score_samples(X), 0, atol=1e-12)


def test_k_larger_than_training_set_raises_naming_k_and_size():
    with pytest.raises(ValueError, match=r"k=10.*\b5 images"):
        KNN(10).fit(gaussian(5, 3, seed=0))


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_invalid_k_raises(k):
    with pytest.raises(ValueError, match="k"):
        KNN(k).fit(gaussian(5, 3, seed=0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_non_finite_training_features_raise(name, bad):
    X = gaussian(12, 3, seed=0)
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        make_estimator(name, epochs=1).fit(X) if name == "flow" else make_estimator(name).fit(X)


@pytest.mark.parametrize("name", ["mvg", "knn1"])
def test_non_finite_test_features_raise(name):
    Y = gaussian(4, 3, seed=1)
    Y[0, 0] = np.nan
    est = make_estimator(name).fit(gaussian(12, 3, seed=0))
    with pytest.raises(ValueError, match="NaN"):
        est.score_samples(Y)


@pytest.mark.parametrize("name", ["mvg", "flow"])
def test_one_training_image_raises_for_density_estimators(name):
    with pytest.raises(ValueError, match="at least 2 training images, got 1"):
        make_estimator(name).fit(np.ones((1, 3)))


def test_unknown_estimator_raises_listing_choices():
    with pytest.raises(ValueError, match="svm") as info:
        make_estimator("svm")
    assert all(name in str(info.value) for name in ESTIMATORS)


FLOW = dict(transforms=1, hidden=16, epochs=60, lr=1e-2)


def test_flow_is_reproducible_by_seed():
    X, Y = gaussian(200, 3, seed=5), gaussian(20, 3, seed=6)
    a = Flow(seed=1, **FLOW).fit(X).score_samples(Y)
    b = Flow(seed=1, **FLOW).fit(X).score_samples(Y)
    c = Flow(seed=2, **FLOW).fit(X).score_samples(Y)
    assert a.shape == (20,) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_flow_likelihood_is_higher_on_training_like_data_than_shifted():
    X = gaussian(300, 3, seed=7)
    flow = Flow(seed=0, **FLOW).fit(X)
    same = flow.score_samples(gaussian(100, 3, seed=8))
    shifted = flow.score_samples(gaussian(100, 3, seed=9, shift=3.0))
    assert same.mean() + 2 < shifted.mean()  # scores are -log p: lower on data like the training set
    # The training loss (NLL of the standardised rows) approaches the Gaussian's closed-form entropy.
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * np.cov(Z, rowvar=False)))
    assert abs(flow.final_loss_ - entropy) < 0.25


@pytest.mark.parametrize("param", ["transforms", "hidden", "epochs"])
def test_flow_rejects_non_positive_sizes_naming_them(param):
    with pytest.raises(ValueError, match=param):
        Flow(**{param: 0}).fit(gaussian(10, 2, seed=0))


def test_flow_null_rtol_leaves_out_axes_without_training_variance():
    # Three varying axes and two where good images differ only by rounding: a null space.
    rng = np.random.default_rng(11)
    X = np.hstack([gaussian(150, 3, seed=10), 1e-14 * rng.normal(size=(150, 2))])
    Y = np.hstack([gaussian(10, 3, seed=12), rng.normal(size=(10, 2))])  # test images off the span
    flow = Flow(seed=0, epochs=20, null_rtol=1e-6).fit(X)
    np.testing.assert_array_equal(flow.kept_, [True, True, True, False, False])
    alone = Flow(seed=0, epochs=20).fit(X[:, :3]).score_samples(Y[:, :3])
    np.testing.assert_allclose(flow.score_samples(Y), alone)
    assert Flow(seed=0, epochs=20).fit(X).score_samples(Y).min() > 1e6  # without it: absurd scores


def test_flow_null_rtol_out_of_range_is_named():
    with pytest.raises(ValueError, match="null_rtol"):
        Flow(null_rtol=1.5).fit(gaussian(10, 2, seed=0))


# --- the factorial study's estimators, each against a covariance built and inverted by hand ----------------

def _brute_mahalanobis(train: np.ndarray, test: np.ndarray, precision: np.ndarray) -> np.ndarray:
    mu = train.mean(axis=0)
    return np.array([(y - mu) @ precision @ (y - mu) for y in test])


@pytest.mark.parametrize(("n", "d"), [(60, 5), (8, 20)])
@pytest.mark.parametrize("decorrelated", [False, True])  # a general covariance, and the diagonal fast path
def test_oas_gaussian_equals_mahalanobis_under_scikit_learns_oas(n, d, decorrelated):
    X, Y = gaussian(n, d, seed=2), gaussian(9, d, seed=3, shift=0.4)
    if decorrelated:
        _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
        X, Y = X @ vectors, Y @ vectors
    reference = OAS().fit(X)
    model = OASGaussian().fit(X)
    assert model.shrinkage_ == pytest.approx(reference.shrinkage_, rel=1e-10)
    np.testing.assert_allclose(model.score_samples(Y),
                               _brute_mahalanobis(X, Y, np.linalg.inv(reference.covariance_)), rtol=1e-7)


@pytest.mark.parametrize(("n", "d"), [(60, 5), (8, 20)])
@pytest.mark.parametrize("decorrelated", [False, True])
def test_ridge_gaussian_inverts_covariance_plus_alpha_times_mean_variance(n, d, decorrelated):
    X, Y = gaussian(n, d, seed=4), gaussian(9, d, seed=5, shift=0.4)
    if decorrelated:
        _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
        X, Y = X @ vectors, Y @ vectors
    S = np.cov(X, rowvar=False, bias=True)
    cov = S + 0.3 * np.trace(S) / d * np.eye(d)
    np.testing.assert_allclose(RidgeGaussian(alpha=0.3).fit(X).score_samples(Y),
                               _brute_mahalanobis(X, Y, np.linalg.inv(cov)), rtol=1e-8)


@pytest.mark.parametrize(("n", "d"), [(60, 5), (8, 20)])
@pytest.mark.parametrize("decorrelated", [False, True])
def test_pinv_gaussian_equals_mahalanobis_with_numpy_pseudo_inverse(n, d, decorrelated):
    X, Y = gaussian(n, d, seed=6), gaussian(9, d, seed=7, shift=0.4)
    if decorrelated:
        _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
        X, Y = X @ vectors, Y @ vectors
    S = np.cov(X, rowvar=False, bias=True)
    model = PinvGaussian().fit(X)
    assert model.rank_ == min(n - 1, d)
    np.testing.assert_allclose(model.score_samples(Y),
                               _brute_mahalanobis(X, Y, np.linalg.pinv(S, rcond=1e-10, hermitian=True)), rtol=1e-6)


def test_pinv_gaussian_ignores_directions_without_training_variance():
    X = np.zeros((10, 3))
    X[:, 0] = np.arange(10.0)
    off_span = np.array([[4.5, 7.0, -3.0]])  # at the mean along the varying axis, far off in the other two
    assert PinvGaussian().fit(X).score_samples(off_span)[0] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize(("n", "d", "k"), [(40, 4, 1), (7, 12, 3)])
@pytest.mark.parametrize("decorrelated", [False, True])
def test_whitened_knn_is_the_mean_mahalanobis_distance_to_the_k_nearest(n, d, k, decorrelated):
    X, Y = gaussian(n, d, seed=8), gaussian(6, d, seed=9, shift=0.4)
    if decorrelated:
        _, vectors = np.linalg.eigh(np.cov(X, rowvar=False))
        X, Y = X @ vectors, Y @ vectors
    S = np.cov(X, rowvar=False, bias=True)
    inv = np.linalg.inv(S + 0.05 * np.trace(S) / d * np.eye(d))
    dist = np.sqrt(np.array([[(y - x) @ inv @ (y - x) for x in X] for y in Y]))
    expected = np.sort(dist, axis=1)[:, :k].mean(axis=1)
    np.testing.assert_allclose(WhitenedKNN(k=k, alpha=0.05).fit(X).score_samples(Y), expected, rtol=1e-7)


def test_centroid_distance_is_the_squared_distance_to_the_training_mean():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])  # mean (1, 1)
    np.testing.assert_allclose(CentroidDistance().fit(X).score_samples(np.array([[1.0, 1.0], [4.0, 5.0]])), [0, 25])


@pytest.mark.parametrize("model", [RidgeGaussian(alpha=0), RidgeGaussian(alpha=-1.0), WhitenedKNN(alpha=0),
                                   WhitenedKNN(k=0), PinvGaussian(rtol=1.5)])
def test_factorial_estimators_reject_invalid_parameters_naming_them(model):
    name = next(k for k, v in model.get_params().items() if v in (0, -1.0, 1.5))
    with pytest.raises(ValueError, match=name):
        model.fit(gaussian(10, 3, seed=0))


def test_ridge_on_constant_training_rows_raises_a_clear_error():
    with pytest.raises(ValueError, match="all equal"):
        RidgeGaussian().fit(np.ones((5, 3)))
