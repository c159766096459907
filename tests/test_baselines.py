import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.covariance import LedoitWolf

from tad.backbones import load_backbone
from tad.data import load_image
from tad.features import preprocess
from tad.baselines import Reconstruction, classifier_outputs, fusion_scores, pixel_features


def test_reconstruction_is_distance_to_affine_span_of_training_points():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 6))  # 4 points span a 3-dim affine subspace of R^6
    Y = rng.normal(size=(5, 6))
    # Brute force: least-squares distance from y - x0 to the span of x_i - x0.
    B = (X[1:] - X[0]).T
    coef, *_ = np.linalg.lstsq(B, (Y - X[0]).T, rcond=None)
    expected = ((Y - X[0]).T - B @ coef) ** 2
    np.testing.assert_allclose(Reconstruction().fit(X).score_samples(Y), expected.sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(Reconstruction().fit(X).score_samples(X), 0, atol=1e-20)


def test_reconstruction_with_one_axis_keeps_the_line_of_largest_variance():
    X = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 0.5], [0.0, -0.5]])  # largest variance along x
    s = Reconstruction(n_components=1).fit(X).score_samples(np.array([[5.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_allclose(s, [0.0, 9.0], atol=1e-12)
    with pytest.raises(ValueError, match="n_components 3"):
        Reconstruction(n_components=3).fit(X)


def test_dfm_keeps_the_fewest_leading_axes_reaching_the_variance_share():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 14)) * np.linspace(3, 0.2, 14)  # 9 images in R^14: rank 8, a null space of 6
    Xc = X - X.mean(axis=0)
    values = np.linalg.svd(Xc, compute_uv=False) ** 2  # independent of eigh: singular values, descending
    shares = [values[:k].sum() / values.sum() for k in range(1, len(values) + 1)]
    for variance in (0.3, 0.5, 0.8, 0.95, 0.99, 0.999):
        brute = next(k for k, share in enumerate(shares, start=1) if share >= variance)
        assert Reconstruction(variance=variance).fit(X).n_components_ == brute, variance
    assert Reconstruction(variance=1.0).fit(X).n_components_ == 8  # every non-null axis, none of the null space
    assert Reconstruction().fit(X).n_components_ == 8


def test_dfm_counts_tied_axes_by_their_variance_share():
    # Covariance diag(4, 1, 1, 0) up to a factor: shares 4/6, 5/6, 1 after 1, 2, 3 axes; the 4th is null.
    X = np.array([[2.0, 0, 0, 0], [-2, 0, 0, 0], [0, 1, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, -1, 0]])
    for variance, k in ((0.6, 1), (0.7, 2), (0.9, 3), (1.0, 3)):
        assert Reconstruction(variance=variance).fit(X).n_components_ == k, variance
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match="variance"):
            Reconstruction(variance=bad).fit(X)
    with pytest.raises(ValueError, match="not both"):
        Reconstruction(n_components=1, variance=0.9).fit(X)


def test_dfm_score_is_the_residual_after_the_leading_singular_vectors():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 10)) * np.linspace(2, 0.1, 10)
    Y = rng.normal(size=(7, 10))
    model = Reconstruction(variance=0.95).fit(X)
    k = model.n_components_
    assert 0 < k < 10
    # Independent: right singular vectors of the centred training data; the residual by Pythagoras.
    _, _, Vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    D = Y - X.mean(axis=0)
    expected = (D ** 2).sum(axis=1) - ((D @ Vt[:k].T) ** 2).sum(axis=1)
    np.testing.assert_allclose(model.score_samples(Y), expected, rtol=1e-9)


def test_fusion_is_sum_of_per_level_mahalanobis_distances():
    rng = np.random.default_rng(1)
    train = [rng.normal(size=(30, 4)), rng.normal(size=(30, 7)) * 3]
    test = [rng.normal(size=(6, 4)), rng.normal(size=(6, 7))]
    expected = 0
    for X, Y in zip(train, test):
        lw = LedoitWolf().fit(X)
        D = Y - X.mean(axis=0)
        expected = expected + np.einsum("ij,jk,ik->i", D, np.linalg.inv(lw.covariance_), D)
    np.testing.assert_allclose(fusion_scores(train, test), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="same, non-zero number of levels"):
        fusion_scores(train, test[:1])


def test_pixel_features_downsample_a_uniform_image_to_its_colour(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (255, 0, 51)).save(path)
    f = pixel_features([path, path], size=4)
    assert f.shape == (2, 3 * 4 * 4)
    np.testing.assert_allclose(f[0].reshape(3, 4, 4).mean(axis=(1, 2)), [1.0, 0.0, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="size 0"):
        pixel_features([path], size=0)


def test_classifier_outputs_match_the_full_forward_pass(tmp_path):
    bb = load_backbone("tf_efficientnet_lite0", weights="random")
    rng = np.random.default_rng(2)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(paths[-1])
    pre, score = classifier_outputs(bb, paths, input_size=64, cache_dir=tmp_path / "cache")
    x = torch.stack([preprocess(load_image(p), 64) for p in paths])
    x = (x - torch.tensor(bb.mean).view(1, 3, 1, 1)) / torch.tensor(bb.std).view(1, 3, 1, 1)
    with torch.no_grad():
        probs = torch.softmax(bb.model(x).double(), dim=1).numpy()
    assert pre.shape == (3, bb.model.num_features)
    np.testing.assert_allclose(score, 1 - probs.max(axis=1), atol=1e-6)
    again = classifier_outputs(bb, paths, input_size=64, cache_dir=tmp_path / "cache")  # from the cache
    np.testing.assert_array_equal(again[1], score)


def test_baseline_scores_are_each_baseline_computed_on_its_own(synthetic_root, lite0, tmp_path):
    from tad.baselines import baseline_scores, pixel_features
    from tad.data import load_split
    from tad.features import select, split_features
    from tad.sweep import score

    split = load_split("toy", synthetic_root)
    random_bb = load_backbone("tf_efficientnet_lite0", weights="random")
    kw = {"input_size": 64, "cache_dir": tmp_path / "cache"}
    got, kept = baseline_scores(split, lite0, random_bb, layer=5, pooling="avg", reduction="npca", ratio=0.5,
                                estimator="knn1", pixel_size=8, dfm_variances=(0.9,), **kw)
    train, test = split_features(split, lite0, progress=False, **kw)
    rtrain, rtest = split_features(split, random_bb, progress=False, **kw)
    X, Y = select(train, 5, "avg", lite0), select(test, 5, "avg", lite0)
    expected = {
        "main": score(X, Y, "npca", 0.5, "knn1"),
        "random network": score(select(rtrain, 5, "avg", random_bb), select(rtest, 5, "avg", random_bb),
                                "npca", 0.5, "knn1"),
        "pixels": score(pixel_features(split.train_paths, 8), pixel_features(split.test_paths, 8), "npca", 0.5,
                        "knn1"),
        "DFM 90 %": Reconstruction(variance=0.9).fit(X).score_samples(Y),
        "SPE (full-rank residual)": Reconstruction().fit(X).score_samples(Y),
        "concatenation": score(select(train, "all", "avg", lite0), select(test, "all", "avg", lite0), "none", None,
                               "mvg"),
    }
    assert set(got) == {*expected, "pre-logits", "max-softmax", "fusion (Rippel)"}
    for name, scores in expected.items():
        np.testing.assert_allclose(got[name], scores, err_msg=name)
    assert all(len(s) == len(split.test) for s in got.values())
    assert kept == {"DFM 90 %": Reconstruction(variance=0.9).fit(X).n_components_,
                    "SPE (full-rank residual)": np.linalg.matrix_rank(X - X.mean(axis=0))}
