"""Tests for tad.trial: one validated configuration, one way from features to rows and scores."""

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import null_space
from sklearn.metrics import roc_auc_score

from tad.estimators import make_estimator
from tad.features import select
from tad.stats import auroc_ci
from tad.trial import CI_METHOD, Trial, layer_names, model_key, resolve_layer, run_trials, score


def features(seed: int = 0, n_train: int = 12, n_test: int = 30, dims=(8, 40)):
    """Fake per-layer pooled features (n, 5 poolings, d) of a 2-layer backbone; layer 2 has n_train < d."""
    rng = np.random.default_rng(seed)
    train = {i + 1: rng.normal(size=(n_train, 5, d)) for i, d in enumerate(dims)}
    labels = np.repeat([0, 1], n_test // 2)
    test = {i + 1: rng.normal(size=(n_test, 5, d)) * np.where(labels[:, None, None], 1.5, 1.0)
            for i, d in enumerate(dims)}
    return train, test, labels


class TwoLayers:
    name, n_layers = "two", 2


@pytest.mark.parametrize(("field", "value", "named"), [
    ("layer", 0, "layer 0"), ("layer", "first", "'first'"), ("pooling", "mean", "'avg'"),
    ("reduction", "ica", "'npca'"), ("basis", "paper", "'block'"), ("estimator", "svm", "'mvg'"),
    ("ratio", 1.5, "(0, 1]")])
def test_trial_rejects_a_bad_field_naming_it_and_the_valid_choices(field, value, named):
    with pytest.raises(ValueError) as info:
        Trial(**{field: value})
    assert field in str(info.value) or "reduction" in str(info.value)
    assert named in str(info.value)


def test_layer_vocabulary_is_numbers_all_and_last_stored_as_strings():
    bb = TwoLayers()
    assert layer_names(bb) == ["1", "2", "all"]
    assert [resolve_layer(bb, x) for x in (1, "2", "last", "all")] == ["1", "2", "2", "all"]
    assert Trial("last").config(bb)["layer"] == Trial(2).config(bb)["layer"] == "2"
    with pytest.raises(ValueError, match=r"1\.\.2"):
        resolve_layer(bb, 3)
    assert Trial(reduction="none", ratio=0.3).ratio is None  # no reduction has no ratio


def test_trial_round_trips_through_its_row():
    t = Trial(7, "max", "pca", 0.2, "rank", "knn5")
    assert Trial.from_row(t.config()) == t


def test_run_trials_equals_a_naive_pipeline_and_stores_the_score_interval(monkeypatch):
    import tad.trial

    monkeypatch.setattr(tad.trial, "select", lambda f, layer, pooling, bb: (
        np.concatenate([f[1][:, 0], f[2][:, 0]], axis=1) if layer == "all" else f[int(layer)][:, 0]))
    train, test, labels = features()
    trials = [Trial("last", "avg", "npca", 0.5, "block", "mvg"), Trial(1, "avg", "none", None, "block", "knn1"),
              Trial("all", "avg", "pca", 0.3, "dims", "knn5")]
    rows, scores = run_trials(train, test, labels, trials, backbone=TwoLayers(), dataset="toy")
    assert list(rows.layer) == ["2", "1", "all"] and list(rows.basis) == ["block", "block", "dims"]
    for t, (_, row), s in zip(trials, rows.iterrows(), scores):
        X = tad.trial.select(train, row.layer, "avg", None)
        Y = tad.trial.select(test, row.layer, "avg", None)
        np.testing.assert_array_equal(s, score(X, Y, t.reduction, t.ratio, t.estimator, basis=t.basis))
        assert row.auroc == pytest.approx(roc_auc_score(labels, s), abs=1e-12)
        assert (row.ci_low, row.ci_high) == pytest.approx(auroc_ci(labels, s), abs=1e-12)
        assert row.ci_method == CI_METHOD and row.d_features == X.shape[1]
    assert rows.kept_start.isna()[1] and rows.kept_stop[0] == 40


def test_npca_ratios_inside_the_null_space_are_one_model_under_block_and_not_under_dims(monkeypatch):
    import tad.trial

    monkeypatch.setattr(tad.trial, "select", lambda f, layer, pooling, bb: f[int(layer)][:, 0])
    train, test, labels = features()  # layer 2: 12 training rows in 40 dims, rank 11, null space of 29
    ratios = (0.1, 0.2, 0.3, 0.4, 0.5)  # round(r * 40) = 4 .. 20, all inside the null space
    block, s_block = run_trials(train, test, labels, [Trial(2, reduction="npca", ratio=r) for r in ratios],
                                backbone=TwoLayers())
    dims, _ = run_trials(train, test, labels, [Trial(2, reduction="npca", ratio=r, basis="dims") for r in ratios],
                         backbone=TwoLayers())
    assert len({model_key(r) for r in block.to_dict("records")}) == 1
    assert len({model_key(r) for r in dims.to_dict("records")}) == 5
    # The one model: every null axis (from scipy, not tad) and the smallest non-null one, 30 axes.
    assert null_space(train[2][:, 0] - train[2][:, 0].mean(0)).shape[1] + 1 == block.d[0] == 30
    assert all(np.array_equal(s, s_block[0]) for s in s_block) and block.auroc.nunique() == 1


def test_model_key_keeps_old_rows_without_kept_axes_apart():
    old = [{"dataset": "a", "layer": "7", "reduction": "npca", "ratio": r, "estimator": "mvg"} for r in (0.1, 0.2)]
    assert model_key(old[0]) != model_key(old[1])
    none = [{"dataset": "a", "layer": "7", "reduction": "none", "ratio": None, "estimator": "mvg", "basis": b}
            for b in ("block", "dims")]
    assert model_key(none[0]) == model_key(none[1])  # no reduction reads no basis


def test_score_uses_the_estimator_on_the_kept_axes():
    train, test, labels = features()
    X, Y = train[1][:, 0], test[1][:, 0]
    expected = make_estimator("knn1").fit(X).score_samples(Y)
    np.testing.assert_allclose(score(X, Y, "none", None, "knn1"), expected)


def test_old_rows_get_the_kept_axes_a_fresh_run_writes(monkeypatch):
    import tad.trial
    from tad.sweep import REDUCTIONS
    from tad.trial import with_model_columns

    monkeypatch.setattr(tad.trial, "select", lambda f, layer, pooling, bb: f[int(layer)][:, 0])
    train, test, labels = features()
    trials = [Trial(lay, reduction=m, ratio=r, basis=b) for lay in (1, 2) for m, r in REDUCTIONS
              for b in ("block", "dims", "rank")]
    fresh, _ = run_trials(train, test, labels, trials, backbone=TwoLayers(), dataset="toy")
    old = fresh.drop(columns=["kept_start", "kept_stop", "d_features"])
    filled = with_model_columns(old)
    pd.testing.assert_frame_equal(filled[["kept_start", "kept_stop", "d_features"]].astype(float),
                                  fresh[["kept_start", "kept_stop", "d_features"]].astype(float))


def test_every_basis_default_in_the_library_is_the_one_reading():
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import tad
    from tad.reduce import DEFAULT_BASIS

    defaults = {}
    for info in pkgutil.iter_modules(tad.__path__):
        if info.name == "__main__":  # importing it runs the CLI
            continue
        module = importlib.import_module(f"tad.{info.name}")
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            targets = [obj] + [m for m in vars(obj).values() if inspect.isfunction(m)] if inspect.isclass(obj) else [obj]
            for target in targets:
                if callable(target):
                    try:
                        params = inspect.signature(target).parameters
                    except (TypeError, ValueError):
                        continue
                    if "basis" in params and params["basis"].default is not inspect.Parameter.empty:
                        defaults[f"{module.__name__}.{getattr(target, '__qualname__', name)}"] = params["basis"].default
            if dataclasses.is_dataclass(obj):
                defaults |= {f"{module.__name__}.{name}.{f.name}": f.default for f in dataclasses.fields(obj)
                             if f.name == "basis" and f.default is not dataclasses.MISSING}
    assert {"tad.selection.select_config", "tad.maps.PatchModel.__init__", "tad.presets.Preset.basis"} <= set(defaults)
    assert {k: v for k, v in defaults.items() if v != DEFAULT_BASIS} == {}
