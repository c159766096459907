"""Tests for tad.selection: pseudo-anomalies, validation-fold selection and thresholds, all from training data."""

import inspect

import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import KFold

import tad.selection as selection
from conftest import make_synthetic_mvtec
from tad.data import load_image, load_mvtec
from tad.calibrate import expected_fpr
from tad.selection import (conformal_points, pseudo_anomaly_images,
                           select_config, validation_auroc)


def nn_distance(fit: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Brute-force Euclidean distance of each row to its nearest fit row."""
    return np.array([min(np.linalg.norm(r - f) for f in fit) for r in rows])


def pairwise_auroc(good: np.ndarray, anomalous: np.ndarray) -> float:
    return float(np.mean([(a > g) + 0.5 * (a == g) for a in anomalous for g in good]))


def test_pseudo_anomaly_is_a_patch_of_the_image_pasted_elsewhere(tmp_path):
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)  # noise: every pixel distinct in practice
    Image.fromarray(source).save(tmp_path / "src.png")
    (out,) = pseudo_anomaly_images([tmp_path / "src.png"], tmp_path / "pseudo", seed=3)
    assert out.suffix == ".png" and Image.open(out).format == "PNG"
    made = np.asarray(Image.open(out))
    assert made.shape == source.shape
    ys, xs = np.nonzero((made != source).any(axis=2))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    assert ys.size == (y1 - y0) * (x1 - x0)  # the change is one full rectangle
    assert 0.02 * 0.8 <= ys.size / (48 * 64) <= 0.15 * 1.2  # area range, up to rounding of the sides
    patch = made[y0:y1, x0:x1]
    h, w = patch.shape[:2]
    found = [(y, x) for y in range(48 - h + 1) for x in range(64 - w + 1)
             if (y, x) != (y0, x0) and np.array_equal(source[y:y + h, x:x + w], patch)]
    assert found, "the pasted rectangle is not a patch of the source image"
    again = pseudo_anomaly_images([tmp_path / "src.png"], tmp_path / "again", seed=3)
    assert np.array_equal(np.asarray(Image.open(again[0])), made)


def test_validation_auroc_matches_fold_by_fold_brute_force():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(30, 4))
    pseudo = train + rng.normal(scale=0.8, size=train.shape)
    expected = []
    for fit, held in KFold(3, shuffle=True, random_state=2).split(train):  # documented split
        expected.append(pairwise_auroc(nn_distance(train[fit], train[held]), nn_distance(train[fit], pseudo[held])))
    got = validation_auroc(train, pseudo, "none", None, "knn1", n_folds=3, seed=2)
    assert got == pytest.approx(np.mean(expected))


def test_select_config_picks_the_configuration_that_separates_pseudo_anomalies():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(40, 5))
    weak, strong = train + rng.normal(scale=0.05, size=train.shape), train + 3.0
    key, table = select_config({"weak": (train, weak, "none", None, "knn1"),
                                "strong": (train, strong, "none", None, "mvg")})
    assert key == "strong"
    assert list(table.index) == ["weak", "strong"]
    assert table["strong"] == pytest.approx(1.0) and table["weak"] < 0.9


def test_conformal_points_calibrate_and_test_on_the_one_model_fitted_on_the_other_rows():
    rng = np.random.default_rng(6)
    train, test = rng.normal(size=(30, 3)), rng.normal(size=(7, 3))
    got = conformal_points(train, test, "none", None, "knn1", [0.05, 0.1], calibration_fraction=1 / 3, seed=2)
    order = np.random.default_rng(2).permutation(30)
    cal, fit = order[:10], np.sort(order[10:])
    cal_scores = np.sort(nn_distance(train[fit], train[cal]))
    np.testing.assert_allclose(got.test_scores, nn_distance(train[fit], test), rtol=1e-12)
    np.testing.assert_allclose(np.sort(got.calibration_scores), cal_scores, rtol=1e-12)
    assert got.n_fit == 20
    assert got.thresholds[0.1] == cal_scores[9]  # k = ceil(11 * 0.9) = 10: the largest of 10
    assert got.thresholds[0.05] is None  # 10 < 1 / 0.05 - 1 = 19 calibration images: no threshold keeps 5 %


@pytest.mark.parametrize("estimator", ["mvg", "knn1"])
def test_conformal_threshold_realises_its_target_fpr_on_fresh_gaussian_good_images(estimator):
    # Over many calibration draws the mean false-positive rate on fresh good images is expected_fpr (<= target);
    # a threshold from scores the model was fitted on (in-sample) would flag far more.
    rng = np.random.default_rng(7)
    targets, n_reps, n_fresh = (0.01, 0.05), 60, 4000
    realised = {f: [] for f in targets}
    for rep in range(n_reps):
        train, fresh = rng.normal(size=(200, 20)), rng.normal(size=(n_fresh, 20))
        got = conformal_points(train, fresh, "none", None, estimator, targets, seed=rep)
        for f in targets:
            realised[f].append(np.mean(got.test_scores > got.thresholds[f]))
    for f in targets:
        mean, expected = np.mean(realised[f]), expected_fpr(100, f)
        sd = np.sqrt(f * (1 - f) / 100 / n_reps)  # spread of the mean of Beta-distributed rates
        assert abs(mean - expected) < 4 * sd, (f, mean, expected)


class TrainOnly:
    """A split whose test side raises on any access: the selection protocol must never need it."""

    def __init__(self, split):
        self.train_paths = split.train_paths

    def __getattr__(self, name):
        raise AssertionError(f"the selection protocol touched split.{name}")


def grid_features(paths, cells: int) -> np.ndarray:
    """A cheap featuriser: mean colour of each cell of a cells x cells grid, shape (n, 3 * cells**2)."""
    rows = []
    for p in paths:
        img = np.asarray(load_image(p), dtype=float)
        h, w = img.shape[0] // cells, img.shape[1] // cells
        rows.append([img[i * h:(i + 1) * h, j * w:(j + 1) * w].mean(axis=(0, 1)) for i in range(cells)
                     for j in range(cells)])
    return np.asarray(rows).reshape(len(paths), -1)


def test_selection_protocol_runs_from_training_images_alone(tmp_path):
    split = TrainOnly(load_mvtec(tmp_path, make_synthetic_mvtec(tmp_path, n_train=15).name))
    pseudo_paths = pseudo_anomaly_images(split.train_paths, tmp_path / "pseudo", seed=0)
    candidates = {f"{cells}x{cells} {est}": (grid_features(split.train_paths, cells),
                                             grid_features(pseudo_paths, cells), "none", None, est)
                  for cells in (1, 4) for est in ("knn1", "mvg")}
    key, table = select_config(candidates, n_folds=3)
    assert key in candidates and table.between(0, 1).all()
    with pytest.raises(AssertionError, match="touched split.test_labels"):
        split.test_labels  # the guard works
    for func in (pseudo_anomaly_images, validation_auroc, select_config):
        assert not {"test", "labels", "test_labels", "split"} & set(inspect.signature(func).parameters)
    assert "test_labels" not in inspect.getsource(selection)


def test_validation_ties_lists_every_candidate_at_the_best_in_order_and_select_config_takes_the_first():
    import pandas as pd

    from tad.selection import validation_ties

    values = pd.Series({"b": 1.0, "a": 0.9, "c": 1.0 - 1e-12, "d": 0.999})
    assert validation_ties(values) == ["b", "c"]
    assert validation_ties(values, tol=0.01) == ["b", "c", "d"]
    assert values.index[int(np.argmax(values.to_numpy()))] == validation_ties(values)[0]  # select_config's rule
    with pytest.raises(ValueError, match="non-empty"):
        validation_ties(pd.Series(dtype=float))


def test_validated_and_tested_models_keep_the_same_axes(monkeypatch):
    """As on the selection page: NPCA 50 % validated on 4/5 of 60 images (48 < d) and tested as `tad.trial.score`
    fits it. With the defaults of both, a fit on the same rows keeps the same principal axes (before, validation
    read the ratio as a share of all dims and kept part of the null space, the test scores the block reading)."""
    import tad.reduce
    import tad.trial

    kept = []
    view = tad.reduce.PrincipalAxes.view
    monkeypatch.setattr(tad.reduce.PrincipalAxes, "view",
                        lambda self, *a, **k: kept.append(view(self, *a, **k)) or kept[-1])
    rng = np.random.default_rng(0)
    train, pseudo = rng.normal(size=(60, 120)), rng.normal(size=(60, 120)) * 1.5
    selection.select_config({"npca": (train, pseudo, "npca", 0.5, "mvg")}, n_folds=5)
    validated = [(v.axes.start, v.axes.stop) for v in kept]
    kept.clear()
    for fit, _ in KFold(5, shuffle=True, random_state=0).split(train):
        tad.trial.score(train[fit], pseudo[:5], "npca", 0.5, "mvg")
    tested = [(v.axes.start, v.axes.stop) for v in kept]
    assert validated == tested == [(46, 120)] * 5  # rank 47 of 48 rows: the null block and one axis more
