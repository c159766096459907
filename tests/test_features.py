"""Tests for tad.features: pooling, selection, extraction against a manual forward pass, and the cache."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import tad.features
from conftest import make_synthetic_mvtec
from tad.data import load_split
from tad.features import cache_key, extract, pool, select, split_features

SIZE = 64


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvtec")
    make_synthetic_mvtec(root, n_train=4, n_test_good=1, n_test_defective=1, size=SIZE, seed=3)
    return load_split("synthetic", root)


@pytest.fixture(scope="module")
def paths(split):
    return split.train_paths


def manual_features(backbone, paths, size):
    """PIL resize + [0, 1] + mean/std + forward + numpy avg/max/min: (n, 3, C) per layer."""
    out = {}
    for p in paths:
        img = Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)
        x = (np.asarray(img, np.float32) / 255 - np.asarray(backbone.mean, np.float32)) / np.asarray(
            backbone.std, np.float32)
        with torch.no_grad():
            maps = backbone(torch.from_numpy(x).permute(2, 0, 1)[None])
        for layer, m in enumerate(maps, 1):
            m = m[0].numpy()
            out.setdefault(layer, []).append(np.stack([m.mean((1, 2)), m.max((1, 2)), m.min((1, 2))]))
    return {k: np.stack(v) for k, v in out.items()}


def test_pool_matches_numpy_mean_max_min():
    hand = torch.tensor([[[[1.0, -2.0], [3.0, 6.0]], [[0.0, 0.0], [0.0, -4.0]]]])  # (1, 2, 2, 2)
    (pooled,) = pool([hand])
    np.testing.assert_array_equal(pooled.numpy(), [[[2.0, -1.0], [6.0, 0.0], [-2.0, -4.0]]])
    maps = [torch.randn(3, 5, 4, 7), torch.randn(3, 2, 1, 1)]
    for m, p in zip(maps, pool(maps)):
        a = m.numpy()
        np.testing.assert_allclose(p.numpy(), np.stack([a.mean((2, 3)), a.max((2, 3)), a.min((2, 3))], 1),
                                   rtol=1e-5, atol=1e-6)


def test_select_concatenates_poolings_in_given_order_and_layers_for_all():
    rng = np.random.default_rng(0)
    feats = {1: rng.normal(size=(4, 3, 2)).astype(np.float32), 2: rng.normal(size=(4, 3, 5)).astype(np.float32)}
    bb = SimpleNamespace(name="fake", n_layers=2)
    avg, mx, mn = 0, 1, 2
    np.testing.assert_array_equal(select(feats, 2, "min+avg", bb), np.hstack([feats[2][:, mn], feats[2][:, avg]]))
    np.testing.assert_array_equal(select(feats, 1, "max", bb), feats[1][:, mx])
    np.testing.assert_array_equal(
        select(feats, "all", "min+max+avg", bb),
        np.hstack([feats[lay][:, i] for lay in (1, 2) for i in (mn, mx, avg)]))
    assert select(feats, "all", "avg", bb).shape == (4, 7)
    assert select(feats, 1, "avg", bb).dtype == np.float64


def test_select_rejects_unknown_pooling_listing_choices():
    bb = SimpleNamespace(name="fake", n_layers=1)
    with pytest.raises(ValueError, match="mean.*min\\+max\\+avg"):
        select({1: np.zeros((2, 3, 4))}, 1, "mean", bb)


def test_extract_equals_manual_forward_and_pooling(lite0, paths):
    feats = extract(lite0, paths, input_size=SIZE, progress=False)
    expected = manual_features(lite0, paths, SIZE)
    assert sorted(feats) == list(range(1, 8))
    for layer in feats:
        assert feats[layer].dtype == np.float32
        assert feats[layer].shape == (len(paths), 3, lite0.channels[layer - 1])
        scale = np.abs(expected[layer]).max()  # float32 convolutions differ in the last bits by batch size
        np.testing.assert_allclose(feats[layer], expected[layer], atol=1e-5 * scale, rtol=0)


def test_second_extract_reads_cache_without_computing(lite0, paths, tmp_path, monkeypatch):
    first = extract(lite0, paths, input_size=SIZE, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(tad.features, "backbone_outputs", fail)
    second = extract(lite0, paths, input_size=SIZE, cache_dir=tmp_path, progress=False)
    for layer in first:
        np.testing.assert_array_equal(first[layer], second[layer])


def test_cache_key_follows_content_noise_and_size_not_file_names(lite0, paths, tmp_path):
    copies = []
    for i, p in enumerate(paths):
        copies.append(tmp_path / f"renamed{i}.png")
        copies[-1].write_bytes(p.read_bytes())
    base = cache_key(lite0, paths, SIZE, 0.0, 0)
    assert cache_key(lite0, copies, SIZE, 0.0, 0) == base
    assert cache_key(lite0, paths, SIZE, 0.0, 5) == base  # the seed is irrelevant without noise
    img = np.asarray(Image.open(copies[0])).copy()
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(copies[0])
    changed = {
        cache_key(lite0, copies, SIZE, 0.0, 0),
        cache_key(lite0, paths, SIZE + 32, 0.0, 0),
        cache_key(lite0, paths, SIZE, 0.01, 0),
        cache_key(lite0, paths, SIZE, 0.01, 1),
        cache_key(lite0, paths[::-1], SIZE, 0.0, 0),
    }
    assert len(changed) == 5 and base not in changed


def test_changed_image_content_is_not_served_from_cache(lite0, paths, tmp_path, monkeypatch):
    copies = []
    for i, p in enumerate(paths):
        copies.append(tmp_path / f"{i}.png")
        copies[-1].write_bytes(p.read_bytes())
    cache = tmp_path / "cache"
    extract(lite0, copies, input_size=SIZE, cache_dir=cache, progress=False)
    Image.fromarray(255 - np.asarray(Image.open(copies[1]))).save(copies[1])
    calls = []
    real = tad.features.backbone_outputs
    monkeypatch.setattr(tad.features, "backbone_outputs", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    feats = extract(lite0, copies, input_size=SIZE, cache_dir=cache, progress=False)
    assert calls == [1]
    expected = manual_features(lite0, copies, SIZE)[7]
    np.testing.assert_allclose(feats[7], expected, atol=1e-5 * np.abs(expected).max(), rtol=0)


def test_noise_augmentation_is_reproducible_by_seed_and_differs_across_seeds(lite0, paths):
    kw = dict(input_size=SIZE, noise_std=0.05, num_workers=0, progress=False)
    a = extract(lite0, paths, noise_seed=1, **kw)[3]
    b = extract(lite0, paths, noise_seed=1, **kw)[3]
    c = extract(lite0, paths, noise_seed=2, **kw)[3]
    clean = extract(lite0, paths, input_size=SIZE, num_workers=0, progress=False)[3]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-4)
    assert not np.allclose(a, clean, atol=1e-4)
    # Different images of one call get different draws: the first image's features move differently.
    assert not np.allclose(a[0] - clean[0], a[1] - clean[1], atol=1e-4)


@pytest.mark.parametrize(("kwargs", "name"), [({"input_size": 16}, "input_size"), ({"noise_std": -1}, "noise_std")])
def test_extract_rejects_bad_settings_naming_them(lite0, paths, kwargs, name):
    with pytest.raises(ValueError, match=name):
        extract(lite0, paths, progress=False, **kwargs)


def test_extract_rejects_empty_paths(lite0):
    with pytest.raises(ValueError, match="paths"):
        extract(lite0, [], input_size=SIZE, progress=False)


def test_split_features_augments_training_set_only(lite0, split, tmp_path):
    kw = dict(input_size=SIZE, cache_dir=tmp_path, progress=False)
    train, test = split_features(split, lite0, noise_std=0.05, n_augment=2, **kw)
    clean = extract(lite0, split.train_paths, **kw)
    noisy = [extract(lite0, split.train_paths, noise_std=0.05, noise_seed=c, **kw) for c in (1, 2)]
    np.testing.assert_array_equal(train[3], np.concatenate([clean[3], noisy[0][3], noisy[1][3]]))
    np.testing.assert_array_equal(test[3], extract(lite0, split.test_paths, **kw)[3])
    assert not np.allclose(noisy[0][3], noisy[1][3], atol=1e-4)
    with pytest.raises(ValueError, match="n_augment=1 needs noise_std > 0"):
        split_features(split, lite0, n_augment=1)


def test_select_pair_is_select_on_train_and_test():
    from tad.features import select, select_pair

    class Net:  # what select reads of a backbone
        n_layers = 2

    rng = np.random.default_rng(0)
    train = {1: rng.normal(size=(4, 3, 5)).astype(np.float32), 2: rng.normal(size=(4, 3, 2)).astype(np.float32)}
    test = {k: v[:2] for k, v in train.items()}
    expected = (select(train, "all", "avg", Net()), select(test, "all", "avg", Net()))
    X, Y = select_pair((train, test), "all", "avg", Net())
    np.testing.assert_array_equal(X, expected[0])
    np.testing.assert_array_equal(Y, expected[1])
