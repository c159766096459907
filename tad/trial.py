"""A trial: one configuration turned into anomaly scores and a result row, the same way everywhere.

`Trial` is a validated configuration (layer, pooling, reduction, ratio, basis, estimator and its settings)
in one vocabulary: a layer is a number, ``"all"`` (every layer concatenated) or ``"last"`` (resolved to the
backbone's last layer, so ``"last"`` and ``"7"`` are the same trial). `run_trials` turns cached features and
trials into result rows and scores; `score_group` does it for the trials that share one feature matrix,
with one eigen-decomposition for all of them; `score` is one trial on two matrices. The CLI, `tad.sweep`
(which adds only the orchestration of grids), `tad.selection` and `tad.analysis` all call these.

A result row names the reduction reading (``basis``, see `tad.reduce.kept_axes`), carries the recommended
interval (`tad.stats.auroc_ci`, ``ci_method``) and what identifies the fitted model: the kept principal axes
(``kept_start``, ``kept_stop``) of the ``d_features`` columns. Two configurations with the same layer,
pooling, kept axes and estimator are the same model (`model_key`): under the block reading, NPCA 10-50 %
keep the same axes whenever ``round(r d)`` falls inside the training null space.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from tad.backbones import Backbone, load_backbone, parse_layers
from tad.data import load_split
from tad.estimators import ESTIMATORS, make_estimator
from tad.evaluate import auroc
from tad.features import POOLING_CHOICES, Features, select, split_features
from tad.reduce import (BASES, DEFAULT_BASIS, METHODS, PrincipalAxes, check_reduction, kept_axes,
                        warn_basis_dependent)
from tad.stats import score_interval

__all__ = ["CI_METHOD", "LAYER_WORDS", "MODEL_COLUMNS", "Trial", "evaluate_config", "fold_scores", "layer_names",
           "model_key", "resolve_layer", "run_trials", "score", "score_group", "with_model_columns"]

LAYER_WORDS = ("all", "last")  # besides layer numbers 1..n_layers
CI_METHOD = "auroc_ci 95 %"  # the interval every row stores: tad.stats.auroc_ci at level 0.95
# What identifies a fitted model in a result row: two rows equal on these (and on the data) are the same model.
MODEL_COLUMNS = ("backbone", "input_size", "layer", "pooling", "kept_start", "kept_stop", "estimator",
                 "estimator_params")


def layer_names(backbone: Backbone) -> list[str]:
    """Every layer choice of ``backbone`` as rows store it: ``"1"`` .. ``str(n_layers)``, then ``"all"``."""
    return [*map(str, range(1, backbone.n_layers + 1)), "all"]


def resolve_layer(backbone: Backbone, layer: int | str) -> str:
    """A layer choice as rows store it: ``7`` and ``"7"`` -> ``"7"``, ``"last"`` -> ``str(n_layers)``, ``"all"``.

    Raises ValueError naming the valid choices for anything else.
    """
    if layer == "last":
        return str(backbone.n_layers)
    try:
        parse_layers(backbone, layer)
    except ValueError:
        raise ValueError(f"layer {layer!r} not in 1..{backbone.n_layers} or one of {LAYER_WORDS} for "
                         f"{backbone.name}") from None
    return str(layer)


@dataclass(frozen=True)
class Trial:
    """One configuration of the study, validated when made.

    Parameters
    ----------
    layer : int or str
        A layer number, ``"all"`` or ``"last"`` (resolved against the backbone by `Trial.config`).
    pooling : one of `tad.features.POOLING_CHOICES`
    reduction : one of `tad.reduce.METHODS`
    ratio : float in (0, 1], or None for ``reduction="none"``
    basis : one of `tad.reduce.BASES`
        The reduction reading, stated explicitly (default `tad.reduce.DEFAULT_BASIS`).
    estimator : one of `tad.estimators.ESTIMATORS`
    flow_params : mapping, optional
        `tad.estimators.Flow` settings (only the flow has any).

    Raises
    ------
    ValueError
        Naming the field and its valid choices.
    """

    layer: int | str = "last"
    pooling: str = "avg"
    reduction: str = "npca"
    ratio: float | None = 0.5
    basis: str = DEFAULT_BASIS
    estimator: str = "mvg"
    flow_params: Mapping | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        layer = self.layer
        if isinstance(layer, bool) or not (
                (isinstance(layer, int) and layer >= 1) or layer in LAYER_WORDS
                or (isinstance(layer, str) and layer.isdigit() and int(layer) >= 1)):
            raise ValueError(f"layer {layer!r}: expected a layer number >= 1 or one of {LAYER_WORDS}")
        object.__setattr__(self, "layer", str(layer))
        for name, valid in (("pooling", POOLING_CHOICES), ("reduction", METHODS), ("basis", BASES),
                            ("estimator", ESTIMATORS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} {getattr(self, name)!r} not in {tuple(valid)}")
        if self.reduction == "none":
            object.__setattr__(self, "ratio", None)
        check_reduction(self.reduction, self.ratio, self.basis)
        if self.flow_params is not None and not isinstance(self.flow_params, Mapping):
            raise ValueError(f"flow_params {self.flow_params!r}: expected a mapping of tad.estimators.Flow settings")

    @classmethod
    def from_row(cls, row: Mapping) -> Trial:
        """The trial of a result row (or any mapping with its columns); ``basis`` defaults to the default reading."""
        ratio = row.get("ratio")
        ratio = None if ratio is None or (isinstance(ratio, float) and np.isnan(ratio)) else float(ratio)
        params = row.get("estimator_params") or None
        return cls(row["layer"], row.get("pooling", "avg"), row["reduction"], ratio,
                   row.get("basis", DEFAULT_BASIS), row["estimator"], json.loads(params) if params else None)

    def config(self, backbone: Backbone | None = None) -> dict:
        """The row columns of this trial; ``"last"`` resolved (and the layer checked) when ``backbone`` is given."""
        layer = self.layer if backbone is None else resolve_layer(backbone, self.layer)
        params = json.dumps(dict(self.flow_params or {}), sort_keys=True) if self.estimator == "flow" else ""
        return {"layer": layer, "pooling": self.pooling, "reduction": self.reduction, "ratio": self.ratio,
                "basis": self.basis, "estimator": self.estimator, "estimator_params": params}


def score(train: np.ndarray, test: np.ndarray, reduction: str, ratio: float | None, estimator: str,
          *, basis: str = DEFAULT_BASIS, seed: int = 0, flow_params: dict | None = None) -> np.ndarray:
    """Anomaly scores of ``test`` rows after reducing and fitting on ``train`` (good images only).

    Warns (`tad.reduce.NullSpaceWarning`) when the reduction keeps part of the training null space, so the
    scores depend on an arbitrary basis of it (possible with ``basis="dims"`` when n_train <= d).

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
    test : ndarray of shape (n_test, d)
    reduction : {"none", "pca", "npca"}
    ratio : float in (0, 1] or None (for "none")
    estimator : one of `tad.estimators.ESTIMATORS`
    basis : one of `tad.reduce.BASES`
        How the ratio meets the training null space, see `tad.reduce.kept_axes`.

    Returns
    -------
    ndarray of shape (n_test,), higher = more anomalous
    """
    check_reduction(reduction, ratio, basis)
    if reduction != "none":
        axes = PrincipalAxes.fit(train)
        view = axes.view(reduction, ratio, basis)
        warn_basis_dependent([view], f"{estimator} on {len(train)} training rows of {train.shape[1]} features: ")
        train, test = axes.project(train, view), axes.project(test, view)
    return make_estimator(estimator, seed=seed, **(flow_params or {})).fit(train).score_samples(test)


def fold_scores(train: np.ndarray, test: np.ndarray, reduction: str, ratio: float | None, estimator: str,
                *, n_folds: int = 5, basis: str = DEFAULT_BASIS, seed: int = 0,
                flow_params: dict | None = None) -> np.ndarray:
    """Scores of ``test`` from `score` fitted on each of ``n_folds`` disjoint folds of the training rows.

    The training rows are split into ``n_folds`` shuffled folds (`sklearn.model_selection.KFold`, seeded)
    and fit ``i`` sees fold ``i`` only, so no two fits share a training image and each sees about
    ``n_train / n_folds`` of them. Fits on overlapping subsets (e.g. each fold's complement, 60 % shared
    pairwise with 5 folds) would agree partly because they share images, understating how much a result
    depends on which good images were available; disjoint fits are independent given the test set, so
    `tad.stats.mean_sem` of their AUROCs is an honest mean +- SEM (as Rippel et al. report), for a
    training set ``n_folds`` times smaller than the full one.

    Returns
    -------
    ndarray of shape (n_folds, n_test)
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 2 <= n_folds <= len(train):
        raise ValueError(f"n_folds {n_folds!r} must be an int from 2 to the number of training rows ({len(train)})")
    folds = KFold(n_folds, shuffle=True, random_state=seed).split(train)
    return np.stack([score(train[fold], test, reduction, ratio, estimator, basis=basis, seed=seed,
                           flow_params=flow_params) for _, fold in folds])


def score_group(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, configs: Sequence[dict], *, seed: int = 0,
                flow_params: dict | None = None) -> Iterator[dict]:
    """The result rows of trials that share one feature matrix (one data set, layer and pooling).

    One eigen-decomposition and projection serves every PCA/NPCA ratio and basis of the group. Each config
    holds ``reduction``, ``ratio``, ``basis`` and ``estimator`` (``dataset``, ``layer`` and ``pooling``, if
    there, name the group in warnings); its row adds the AUROC and its interval (`tad.stats.auroc_ci`, 95 %:
    ``ci_low``, ``ci_high``, ``ci_method``), sizes (``n_train``, ``n_test``, ``n_anomalous``), the model's
    identity (``d_features`` columns in, principal axes ``kept_start`` to ``kept_stop`` kept, None for no
    reduction; ``d`` the estimator's input dimension), the seconds the trial took, and the training null
    space: ``n_null`` (its dimension, ``d_features`` minus the rank, see `tad.reduce.null_axes`),
    ``n_null_kept`` (kept axes inside it) and ``basis_dependent`` (True when the reduction keeps part of it,
    so the AUROC depends on an arbitrary basis of it; see `tad.analysis.null_basis_spread` for how much).
    One `tad.reduce.NullSpaceWarning` names the group's basis-dependent reductions.
    """
    for row, _ in _group(X, Y, labels, configs, seed=seed, flow_params=flow_params):
        yield row


def run_trials(train: Features, test: Features, labels: np.ndarray, trials: Sequence[Trial], *,
               backbone: Backbone, dataset: str = "", seed: int = 0) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Result rows and test scores of ``trials`` on one data set's cached features.

    Trials sharing a layer and pooling share one feature matrix and one eigen-decomposition (`score_group`).

    Parameters
    ----------
    train, test : Features
        Per-layer pooled features of the good training images and of the test images
        (`tad.features.split_features`).
    labels : ndarray of shape (n_test,)
        1 marks an anomalous test image.
    trials : sequence of Trial
    backbone : Backbone
        The features' backbone (resolves ``"last"`` and ``"all"``).
    dataset : str
        Written into the rows' ``dataset`` column.

    Returns
    -------
    rows : DataFrame
        One row per trial, in the order given (columns of `score_group`, plus ``dataset`` and ``backbone``).
    scores : list of ndarray of shape (n_test,)
        Each trial's anomaly scores, in the same order.
    """
    configs = [{"dataset": dataset, "backbone": backbone.name, **t.config(backbone)} for t in trials]
    order = sorted(range(len(configs)), key=lambda i: (configs[i]["layer"], configs[i]["pooling"]))
    rows, scores = [None] * len(configs), [None] * len(configs)
    for (lay, pool), idx in itertools.groupby(order, key=lambda i: (configs[i]["layer"], configs[i]["pooling"])):
        idx = list(idx)
        X, Y = select(train, lay, pool, backbone), select(test, lay, pool, backbone)
        # one group per estimator settings: the flow's may differ between trials
        by_params = itertools.groupby(sorted(idx, key=lambda i: configs[i]["estimator_params"]),
                                      key=lambda i: configs[i]["estimator_params"])
        for _, part in by_params:
            part = list(part)
            params = dict(trials[part[0]].flow_params or {})
            for i, (row, s) in zip(part, _group(X, Y, labels, [configs[i] for i in part], seed=seed,
                                                flow_params=params)):
                rows[i], scores[i] = row, s
    return pd.DataFrame(rows), scores


def evaluate_config(
    category: str,
    *,
    root: str | Path | None = None,
    backbone: str | Backbone = "tf_efficientnet_lite0",
    layer: int | str = 7,
    pooling: str = "avg",
    reduction: str = "npca",
    ratio: float | None = 0.5,
    basis: str = DEFAULT_BASIS,
    estimator: str = "mvg",
    input_size: int | None = None,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    seed: int = 0,
) -> dict:
    """Image AUROC of one configuration on one category: the whole pipeline in one call.

    Warns (`tad.reduce.NullSpaceWarning`) when the reduction keeps part of the training null space (see
    `score_group`).

    Returns
    -------
    dict
        The row of `score_group` (``auroc``, ``ci_low``, ``ci_high`` (`tad.stats.auroc_ci`, 95 %), the
        configuration, sizes, kept axes, null-space counts) and provenance: ``weights`` (timm tag and
        source), ``data`` (where the images came from), ``input_size``.
    """
    trial = Trial(layer, pooling, reduction, ratio, basis, estimator)
    split = load_split(category, root, seed=seed)
    bb = backbone if isinstance(backbone, Backbone) else load_backbone(backbone)
    trial.config(bb)  # fail before the extraction, not after
    train, test = split_features(split, bb, input_size=input_size, cache_dir=cache_dir, device=device,
                                 batch_size=batch_size)
    rows, _ = run_trials(train, test, split.test_labels, [trial], backbone=bb, dataset=split.name, seed=seed)
    return {**rows.iloc[0].to_dict(), "weights": f"{bb.weights['tag']} ({bb.weights['source']})",
            "data": split.source, "input_size": input_size or bb.input_size}


def with_model_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``d_features``, ``kept_start`` and ``kept_stop`` filled in rows written before rows had them.

    A row's kept axes follow from its reduction, ratio and basis, its null-space dimension ``n_null`` and
    ``d_features`` (`tad.reduce.kept_axes` depends on the spectrum only through ``d`` and the rank); an old
    row's ``d_features`` is the ``d`` of the no-reduction row of the same data set, backbone, input size,
    layer and pooling in ``table``. Rows where that is not there are left as they are (`model_key` keeps them
    apart).
    """
    if table.empty or not {"reduction", "n_null", "d"} <= set(table):
        return table
    table = table.copy()
    for col in ("d_features", "kept_start", "kept_stop"):
        if col not in table:
            table[col] = np.nan
    group = [c for c in ("dataset", "data_key", "backbone", "input_size", "layer", "pooling") if c in table]
    none = table[table.reduction == "none"]
    widths = {tuple(k if isinstance(k, tuple) else (k,)): d for k, d in none.groupby(group, dropna=False).d.first().items()}
    for i, row in table[table.d_features.isna()].iterrows():
        d = widths.get(tuple(row[c] for c in group))
        if d is None or (isinstance(d, float) and np.isnan(d)):
            continue
        d = int(d)
        table.at[i, "d_features"] = d
        if row.reduction != "none":
            spectrum = np.r_[np.ones(d - int(row.n_null)), np.zeros(int(row.n_null))]
            kept = kept_axes(row.reduction, float(row.ratio), spectrum, row.get("basis") or DEFAULT_BASIS)
            table.at[i, "kept_start"], table.at[i, "kept_stop"] = kept.start, kept.stop
    return table


def model_key(row: Mapping) -> tuple:
    """What identifies the fitted model of a result row: its data set and `MODEL_COLUMNS`.

    A PCA/NPCA row without kept axes (written before rows had them) is keyed by its whole configuration
    instead, so it is never merged with another.
    """
    if row.get("reduction") != "none" and _plain(row.get("kept_start")) is None:
        return ("config", *(str(row.get(k, "")) for k in ("dataset", "backbone", "input_size", "layer", "pooling",
                                                         "reduction", "ratio", "basis", "estimator",
                                                         "estimator_params")))
    return ("model", str(row.get("dataset", "")), *(_plain(row.get(k)) for k in MODEL_COLUMNS))


# --- helpers -----------------------------------------------------------------------------------

def _plain(value):
    """A row value as a key part: NaN and None alike, integral numbers as int, anything else as str."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def _group(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, configs: Sequence[dict], *, seed: int,
           flow_params: dict | None) -> Iterator[tuple[dict, np.ndarray]]:
    """(row, scores) of each config of `score_group`."""
    labels = np.asarray(labels)
    axes = PrincipalAxes.fit(X)
    views = [axes.view(c["reduction"], c["ratio"], c.get("basis", DEFAULT_BASIS)) for c in configs]
    if configs:
        where = " ".join(str(configs[0][k]) for k in ("dataset", "layer", "pooling") if configs[0].get(k, "") != "")
        warn_basis_dependent(views, f"{where}: " if where else "")
    proj = (axes.project(X), axes.project(Y)) if any(v.method != "none" for v in views) else None
    n_anomalous = int(np.count_nonzero(labels))
    for config, view in zip(configs, views):
        t0 = time.perf_counter()
        Ztrain, Ztest = (X, Y) if view.method == "none" else (np.ascontiguousarray(proj[0][:, view.axes]),
                                                              np.ascontiguousarray(proj[1][:, view.axes]))
        s = make_estimator(config["estimator"], seed=seed, **(flow_params or {})).fit(Ztrain).score_samples(Ztest)
        a = auroc(labels, s)
        low, high = score_interval(np.array([a]), len(labels) - n_anomalous, n_anomalous)
        none = view.method == "none"
        yield {**config, "basis": view.basis, "auroc": a, "ci_low": float(low[0]), "ci_high": float(high[0]),
               "ci_method": CI_METHOD, "n_train": len(X), "n_test": len(Y), "n_anomalous": n_anomalous,
               "d_features": X.shape[1], "kept_start": None if none else view.axes.start,
               "kept_stop": None if none else view.axes.stop, "d": Ztrain.shape[1], "n_null": view.n_null,
               "n_null_kept": view.n_null_kept, "basis_dependent": view.basis_dependent,
               "seconds": time.perf_counter() - t0}, s
