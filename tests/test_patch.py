"""tad.patch: the greedy coreset against brute force, PaDiM and PatchCore against direct computations."""

from itertools import combinations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, mahalanobis

from tad.patch import PaDiM, PatchCore, greedy_coreset, local_patches


def brute_force_k_center(X: np.ndarray, n: int, start: int) -> list[int]:
    """Gonzalez's greedy k-center from the full distance matrix: each next point is the farthest from the chosen."""
    D = cdist(X, X)
    chosen = [start]
    while len(chosen) < n:
        chosen.append(int(np.argmax(D[:, chosen].min(axis=1))))
    return chosen


def covering_radius(X: np.ndarray, centres: np.ndarray) -> float:
    return float(cdist(X, X[centres]).min(axis=1).max())


@pytest.mark.parametrize("seed", range(5))
def test_greedy_coreset_equals_brute_force_greedy_k_center(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((60, 5))
    start = int(rng.integers(60))
    assert greedy_coreset(X, 25, start=start).tolist() == brute_force_k_center(X, 25, start)


def test_coreset_covering_radius_never_grows_with_n_and_is_zero_with_every_point():
    X = np.random.default_rng(1).standard_normal((40, 3))
    radii = [covering_radius(X, greedy_coreset(X, n)) for n in range(1, 41)]
    assert all(b <= a for a, b in zip(radii, radii[1:]))
    assert radii[-1] == 0 and radii[0] > 0


def test_coreset_radius_is_within_twice_the_best_k_center_radius():
    X = np.random.default_rng(2).standard_normal((12, 2))
    for n in (2, 3, 4):
        best = min(covering_radius(X, np.array(c)) for c in combinations(range(12), n))
        assert best <= covering_radius(X, greedy_coreset(X, n)) <= 2 * best + 1e-12


def test_greedy_coreset_rejects_bad_input():
    X = np.zeros((5, 2))
    for bad in (0, 6, 2.0, True):
        with pytest.raises(ValueError, match="n "):
            greedy_coreset(X, bad)
    with pytest.raises(ValueError, match="start"):
        greedy_coreset(X, 2, start=5)
    with pytest.raises(ValueError, match="float array"):
        greedy_coreset(np.zeros((5, 2), dtype=int), 2)


def test_local_patches_average_the_neighbours_inside_the_grid():
    maps = np.random.default_rng(3).standard_normal((2, 4, 5, 3))
    out = local_patches(maps, 3)
    for i, j in [(0, 0), (1, 2), (3, 4), (0, 2)]:
        expected = maps[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].mean(axis=(1, 2))
        np.testing.assert_allclose(out[:, i, j], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(local_patches(maps, 1), maps, rtol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        local_patches(maps, 2)


def test_padim_scores_the_mahalanobis_distance_to_its_positions_regularised_gaussian():
    rng = np.random.default_rng(4)
    train, test = rng.standard_normal((30, 2, 3, 4)), rng.standard_normal((3, 2, 3, 4))
    model = PaDiM(epsilon=0.5).fit(train)
    scores = model.score_maps(test)
    for i, j in [(0, 0), (1, 2)]:
        patches = train[:, i, j]
        inverse = np.linalg.inv(np.cov(patches, rowvar=False) + 0.5 * np.eye(4))
        for k in range(3):
            assert scores[k, i, j] == pytest.approx(mahalanobis(test[k, i, j], patches.mean(axis=0), inverse))
    np.testing.assert_allclose(model.score_samples(test), scores.max(axis=(1, 2)))


def test_padim_channel_subset_uses_only_the_drawn_channels():
    rng = np.random.default_rng(5)
    train, test = rng.standard_normal((20, 2, 2, 6)), rng.standard_normal((2, 2, 2, 6))
    model = PaDiM(n_channels=3, random_state=1).fit(train)
    assert len(set(model.channels_)) == 3
    direct = PaDiM().fit(train[..., model.channels_]).score_maps(test[..., model.channels_])
    np.testing.assert_allclose(model.score_maps(test), direct)
    with pytest.raises(ValueError, match="n_channels"):
        PaDiM(n_channels=7).fit(train)


def test_patchcore_with_every_patch_scores_the_nearest_training_patch_from_any_position():
    rng = np.random.default_rng(6)
    train, test = rng.standard_normal((5, 3, 3, 4)), rng.standard_normal((2, 3, 3, 4))
    model = PatchCore(coreset_ratio=1.0, neighbourhood=1).fit(train)
    expected = cdist(test.reshape(-1, 4), train.reshape(-1, 4)).min(axis=1).reshape(2, 3, 3)
    np.testing.assert_allclose(model.score_maps(test), expected, rtol=1e-5)
    np.testing.assert_allclose(model.score_samples(test), expected.max(axis=(1, 2)), rtol=1e-5)


def test_patchcore_bank_is_the_greedy_coreset_of_the_locally_aware_patches():
    rng = np.random.default_rng(7)
    train = rng.standard_normal((6, 4, 4, 3))
    model = PatchCore(coreset_ratio=0.1, random_state=3).fit(train)
    patches = local_patches(train, 3).reshape(-1, 3)
    assert len(model.bank_) == round(0.1 * len(patches))
    assert model.coreset_.tolist() == brute_force_k_center(patches.astype(np.float64), len(model.bank_),
                                                           int(model.coreset_[0]))
    np.testing.assert_array_equal(model.bank_, patches[model.coreset_])


def test_patchcore_reweighting_follows_the_papers_formula():
    rng = np.random.default_rng(8)
    train, test = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((2, 3, 3, 2))
    model = PatchCore(coreset_ratio=1.0, neighbourhood=1, reweight=3).fit(train)
    bank = train.reshape(-1, 2)
    for k, image in enumerate(test.reshape(2, -1, 2)):
        D = cdist(image, bank)
        worst = D.min(axis=1).argmax()
        s, anchor = D[worst].min(), D[worst].argmin()
        neighbours = np.argsort(cdist(bank[anchor:anchor + 1], bank)[0])[:3]
        weight = 1 - np.exp(s) / np.exp(D[worst, neighbours]).sum()
        assert model.score_samples(test)[k] == pytest.approx(weight * s, rel=1e-5)


def test_both_detectors_find_a_planted_defect_at_its_position():
    rng = np.random.default_rng(9)
    train = rng.standard_normal((40, 6, 6, 3))
    test = rng.standard_normal((2, 6, 6, 3))
    test[1, 4, 1] += 8.0
    for model in (PaDiM(), PatchCore(coreset_ratio=0.5, neighbourhood=1)):
        scores = model.fit(train).score_maps(test)
        assert np.unravel_index(scores[1].argmax(), (6, 6)) == (4, 1)
        assert model.score_samples(test)[1] > model.score_samples(test)[0]
        assert model.anomaly_maps(test, 24, sigma=1.0).shape == (2, 24, 24)


@pytest.mark.parametrize("params, match", [({"coreset_ratio": 0}, "coreset_ratio"), ({"reweight": -1}, "reweight"),
                                           ({"projection_dim": 0}, "projection_dim"), ({"chunk": 0}, "chunk")])
def test_patchcore_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        PatchCore(**params).fit(np.zeros((2, 2, 2, 3)))


def test_detectors_reject_maps_of_another_grid_or_channels():
    train = np.random.default_rng(10).standard_normal((5, 3, 3, 4))
    for model in (PaDiM().fit(train), PatchCore(coreset_ratio=1.0).fit(train)):
        for bad in (np.zeros((1, 3, 3, 5)), np.zeros((1, 2, 3, 4))):
            with pytest.raises(ValueError, match="fitted on grid"):
                model.score_maps(bad)
