"""Tests for tad.sweep: grids and single configurations equal a naive per-trial pipeline."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import tad.trial
from conftest import make_synthetic_mvtec
from tad.data import load_split
from tad.estimators import ESTIMATORS, make_estimator
from tad.features import POOLING_CHOICES, extract, select
from tad.reduce import Reducer
from tad.features import split_features
from tad.sweep import REDUCTIONS, evaluate_config, run_grid, score

SIZE = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvtec")
    make_synthetic_mvtec(root, n_train=20, n_test_good=5, n_test_defective=5, size=SIZE, seed=1)
    return root, tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def split(data):
    return load_split("synthetic", data[0])


def naive_auroc(X, Y, labels, method, ratio, estimator):
    """A fresh Reducer and estimator per trial, scored with scikit-learn's AUROC."""
    reducer = Reducer(method, ratio).fit(X)
    est = make_estimator(estimator).fit(reducer.transform(X))
    return roc_auc_score(labels, est.score_samples(reducer.transform(Y)))


def test_reductions_are_the_papers_eleven():
    assert REDUCTIONS[0] == ("none", None)
    assert sorted(REDUCTIONS[1:]) == sorted((m, r) for m in ("pca", "npca") for r in (0.1, 0.2, 0.3, 0.4, 0.5))


def test_run_grid_equals_naive_per_trial_pipeline(lite0, data, split, tmp_path):
    _, cache = data
    results = tmp_path / "grid.jsonl"
    table = run_grid([split], lite0, results, layers=[1], poolings=["avg", "max"], reductions=REDUCTIONS,
                     estimators=["mvg", "knn1"], input_size=SIZE, cache_dir=cache, progress=False)
    assert len(table) == 1 * 2 * 11 * 2 == len(results.read_text().splitlines())
    assert not table.duplicated(["pooling", "reduction", "ratio", "estimator"]).any()
    train = extract(lite0, split.train_paths, input_size=SIZE, cache_dir=data[1], progress=False)
    test = extract(lite0, split.test_paths, input_size=SIZE, cache_dir=data[1], progress=False)
    for pooling in ("avg", "max"):
        X, Y = select(train, 1, pooling, lite0), select(test, 1, pooling, lite0)
        assert X.shape == (20, 16)  # n > d: every reduction is well posed
        for method, ratio in REDUCTIONS:
            for est in ("mvg", "knn1"):
                row = table[(table.pooling == pooling) & (table.reduction == method) & (table.estimator == est)
                            & ((table.ratio == ratio) if ratio else table.ratio.isna())]
                assert len(row) == 1
                expected = naive_auroc(X, Y, split.test_labels, method, ratio, est)
                assert row.auroc.iloc[0] == pytest.approx(expected, abs=1e-12), (pooling, method, ratio, est)
                assert row.d.iloc[0] == (16 if method == "none" else round(16 * ratio))
    # A second run finds every trial done and adds nothing.
    again = run_grid([split], lite0, results, layers=[1], poolings=["avg", "max"], estimators=["mvg", "knn1"],
                     input_size=SIZE, cache_dir=cache, progress=False)
    assert len(results.read_text().splitlines()) == 44
    pd.testing.assert_frame_equal(again, table)


def test_score_equals_naive_pipeline(lite0, data, split):
    train, test = split_features(split, lite0, input_size=SIZE, cache_dir=data[1], progress=False)
    X, Y = select(train, 2, "min+avg", lite0), select(test, 2, "min+avg", lite0)
    reducer = Reducer("npca", 0.3).fit(X)
    expected = make_estimator("knn5").fit(reducer.transform(X)).score_samples(reducer.transform(Y))
    np.testing.assert_allclose(score(X, Y, "npca", 0.3, "knn5"), expected, rtol=1e-9)


def test_evaluate_config_end_to_end(lite0, data, split):
    root, cache = data
    out = evaluate_config("synthetic", root=root, backbone=lite0, layer=1, pooling="avg", reduction="npca",
                          ratio=0.5, estimator="mvg", input_size=SIZE, cache_dir=cache)
    train = extract(lite0, split.train_paths, input_size=SIZE, cache_dir=data[1], progress=False)
    test = extract(lite0, split.test_paths, input_size=SIZE, cache_dir=data[1], progress=False)
    expected = naive_auroc(select(train, 1, "avg", lite0), select(test, 1, "avg", lite0), split.test_labels,
                           "npca", 0.5, "mvg")
    assert out["auroc"] == pytest.approx(expected, abs=1e-12)
    assert out["ci_low"] <= out["auroc"] <= out["ci_high"]
    assert out["dataset"] == "synthetic" and out["input_size"] == SIZE
    assert "tf_efficientnet_lite0" in out["weights"]
    json.dumps(out)  # a plain, serialisable record


INVALID = [
    ({"pooling": "mean"}, ("mean", *POOLING_CHOICES)),
    ({"estimator": "svm"}, ("svm", *ESTIMATORS)),
    ({"ratio": 1.5}, ("1.5", "(0, 1]")),
    ({"reduction": "ica"}, ("ica", "npca")),
    ({"layer": 9}, ("9", "1..7")),
]


@pytest.mark.parametrize(("bad", "named"), INVALID)
def test_evaluate_config_rejects_invalid_choice_before_extracting(lite0, data, monkeypatch, bad, named):
    def no_extraction(*args, **kwargs):
        raise AssertionError("features extracted before the choices were checked")

    monkeypatch.setattr(tad.trial, "split_features", no_extraction)
    kw = dict(root=data[0], backbone=lite0, layer=1, pooling="avg", reduction="npca", ratio=0.5, estimator="mvg")
    with pytest.raises(ValueError) as info:
        evaluate_config("synthetic", **{**kw, **bad})
    assert all(word in str(info.value) for word in named)


@pytest.mark.parametrize(("bad", "named"), INVALID)
def test_run_grid_rejects_invalid_choice_before_writing(lite0, split, tmp_path, bad, named):
    kw = dict(layers=[bad.get("layer", 1)], poolings=[bad.get("pooling", "avg")],
              reductions=[(bad.get("reduction", "npca"), bad.get("ratio", 0.5))],
              estimators=[bad.get("estimator", "mvg")])
    with pytest.raises(ValueError) as info:
        run_grid([split], lite0, tmp_path / "r.jsonl", progress=False, **kw)
    assert all(word in str(info.value) for word in named)
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize(("reduction", "ratio"), [("pca", None), ("npca", 0), ("pca", "0.5"), ("npca", True)])
def test_score_rejects_bad_ratio(reduction, ratio):
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="r in \\(0, 1\\]"):
        score(X, X, reduction, ratio, "mvg")


def test_changed_data_gets_new_rows_and_leaves_old_rows(lite0, data, tmp_path):
    import shutil

    from PIL import Image

    root = tmp_path / "copy"
    shutil.copytree(data[0], root)
    results = tmp_path / "r.jsonl"
    kw = dict(layers=[1], reductions=[("none", None)], estimators=["knn1"], input_size=SIZE, cache_dir=data[1], progress=False)
    old = run_grid([load_split("synthetic", root)], lite0, results, **kw)
    old_lines = results.read_text().splitlines()
    image = load_split("synthetic", root).test_paths[0]
    Image.open(image).convert("RGB").rotate(90).save(image)  # one test image changed in place
    new = run_grid([load_split("synthetic", root)], lite0, results, **kw)
    lines = results.read_text().splitlines()
    assert lines[:1] == old_lines and len(lines) == 2  # old row untouched, one new row
    assert len(new) == 1 and new.data_key.iloc[0] != old.data_key.iloc[0]
    train = extract(lite0, load_split("synthetic", root).train_paths, input_size=SIZE, progress=False)
    test = extract(lite0, load_split("synthetic", root).test_paths, input_size=SIZE, progress=False)
    s = make_estimator("knn1").fit(select(train, 1, "avg", lite0)).score_samples(select(test, 1, "avg", lite0))
    assert new.auroc.iloc[0] == pytest.approx(roc_auc_score(load_split("synthetic", root).test_labels, s), abs=1e-12)


def test_rows_written_before_the_score_interval_are_read_with_it_and_their_kept_axes(lite0, data, split, tmp_path):
    from tad.stats import auroc_ci

    results = tmp_path / "r.jsonl"
    kw = dict(layers=[2], reductions=REDUCTIONS, estimators=["mvg"], input_size=SIZE, cache_dir=data[1],
              progress=False)
    fresh = run_grid([split], lite0, results, **kw)
    old = [json.loads(line) for line in results.read_text().splitlines()]
    for row in old:  # as rows were written before: bootstrap bounds, no kept axes, no interval name
        row.update(ci_low=0.0, ci_high=1.0)
        for col in ("ci_method", "kept_start", "kept_stop", "d_features", "n_anomalous"):
            row.pop(col)
    results.write_text("".join(json.dumps(r) + "\n" for r in old))
    read = run_grid([split], lite0, results, **kw)
    assert len(results.read_text().splitlines()) == len(old)  # nothing recomputed
    train, test = split_features(split, lite0, input_size=SIZE, cache_dir=data[1], progress=False)
    X, Y = select(train, 2, "avg", lite0), select(test, 2, "avg", lite0)
    for r in read.itertuples():
        s = score(X, Y, r.reduction, None if r.reduction == "none" else r.ratio, "mvg")
        assert (r.ci_low, r.ci_high) == pytest.approx(auroc_ci(split.test_labels, s), abs=1e-12)
    cols = ["kept_start", "kept_stop", "d_features"]
    pd.testing.assert_frame_equal(read[cols].astype(float), fresh[cols].astype(float))
