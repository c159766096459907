"""Anomaly maps: batched patch models against brute force, upsampling geometry, end to end on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from tad.backbones import WeightsUnavailable, load_backbone
from conftest import make_synthetic_mvtec
from tad.data import load_split
from tad.evaluate import auroc, pixel_auroc, pro_score
from tad.maps import PatchModel, evaluate_detector, evaluate_maps, extract_maps, upsample_maps
from tad.patch import PaDiM, PatchCore
from tad.reduce import Reducer


def _random_maps(n: int, h: int = 3, w: int = 2, c: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(c, c)) * np.linspace(0.2, 3.0, c)  # correlated channels, distinct variances
    return (rng.normal(size=(n, h, w, c)) @ mixing + rng.normal(size=(h, w, c))).astype(np.float32)


def _mahalanobis_by_hand(train: np.ndarray, test: np.ndarray, reduction: str) -> np.ndarray:
    """Reducer, then sklearn LedoitWolf and an explicit inverse of its covariance, on (m, C) patches."""
    reducer = Reducer(reduction, 0.5).fit(train)
    z_train, z_test = reducer.transform(train), reducer.transform(test)
    lw = LedoitWolf().fit(z_train)
    diff = z_test - lw.location_
    return np.einsum("ij,jk,ik->i", diff, np.linalg.inv(lw.covariance_), diff)


@pytest.mark.parametrize("reduction", ["npca", "pca", "none"])
def test_per_position_mvg_equals_a_loop_of_ledoit_wolf_fits(reduction):
    train, test = _random_maps(15), _random_maps(4, seed=1)
    scores = PatchModel("mvg", reduction, 0.5, shared=False).fit(train).score_maps(test)
    expected = np.empty((4, 3, 2))
    for y in range(3):
        for x in range(2):
            expected[:, y, x] = _mahalanobis_by_hand(train[:, y, x].astype(float), test[:, y, x].astype(float),
                                                     reduction)
    np.testing.assert_allclose(scores, expected, rtol=1e-8)


def test_shared_mvg_equals_one_ledoit_wolf_fit_on_all_patches():
    train, test = _random_maps(5), _random_maps(4, seed=1)
    scores = PatchModel("mvg", "npca", 0.5, shared=True).fit(train).score_maps(test)
    expected = _mahalanobis_by_hand(train.reshape(-1, 6).astype(float), test.reshape(-1, 6).astype(float), "npca")
    np.testing.assert_allclose(scores, expected.reshape(4, 3, 2), rtol=1e-8)


def test_mvg_needs_no_loop_and_shrinks_when_patches_are_fewer_than_channels():
    model = PatchModel("mvg", "none", shared=False).fit(_random_maps(4, c=10))
    assert model.precision_.shape == (6, 10, 10)
    assert np.all(model.shrinkage_ > 0)  # singular sample covariance made invertible


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("k", [1, 5])
def test_knn_patch_score_equals_exhaustive_search(shared, k):
    train, test = _random_maps(8), _random_maps(3, seed=1)
    scores = PatchModel(f"knn{k}", "none", shared=shared).fit(train).score_maps(test)
    expected = np.empty((3, 3, 2))
    for i in range(3):
        for y in range(3):
            for x in range(2):
                bank = train.reshape(-1, 6) if shared else train[:, y, x]
                dist = np.sqrt(((bank.astype(float) - test[i, y, x]) ** 2).sum(axis=1))
                expected[i, y, x] = np.sort(dist)[:k].mean()
    np.testing.assert_allclose(scores, expected, rtol=1e-4)


def test_shared_knn_finds_a_normal_patch_that_sits_at_another_position():
    train = _random_maps(4)
    test = train[:1, ::-1].copy()  # the same patches, rows flipped: each lies exactly at another position
    assert np.allclose(PatchModel("knn1", "none", shared=True).fit(train).score_maps(test), 0, atol=1e-2)
    assert PatchModel("knn1", "none", shared=False).fit(train).score_maps(test).max() > 1


def test_patch_model_rejects_bad_parameters_and_mismatched_maps():
    train = _random_maps(5)
    with pytest.raises(ValueError, match="estimator 'flow' not in"):
        PatchModel("flow").fit(train)
    with pytest.raises(ValueError, match="knn10 needs 10 neighbours, more than the 5 training patches"):
        PatchModel("knn10").fit(train)
    with pytest.raises(ValueError, match="estimator 'knn' not in"):
        PatchModel("knn").fit(train)
    with pytest.raises(ValueError, match="grid"):
        PatchModel().fit(train).score_maps(_random_maps(2, h=4))
    with pytest.raises(ValueError, match=r"shape \(n, H', W', C\)"):
        PatchModel().fit(train[0])


def test_upsampling_keeps_shape_and_puts_a_hot_patch_in_its_image_region():
    scores = np.zeros((2, 4, 4))
    scores[1, 0, 2] = 1.0  # row 0, column 2 of a 4x4 grid: rows 0-15, columns 32-47 of a 64 px image
    maps = upsample_maps(scores, 64, sigma=2)
    assert maps.shape == (2, 64, 64)
    assert np.all(maps[0] == 0)
    y, x = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert 0 <= y < 16 and 32 <= x < 48
    assert upsample_maps(scores, (30, 50), sigma=0).shape == (2, 30, 50)


def test_blob_region_scores_higher_than_background_end_to_end(tmp_path):
    try:
        backbone = load_backbone("tf_efficientnet_lite0")
    except WeightsUnavailable as err:
        pytest.skip(f"Lite0 weights unavailable: {err}")
    make_synthetic_mvtec(tmp_path / "data", n_train=20, n_test_good=4, n_test_defective=6, size=64)
    split = load_split("synthetic", tmp_path / "data", require_masks=True)
    out = evaluate_maps(split, backbone, layers=(2, 3), input_size=64, resolution=64, sigma=2,
                        cache_dir=tmp_path / "cache")
    assert out["maps"].shape == out["masks"].shape == (10, 64, 64)
    assert out["masks"][out["labels"] == 0].sum() == 0 and out["masks"][out["labels"] == 1].any()
    assert out["grid"] == (16, 16)
    assert out["pixel_auroc"] > 0.8
    assert out["image_auroc_from_map"] > 0.8
    assert out["fit_s"] > 0 and out["score_ms_per_image"] > 0
    # The cache file written by the run gives back the same maps.
    cached = extract_maps(backbone, split.test_paths, (2, 3), input_size=64, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(cached, extract_maps(backbone, split.test_paths, (2, 3), input_size=64,
                                                       progress=False))


def test_evaluate_detector_scores_the_detectors_own_maps_and_image_scores(tmp_path):
    try:
        backbone = load_backbone("tf_efficientnet_lite0")
    except WeightsUnavailable as err:
        pytest.skip(f"Lite0 weights unavailable: {err}")
    make_synthetic_mvtec(tmp_path / "data", n_train=20, n_test_good=4, n_test_defective=6, size=64)
    split = load_split("synthetic", tmp_path / "data", require_masks=True)
    kw = dict(input_size=64, cache_dir=tmp_path / "cache", progress=False)
    train, test = (extract_maps(backbone, paths, (2, 3), **kw) for paths in (split.train_paths, split.test_paths))
    for detector in (PaDiM(), PatchCore(coreset_ratio=0.25)):
        out = evaluate_detector(split, backbone, detector, layers=(2, 3), input_size=64, resolution=64, sigma=2,
                                cache_dir=tmp_path / "cache")
        fresh = type(detector)(**detector.get_params()).fit(train)
        maps = upsample_maps(fresh.score_maps(test), 64, 2)
        np.testing.assert_allclose(out["image_scores"], fresh.score_samples(test), rtol=1e-6)
        assert out["image_auroc"] == auroc(split.test_labels, fresh.score_samples(test)) > 0.8
        assert out["pixel_auroc"] == pytest.approx(pixel_auroc(out["masks"], maps)) and out["pixel_auroc"] > 0.8
        assert out["pro"] == pytest.approx(pro_score(out["masks"], maps))
        assert out["fit_s"] > 0 and out["score_ms_per_image"] > 0


def test_pro_is_near_one_for_a_separating_map_with_a_huge_outlier():
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[1, 8:16, 8:16] = True
    maps = np.where(masks, 10.0, 0.0) + rng.uniform(0, 1, masks.shape)
    maps[1, 8, 8] = 1e9  # one Mahalanobis-like outlier inside the defect
    assert pro_score(masks, maps) > 0.95
