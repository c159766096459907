"""Tests for tad.analysis against brute-force projections (np.cov eigenvectors, scipy's null space)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.linalg import null_space

from tad.analysis import (axis_groups, below_chance, deviation_by_axes, factorial_axes, factorial_contrasts,
                          factorial_study, grey_level_table, grey_levels, normalise_grey, normalised_copies,
                          shrinkage_aurocs, shrunk_mahalanobis, subsample_aurocs, subsample_summary)
from tad.evaluate import auroc
from tad.stats import Family, compare


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


def _brute_shrunk(train, test, delta):
    """Mahalanobis distance under (1 - delta) S + delta mu I, built and inverted directly."""
    S = np.cov(train, rowvar=False, bias=True)
    cov = (1 - delta) * S + delta * np.trace(S) / len(S) * np.eye(len(S))
    D = test - train.mean(axis=0)
    return np.einsum("ij,jk,ik->i", D, np.linalg.inv(cov), D)


@pytest.mark.parametrize("n", [8, 40])  # fewer rows than dimensions (null space), and more
def test_shrunk_mahalanobis_matches_the_inverted_shrunk_covariance(n):
    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(n, 12)) * np.arange(1, 13), rng.normal(size=(5, 12))
    for delta in (0.01, 0.3, 1.0):
        scores, used = shrunk_mahalanobis(train, test, delta)
        assert used == delta
        np.testing.assert_allclose(scores, _brute_shrunk(train, test, delta), rtol=1e-7)


def test_shrunk_mahalanobis_without_intensity_is_ledoit_wolf():
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(4)
    train, test = rng.normal(size=(10, 15)), rng.normal(size=(4, 15))
    scores, delta = shrunk_mahalanobis(train, test)
    lw = LedoitWolf().fit(train)
    assert delta == pytest.approx(lw.shrinkage_)
    np.testing.assert_allclose(scores, lw.mahalanobis(test), rtol=1e-7)


def test_shrinkage_weights_null_axes_by_one_over_delta_mu():
    # Training rows vary in the first coordinate only; a test point off the training line by 1 along axis 2
    # is at distance 1 / (delta * mu), mu = the mean training variance.
    train = np.zeros((4, 3))
    train[:, 0] = [-3.0, -1.0, 1.0, 3.0]
    mu = train[:, 0].var() / 3
    for delta in (0.1, 0.5):
        scores, _ = shrunk_mahalanobis(train, np.array([[0.0, 1.0, 0.0]]), delta)
        assert scores[0] == pytest.approx(1 / (delta * mu))


def test_shrinkage_aurocs_rows_follow_reductions_and_intensities():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(30, 6))
    test = np.vstack([rng.normal(size=(10, 6)), rng.normal(size=(10, 6)) + 3])
    labels = np.r_[np.zeros(10), np.ones(10)].astype(bool)
    table = shrinkage_aurocs(train, test, labels, [("none", None), ("npca", 0.5)], [0.1, None])
    assert list(table.reduction) == ["none", "none", "npca", "npca"]
    assert list(table.shrinkage.isna()) == [False, True, False, True]  # NaN: Ledoit-Wolf's estimate
    direct = auroc(labels, _brute_shrunk(train, test, 0.1))
    assert table.auroc.iloc[0] == pytest.approx(direct)


def test_subsample_aurocs_sizes_draws_and_the_null_space():
    rng = np.random.default_rng(6)
    train = rng.normal(size=(30, 10))
    test = np.vstack([rng.normal(size=(10, 10)), rng.normal(size=(10, 10)) + 2])
    labels = np.r_[np.zeros(10), np.ones(10)].astype(bool)
    table = subsample_aurocs(train, test, labels, [5, 30], reduction="npca", ratio=0.5, estimator="knn1",
                             n_draws=3)
    assert list(table.n_train) == [5, 5, 5, 30]  # the whole set is drawn once
    assert list(table.n_null) == [10 - 4] * 3 + [0]  # 5 rows span 4 dimensions
    Ztrain, Ztest = _npca_half(train, test)
    nearest = np.sqrt(((Ztest[:, None] - Ztrain[None]) ** 2).sum(axis=2)).min(axis=1)  # brute-force 1-NN
    assert table.auroc.iloc[-1] == pytest.approx(auroc(labels, nearest))
    assert (table.ci_low <= table.auroc).all() and (table.auroc <= table.ci_high).all()
    again = subsample_aurocs(train, test, labels, [5, 30], reduction="npca", ratio=0.5, estimator="knn1", n_draws=3)
    pd.testing.assert_frame_equal(table, again)
    with pytest.raises(ValueError, match="sizes"):
        subsample_aurocs(train, test, labels, [31], reduction="none", ratio=None, estimator="mvg")


def _npca_half(train, test):
    """Coordinates on the half of np.cov's eigenvectors with the smallest eigenvalues (independent of tad.reduce)."""
    values, vectors = np.linalg.eigh(np.cov(train, rowvar=False))
    keep = vectors[:, np.argsort(values)[: train.shape[1] // 2]]
    mean = train.mean(axis=0)
    return (train - mean) @ keep, (test - mean) @ keep
def flat_png(folder, name: str, value: int, mode: str = "L"):
    """A 4x6 image of one grey value, saved as PNG."""
    path = folder / f"{name}.png"
    Image.new(mode, (6, 4), value if mode == "L" else (value,) * 3).save(path)
    return path


def test_grey_level_table_gives_median_and_quantiles_of_hand_made_levels(tmp_path):
    darker = [flat_png(tmp_path, f"d{v}", v) for v in (10, 20, 30, 40, 50)]
    half = flat_png(tmp_path, "half", 0)  # half black, half 200: mean 100
    Image.fromarray(np.hstack([np.zeros((4, 3), np.uint8), np.full((4, 3), 200, np.uint8)])).save(half)
    table = grey_level_table({"dark": darker, "other": [half, flat_png(tmp_path, "rgb", 120, "RGB")]})
    assert list(table.index) == ["dark", "other"]
    assert table.loc["dark", "images"] == 5 and table.loc["dark", "median"] == 30
    assert table.loc["dark", "q05"] == pytest.approx(10 + 0.05 * 4 * 10)  # linear interpolation over 10..50
    assert table.loc["dark", "q95"] == pytest.approx(10 + 0.95 * 4 * 10)
    np.testing.assert_allclose(grey_levels([half, tmp_path / "rgb.png"]), [100, 120])
    assert table.loc["other", "median"] == pytest.approx(110)


def test_grey_level_table_refuses_an_empty_group(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        grey_level_table({"empty": [], "one": [flat_png(tmp_path, "a", 5)]})


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_normalise_grey_scales_to_the_target_mean_and_keeps_the_mode(mode):
    rng = np.random.default_rng(0)
    shape = (32, 40) if mode == "L" else (32, 40, 3)
    image = Image.fromarray(rng.integers(20, 100, size=shape, dtype=np.uint8), mode=mode)
    out = normalise_grey(image, 150.0)
    assert out.mode == mode and out.size == image.size
    assert np.asarray(out.convert("L"), dtype=float).mean() == pytest.approx(150, abs=0.6)
    ratio = 150 / np.asarray(image.convert("L"), dtype=float).mean()
    np.testing.assert_array_equal(np.asarray(out), np.rint(np.asarray(image, dtype=float) * ratio))


def test_normalise_grey_clips_and_refuses_black_or_bad_targets():
    out = normalise_grey(Image.fromarray(np.array([[100, 250]], np.uint8)), 250)
    np.testing.assert_array_equal(np.asarray(out), [[143, 255]])  # 250 * 250/175 clipped
    with pytest.raises(ValueError, match="all black"):
        normalise_grey(Image.new("L", (3, 3), 0), 100)
    with pytest.raises(ValueError, match="target"):
        normalise_grey(Image.new("L", (3, 3), 9), 300)


def test_normalised_copies_are_lossless_and_rewritten_for_a_new_target(tmp_path):
    src = [flat_png(tmp_path, "a", 50), flat_png(tmp_path, "b", 100)]
    copies = normalised_copies(src, tmp_path / "out", 80)
    assert [p.name for p in copies] == ["00000_a.png", "00001_b.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(copies[1])), np.full((4, 6), 80))
    normalised_copies(src, tmp_path / "out", 60)
    np.testing.assert_array_equal(np.asarray(Image.open(copies[0])), np.full((4, 6), 60))


# --- the factorial study -------------------------------------------------------------------------------------

def test_factorial_axes_by_hand():
    values = np.array([6.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # rank 4, cumulative 6, 9, 11, 12
    assert factorial_axes(values, 0.5, (0.5, 0.95)) == {
        "none": slice(0, 8), "non-null axes": slice(0, 4), "PCA 50 %": slice(0, 2), "NPCA 50 %": slice(2, 4),
        "NPCA 50 % + null": slice(2, 8), "null space (SPE)": slice(4, 8),
        "T² axes (50 %)": slice(0, 1), "DFM residual (50 %)": slice(1, 8),
        "T² axes (95 %)": slice(0, 4), "DFM residual (95 %)": slice(4, 8)}


@pytest.fixture(scope="module")
def small_study():
    rng = np.random.default_rng(7)
    X = anisotropic(9, 14, seed=5)  # 9 training rows in 14 dimensions: rank 8, a null space of 6
    Y = np.vstack([anisotropic(6, 14, seed=6), anisotropic(6, 14, seed=8) + rng.normal(size=(6, 14))])
    y = np.r_[np.zeros(6), np.ones(6)].astype(bool)
    table, scores = factorial_study(X, Y, y, variances=(0.9,))
    return X, Y, y, table, scores


def test_factorial_none_cells_equal_the_estimators_on_the_raw_features(small_study):
    X, Y, _, _, scores = small_study
    mean = X.mean(axis=0)
    nearest = np.sqrt(((Y[:, None] - X[None]) ** 2).sum(axis=2)).min(axis=1)
    np.testing.assert_allclose(scores["none", "Euclidean 1-NN"], nearest, rtol=1e-9)
    np.testing.assert_allclose(scores["none", "distance to mean"], ((Y - mean) ** 2).sum(axis=1), rtol=1e-9)
    pinv = np.linalg.pinv(np.cov(X, rowvar=False, bias=True), rcond=1e-10, hermitian=True)
    np.testing.assert_allclose(scores["none", "pseudo-inverse Gaussian"],
                               np.einsum("ij,jk,ik->i", Y - mean, pinv, Y - mean), rtol=1e-6)


def test_factorial_null_space_distance_to_mean_is_the_distance_to_the_training_span(small_study):
    X, Y, _, _, scores = small_study
    mean = X.mean(axis=0)
    np.testing.assert_allclose(scores["null space (SPE)", "distance to mean"],
                               squared_projection(Y, mean, null_space(X - mean)), rtol=1e-7)
    np.testing.assert_allclose(scores["null space (SPE)", "Euclidean 1-NN"] ** 2,
                               scores["null space (SPE)", "distance to mean"], rtol=1e-7)


def test_factorial_leaves_out_cells_that_need_variance_on_the_null_block(small_study):
    _, _, y, table, scores = small_study
    null = table[table.reduction == "null space (SPE)"]
    assert set(null.estimator) == {"Euclidean 1-NN", "distance to mean"}
    assert (null.n_null_kept == 6).all()
    pinv = table[table.estimator == "pseudo-inverse Gaussian"].set_index("reduction")
    assert pinv.loc["NPCA 50 % + null", "n_axes"] == 4 and pinv.loc["NPCA 50 % + null", "n_null_kept"] == 0
    lw = table[table.estimator == "Ledoit-Wolf MVG"].set_index("reduction")
    assert lw.loc["NPCA 50 % + null", "n_axes"] == 10 and lw.loc["NPCA 50 % + null", "n_null_kept"] == 6
    row = table[(table.reduction == "none") & (table.estimator == "OAS MVG")].iloc[0]
    assert row.auroc == auroc(y, scores["none", "OAS MVG"]) and row.ci_low <= row.auroc <= row.ci_high


def test_factorial_contrasts_equal_compare_and_skip_identical_models(small_study):
    _, _, y, _, scores = small_study
    family = Family("test", 4)
    out = factorial_contrasts(y, scores, [("NPCA 50 %", "none"), ("none", "none")], family)
    assert list(out.a) == ["NPCA 50 %"] * 7 and set(out.b) == {"none"}
    row = out[out.estimator == "Euclidean 1-NN"].iloc[0]
    c = compare(y, scores["NPCA 50 %", "Euclidean 1-NN"], scores["none", "Euclidean 1-NN"], family=family)
    assert (row["diff"], row.ci_low, row.ci_high, row.verdict, row.family) == (c.diff, c.ci_low, c.ci_high,
                                                                              c.verdict, c.family)


def test_factorial_study_rejects_an_unknown_estimator_naming_it():
    with pytest.raises(ValueError, match="kNN"):
        factorial_study(np.eye(4), np.eye(4), np.array([0, 0, 1, 1]), estimators=["kNN"])


def test_below_chance_flags_an_inverted_ranking_only():
    y = np.r_[np.zeros(30), np.ones(30)].astype(bool)
    ranked = np.r_[np.arange(30), np.arange(30) + 30.0]
    assert below_chance(y, -ranked) and not below_chance(y, ranked)
    assert not below_chance(y, np.random.default_rng(0).normal(size=60))


def test_subsample_summary_by_hand():
    draws = pd.DataFrame({"dataset": "x", "n_train": [5, 5, 5, 10], "draw": [0, 1, 2, 0], "d": 20,
                          "auroc": [0.6, 0.8, 0.7, 0.9], "ci_low": [0.5, 0.7, 0.6, 0.8],
                          "ci_high": [0.7, 0.9, 0.8, 1.0]})
    out = subsample_summary(draws)
    assert out.columns[:4].tolist() == ["dataset", "n_train", "d", "n_over_d"]
    np.testing.assert_allclose(out[["n_over_d", "draws", "auroc_mean", "auroc_min", "auroc_max", "ci_low",
                                    "ci_high"]].to_numpy(),
                               [[0.25, 3, 0.7, 0.6, 0.8, 0.5, 0.9], [0.5, 1, 0.9, 0.9, 0.9, 0.8, 1.0]])
