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
from tad.selection import (aurocs, conformal_points, pseudo_anomaly_images, select_config,
                           split_half_optimism, validate_grid)


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


def smallest_axes(fit: np.ndarray, k: int) -> np.ndarray:
    """Brute force: the k directions of least sample variance of ``fit`` as columns (numpy's eigh of np.cov)."""
    values, vectors = np.linalg.eigh(np.cov(fit, rowvar=False))
    return vectors[:, np.argsort(values)[:k]]


def test_validate_grid_fits_on_every_training_row_outside_the_held_fold():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(30, 4)) * [3.0, 2.0, 1.0, 0.5]
    rows = np.array([2, 5, 7, 11, 13, 17, 19, 23, 29])
    pseudo = train[rows] + rng.normal(scale=0.8, size=(rows.size, 4))
    expected = {"none": [], "npca": []}
    for _, held in KFold(3, shuffle=True, random_state=2).split(rows):  # documented split, of the rows
        fit = np.array([i for i in range(30) if i not in set(rows[held])])
        assert fit.size == 27
        expected["none"].append(pairwise_auroc(nn_distance(train[fit], train[rows[held]]),
                                               nn_distance(train[fit], pseudo[held])))
        axes = smallest_axes(train[fit], 2)  # NPCA 50 % of 4: the 2 smallest-variance axes, no null space here
        expected["npca"].append(pairwise_auroc(nn_distance(train[fit] @ axes, train[rows[held]] @ axes),
                                               nn_distance(train[fit] @ axes, pseudo[held] @ axes)))
    got = validate_grid(train, pseudo, rows, [("none", None, "knn1"), ("npca", 0.5, "knn1")], n_folds=3, seed=2)
    assert got.validation.tolist() == pytest.approx([np.mean(expected["none"]), np.mean(expected["npca"])])
    assert got.well_defined.all() and got.model.tolist() == [0, 1]
    assert (got.kept_start[1], got.kept_stop[1]) == (2, 4)


@pytest.mark.filterwarnings("error::tad.reduce.NullSpaceWarning")
def test_validate_grid_merges_same_axes_and_drops_readings_that_change_between_validation_and_test():
    # d = 40, 30 training rows: the final fit has rank 29 (null space 11), each validation fit (3 folds of 15
    # rows, 25 rows fitted) rank 24 (null space 16). NPCA r keeps k = round(40 r) axes; the block reading keeps
    # the whole null space plus one axis wherever k <= null space (tad.reduce.kept_axes), the literal ones else.
    rng = np.random.default_rng(4)
    train = rng.normal(size=(30, 40))
    rows = np.arange(0, 30, 2)
    pseudo = train[rows] + 2.0
    configs = [("npca", 0.1, "knn1"),  # k 4: block at every fit -> (28, 40) finally
               ("npca", 0.2, "knn1"),  # k 8: block at every fit too: the same model as 0.1
               ("npca", 0.3, "knn1"),  # k 12: block in validation (12 <= 16), literal at test (12 > 11): dropped
               ("npca", 0.5, "knn1"),  # k 20: literal everywhere -> (20, 40)
               ("pca", 0.5, "knn1"),   # k 20 <= rank 24: literal everywhere -> (0, 20)
               ("pca", 0.7, "knn1"),   # k 28: past the folds' rank 24 (block stops there), within 29: dropped
               ("npca", 0.2, "mvg"),   # the block model of 0.1/0.2, another estimator: its own model
               ("none", None, "knn1")]
    got = validate_grid(train, pseudo, rows, configs, n_folds=3)
    assert got.well_defined.tolist() == [True, True, False, True, True, False, True, True]
    assert got.model.tolist() == [0, 0, -1, 3, 4, -1, 6, 7]
    assert list(zip(got.kept_start, got.kept_stop))[:2] == [(28, 40), (28, 40)]
    assert (got.kept_start[3], got.kept_stop[3], got.kept_start[4], got.kept_stop[4]) == (20, 40, 0, 20)
    assert got.validation[0] == got.validation[1] and got.validation[[2, 5]].isna().all()
    assert got.validation.drop([2, 5]).notna().all()


def test_select_config_picks_the_configuration_that_separates_pseudo_anomalies():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(40, 5))
    rows = np.arange(0, 40, 2)
    weak, strong = train[rows] + rng.normal(scale=0.05, size=(20, 5)), train[rows] + 3.0
    chosen, table = select_config({"weak": (train, weak), "strong": (train, strong)}, rows,
                                  [("none", None, "knn1"), ("none", None, "mvg")])
    assert table.layer.tolist() == ["weak", "weak", "strong", "strong"]
    assert table.model.tolist() == [0, 1, 2, 3]  # ids unique over the layers
    assert chosen == 2  # the first of the strong layer's (both separate perfectly)
    assert table.validation[2] == pytest.approx(1.0) and table.validation[0] < 0.9


def test_aurocs_of_many_models_match_pairwise_counting_with_ties():
    rng = np.random.default_rng(5)
    labels = np.r_[np.zeros(7), np.ones(5)]
    scores = rng.integers(0, 4, size=(6, 12)).astype(float)  # many ties
    expected = [pairwise_auroc(s[labels == 0], s[labels == 1]) for s in scores]
    np.testing.assert_allclose(aurocs(labels, scores), expected, rtol=1e-12)


def test_split_half_optimism_is_the_winners_curse_of_noise_and_zero_for_a_clear_winner():
    rng = np.random.default_rng(8)
    labels = np.r_[np.zeros(40), np.ones(40)]
    noise = rng.normal(size=(50, 80))  # 50 models of no skill: true AUROC 0.5 each
    got = split_half_optimism(labels, noise, n_splits=100, seed=1)
    # Out of sample the chosen model is one of no skill: chance, within 4 standard errors of the mean over
    # splits (one half's AUROC has sd sqrt((n0 + n1 + 1) / (12 n0 n1)) = 0.092 at 20 + 20 images).
    assert abs(got.out_of_sample.mean() - 0.5) < 4 * 0.092 / np.sqrt(10)  # splits overlap: 10 as a floor
    assert got.in_sample.mean() > 0.65  # the best of 50 noisy halves is far above chance
    np.testing.assert_allclose(got.optimism, got.in_sample - got.out_of_sample)
    perfect = np.vstack([noise[:3], labels + rng.normal(scale=0.01, size=80)])  # one model separates all
    clear = split_half_optimism(labels, perfect, n_splits=20)
    assert (clear.chosen == 3).all() and (clear.optimism == 0).all()


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
    pseudo = pseudo_anomaly_images(split.train_paths, tmp_path / "pseudo", seed=0)
    features = {cells: (grid_features(split.train_paths, cells), grid_features(pseudo, cells)) for cells in (1, 4)}
    chosen, table = select_config(features, np.arange(15), [("none", None, "knn1"), ("none", None, "mvg")],
                                  n_folds=3)
    assert chosen in table.index and table.validation.between(0, 1).all()
    with pytest.raises(AssertionError, match="touched split.test_labels"):
        split.test_labels  # the guard works
    for func in (pseudo_anomaly_images, validate_grid, select_config):
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
    """As on the selection page: NPCA 50 % of d = 120 validated on 48 of 60 training rows per fold and tested on
    all 60, each fit as `tad.trial.score` fits the same rows; both keep the null block and one axis more, and the
    table's kept axes are the final fit's."""
    import tad.reduce
    import tad.trial

    kept = []
    view = tad.reduce.PrincipalAxes.view
    monkeypatch.setattr(tad.reduce.PrincipalAxes, "view",
                        lambda self, *a, **k: kept.append(view(self, *a, **k)) or kept[-1])
    rng = np.random.default_rng(0)
    train, pseudo = rng.normal(size=(60, 120)), rng.normal(size=(60, 120)) * 1.5
    _, table = selection.select_config({"7": (train, pseudo)}, np.arange(60), [("npca", 0.5, "mvg")], n_folds=5)
    validated = [(v.axes.start, v.axes.stop) for v in kept]
    kept.clear()
    for _, held in KFold(5, shuffle=True, random_state=0).split(np.arange(60)):
        tad.trial.score(np.delete(train, held, axis=0), pseudo[:5], "npca", 0.5, "mvg")
    tad.trial.score(train, pseudo[:5], "npca", 0.5, "mvg")
    tested = [(v.axes.start, v.axes.stop) for v in kept]
    assert validated == tested == [(46, 120)] * 5 + [(58, 120)]  # rank 47 of 48 rows, 59 of 60
    assert (table.kept_start[0], table.kept_stop[0], table.well_defined[0]) == (58, 120, True)
