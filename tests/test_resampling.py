"""Tests for the resampling helpers: tad.evaluate.paired_bootstrap and tad.sweep.fold_scores."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tad.evaluate import bootstrap_ci, paired_bootstrap
from tad.sweep import fold_scores


def labelled_scores(seed: int, n_good: int = 30, n_anom: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_good, bool), np.ones(n_anom, bool)]
    return labels, rng.normal(size=labels.size) + labels


def test_paired_bootstrap_matches_a_brute_force_loop_with_sklearn():
    labels, a = labelled_scores(0)
    b = a + np.random.default_rng(1).normal(scale=0.8, size=a.size)
    diff, low, high = paired_bootstrap(labels, a, b, n_boot=200, seed=3)
    rng = np.random.default_rng(3)
    good, anom = np.flatnonzero(~labels), np.flatnonzero(labels)
    gi = good[rng.integers(0, good.size, size=(200, good.size))]  # documented order: good first
    ai = anom[rng.integers(0, anom.size, size=(200, anom.size))]
    diffs = []
    for g, k in zip(gi, ai):
        idx, y = np.r_[g, k], np.r_[np.zeros(g.size), np.ones(k.size)]
        diffs.append(roc_auc_score(y, a[idx]) - roc_auc_score(y, b[idx]))
    assert diff == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    np.testing.assert_allclose([low, high], np.quantile(diffs, [0.025, 0.975]), rtol=1e-12)


def test_paired_bootstrap_of_identical_scorings_is_exactly_zero():
    labels, a = labelled_scores(2)
    assert paired_bootstrap(labels, a, a.copy()) == (0.0, 0.0, 0.0)


def test_pairing_narrows_the_interval_of_two_correlated_scorings():
    labels, a = labelled_scores(4)
    b = a + np.random.default_rng(5).normal(scale=0.1, size=a.size)
    _, low, high = paired_bootstrap(labels, a, b)
    lo_a, hi_a = bootstrap_ci(labels, a)
    assert high - low < (hi_a - lo_a) / 3


def test_paired_bootstrap_rejects_mismatched_scores():
    labels, a = labelled_scores(6)
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap(labels, a, a[:-1])


def test_fold_scores_fit_each_training_row_in_exactly_one_fold():
    rng = np.random.default_rng(7)
    train = rng.normal(size=(40, 3))
    test = np.concatenate([train, rng.normal(size=(25, 3))])  # the training rows themselves, then new rows
    folds = fold_scores(train, test, "none", None, "knn1", n_folds=5, seed=0)
    assert folds.shape == (5, 65)
    # A training row is at distance 0 from a fit that contains it and only from that one: disjoint folds
    # covering every row mean exactly one zero per training row.
    np.testing.assert_array_equal((folds[:, :40] == 0).sum(axis=0), np.ones(40))
    sizes = [(folds[i, :40] == 0).sum() for i in range(5)]
    assert sizes == [8] * 5  # each fit sees 40 / 5 rows
    # The fits together hold all rows: the nearest over folds is the brute-force 1-NN distance.
    full = np.sqrt(((test[:, None] - train[None]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(folds.min(axis=0), full, rtol=1e-12)


def test_fold_scores_are_reproducible_and_reject_bad_fold_counts():
    rng = np.random.default_rng(8)
    train, test = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    np.testing.assert_array_equal(fold_scores(train, test, "npca", 0.5, "mvg", seed=1),
                                  fold_scores(train, test, "npca", 0.5, "mvg", seed=1))
    with pytest.raises(ValueError, match="n_folds"):
        fold_scores(train, test, "none", None, "mvg", n_folds=1)
