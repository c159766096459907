"""Trials of the study: one configuration to one image AUROC, and resumable grids of them.

`evaluate_config` is the one call from a data folder to an AUROC. `run_grid` runs many trials on cached
features, computing each principal-axis decomposition once and slicing it for every PCA/NPCA ratio; its
rows are appended to a JSON-lines file as they finish, so a killed grid resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from tqdm import tqdm

from tad.backbones import Backbone, load_backbone, parse_layers
from tad.data import Split, load_split
from tad.estimators import ESTIMATORS, make_estimator
from tad.evaluate import auroc, bootstrap_ci
from tad.features import POOLING_CHOICES, Features, extract, select
from tad.reduce import BASES, DEFAULT_BASIS, PrincipalAxes, check_reduction, warn_basis_dependent

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)
# The paper's 11 reductions: PCA and NPCA at 10-50 %, and none.
REDUCTIONS: tuple[tuple[str, float | None], ...] = (
    (("none", None),) + tuple(("pca", r) for r in RATIOS) + tuple(("npca", r) for r in RATIOS)
)
KEY = ("dataset", "backbone", "input_size", "layer", "pooling", "reduction", "ratio", "basis",
       "estimator", "estimator_params", "noise_std", "n_augment", "seed")


def split_features(
    split: Split,
    backbone: Backbone,
    *,
    input_size: int | None = None,
    noise_std: float = 0.0,
    n_augment: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[Features, Features]:
    """Features of a split's training and test images.

    With ``n_augment > 0`` the training set is the clean images plus ``n_augment`` noisy copies of each
    (Gaussian noise of standard deviation ``noise_std`` on the [0, 1] image, a different draw per copy);
    test images are never augmented.
    """
    if n_augment and not noise_std:
        raise ValueError(f"n_augment={n_augment} needs noise_std > 0")
    kw = dict(input_size=input_size, cache_dir=cache_dir, device=device, batch_size=batch_size, progress=progress)
    train = extract(backbone, split.train_paths, **kw)
    copies = [extract(backbone, split.train_paths, noise_std=noise_std, noise_seed=c, **kw)
              for c in range(1, n_augment + 1)]
    if copies:
        train = {k: np.concatenate([train[k]] + [c[k] for c in copies]) for k in train}
    return train, extract(backbone, split.test_paths, **kw)


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
                *, n_folds: int = 5, basis: str = "dims", seed: int = 0,
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
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Image AUROC of one configuration on one category: the whole pipeline in one call.

    Warns (`tad.reduce.NullSpaceWarning`) when the reduction keeps part of the training null space (see
    `score_group`).

    Returns
    -------
    dict
        The row of `score_group` (``auroc``, ``ci_low``, ``ci_high`` (bootstrap, 95 %), the configuration,
        sizes, null-space counts) and provenance: ``weights`` (timm tag and source), ``data`` (where the
        images came from), ``input_size``.
    """
    _check_choices("pooling", [pooling], POOLING_CHOICES)
    _check_choices("estimator", [estimator], ESTIMATORS)
    check_reduction(reduction, ratio, basis)
    split = load_split(category, root, seed=seed)
    bb = backbone if isinstance(backbone, Backbone) else load_backbone(backbone)
    parse_layers(bb, layer)  # fail before the extraction, not after
    train, test = split_features(split, bb, input_size=input_size, cache_dir=cache_dir, device=device)
    X, Y = select(train, layer, pooling, bb), select(test, layer, pooling, bb)
    config = {"dataset": split.name, "backbone": bb.name, "layer": str(layer), "pooling": pooling,
              "reduction": reduction, "ratio": ratio, "basis": basis, "estimator": estimator}
    row = next(score_group(X, Y, split.test_labels, [config], n_boot=n_boot, seed=seed))
    return {**row, "weights": f"{bb.weights['tag']} ({bb.weights['source']})", "data": split.source,
            "input_size": input_size or bb.input_size}


def run_grid(
    splits: Sequence[Split],
    backbone: Backbone,
    results: str | Path,
    *,
    layers: Sequence[int | str] | None = None,
    poolings: Sequence[str] = ("avg",),
    reductions: Sequence[tuple[str, float | None]] = REDUCTIONS,
    estimators: Sequence[str] = ESTIMATORS,
    basis: str = "dims",
    input_size: int | None = None,
    noise_std: float = 0.0,
    n_augment: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    n_boot: int = 1000,
    seed: int = 0,
    flow_params: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every combination of the given choices on every split; resumable.

    Each finished trial is appended as one JSON line to ``results`` (flushed at once, fsynced after each
    layer and pooling). Trials already there are skipped, and a line cut short by a kill is dropped, so a
    grid killed at any moment and started again ends with exactly one row per trial.

    Parameters
    ----------
    splits : sequence of Split
    backbone : Backbone
    results : path
        JSON-lines file of results; created if missing.
    layers : sequence of int or "all", optional
        Default every layer of the backbone and ``"all"``.
    poolings, reductions, estimators, basis
        The choices to cross; see `POOLING_CHOICES`, `REDUCTIONS`, `ESTIMATORS`, `tad.reduce.BASES`.
    input_size, noise_std, n_augment, cache_dir, device
        Feature extraction, see `split_features`.
    n_boot : int
        Bootstrap resamples for each trial's confidence interval.
    flow_params : dict, optional
        Passed to `tad.estimators.Flow`.

    Returns
    -------
    DataFrame
        One row per trial of this grid (computed now or found in ``results``), none of other grids.
    """
    layers = list(layers) if layers is not None else [*range(1, backbone.n_layers + 1), "all"]
    for lay in layers:
        parse_layers(backbone, lay)
    _check_choices("pooling", poolings, POOLING_CHOICES)
    _check_choices("estimator", estimators, ESTIMATORS)
    _check_choices("basis", [basis], BASES)
    for method, ratio in reductions:
        _check_reduction(method, ratio)
    results = Path(results)
    done = {_key(r) for r in _read_rows(results)}
    size = input_size or backbone.input_size
    base = {"backbone": backbone.name, "input_size": size, "basis": basis, "noise_std": float(noise_std),
            "n_augment": n_augment, "seed": seed,
            "weights": f"{backbone.weights['tag']} ({backbone.weights['source']})"}
    total = len(splits) * len(layers) * len(poolings) * len(reductions) * len(estimators)
    bar = tqdm(total=total, desc=f"grid {backbone.name}", disable=not progress, unit="trial")
    wanted = set()
    with open(results, "a") as out:
        for split in splits:
            configs = [{**base, "dataset": split.name, "layer": str(lay), "pooling": pool, "reduction": method,
                        "ratio": ratio, "estimator": est, "estimator_params": _params(est, flow_params)}
                       for lay, pool, (method, ratio), est
                       in itertools.product(layers, poolings, reductions, estimators)]
            wanted.update(_key(c) for c in configs)
            todo = [c for c in configs if _key(c) not in done]
            bar.update(total // len(splits) - len(todo))
            if not todo:
                continue
            train, test = split_features(split, backbone, input_size=input_size, noise_std=noise_std,
                                         n_augment=n_augment, cache_dir=cache_dir, device=device,
                                         progress=progress)
            labels = split.test_labels
            for (lay, pool), group in itertools.groupby(todo, key=lambda c: (c["layer"], c["pooling"])):
                X, Y = select(train, lay, pool, backbone), select(test, lay, pool, backbone)
                for row in score_group(X, Y, labels, list(group), n_boot=n_boot, seed=seed,
                                       flow_params=flow_params):
                    out.write(json.dumps(row) + "\n")
                    out.flush()  # in the OS now: a killed process loses nothing
                    bar.update()
                os.fsync(out.fileno())  # on disk, once per layer and pooling: survives a power cut too
    bar.close()
    return pd.DataFrame([r for r in _read_rows(results) if _key(r) in wanted])


def score_group(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, configs: Sequence[dict], *,
                n_boot: int = 1000, seed: int = 0, flow_params: dict | None = None) -> Iterator[dict]:
    """The result rows of trials that share one feature matrix (one data set, layer and pooling).

    One eigen-decomposition and projection serves every PCA/NPCA ratio and basis of the group. Each config
    holds ``reduction``, ``ratio``, ``basis`` and ``estimator`` (``dataset``, ``layer`` and ``pooling``, if
    there, name the group in warnings); its row adds the AUROC, its interval, sizes, the seconds the trial
    took, and the training null space: ``n_null`` (its dimension, ``d`` minus the rank, see
    `tad.reduce.null_axes`), ``n_null_kept`` (kept axes inside it) and ``basis_dependent`` (True when the
    reduction keeps part of it, so the AUROC depends on an arbitrary basis of it; see
    `tad.analysis.null_basis_spread` for how much). One `tad.reduce.NullSpaceWarning` names the group's
    basis-dependent reductions.
    """
    axes = PrincipalAxes.fit(X)
    views = [axes.view(c["reduction"], c["ratio"], c["basis"]) for c in configs]
    if configs:
        where = " ".join(str(configs[0][k]) for k in ("dataset", "layer", "pooling") if k in configs[0])
        warn_basis_dependent(views, f"{where}: " if where else "")
    proj = (axes.project(X), axes.project(Y)) if any(v.method != "none" for v in views) else None
    for config, view in zip(configs, views):
        t0 = time.perf_counter()
        Ztrain, Ztest = (X, Y) if view.method == "none" else (np.ascontiguousarray(proj[0][:, view.axes]),
                                                              np.ascontiguousarray(proj[1][:, view.axes]))
        s = make_estimator(config["estimator"], seed=seed, **(flow_params or {})).fit(Ztrain).score_samples(Ztest)
        lo, hi = bootstrap_ci(labels, s, n_boot=n_boot, seed=seed)
        yield {**config, "auroc": auroc(labels, s), "ci_low": lo, "ci_high": hi, "n_train": len(X),
               "n_test": len(Y), "d": Ztrain.shape[1], "n_null": view.n_null, "n_null_kept": view.n_null_kept,
               "basis_dependent": view.basis_dependent, "seconds": time.perf_counter() - t0}


def read_results(results: str | Path) -> pd.DataFrame:
    """All rows of a results file as a tidy table (one row per trial)."""
    return pd.DataFrame(_read_rows(Path(results)))


# --- helpers -----------------------------------------------------------------------------------

_check_reduction = check_reduction  # run_grid's name for it, until run_grid calls check_reduction


def _params(estimator: str, flow_params: dict | None) -> str:
    """The estimator settings that change its scores, as a key part: the flow's; none for the others."""
    return json.dumps(flow_params or {}, sort_keys=True) if estimator == "flow" else ""


def _key(row: dict) -> tuple:
    ratio = row["ratio"]
    return tuple(row.get(k, "") if k != "ratio" else (None if ratio is None or
                 (isinstance(ratio, float) and math.isnan(ratio)) else round(ratio, 6)) for k in KEY)


def _read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines results file; a last line cut short by a kill is dropped from the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    good_end = data.rfind(b"\n") + 1
    if good_end < len(data):  # partial last line: cut it off so appends start on a fresh line
        with open(path, "r+b") as f:
            f.truncate(good_end)
    rows = []
    for i, line in enumerate(data[:good_end].splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"results file {path} line {i} is not valid JSON: {err}") from err
    return rows


def _check_choices(name: str, given: Iterable[str], valid: Sequence[str]) -> None:
    for g in given:
        if g not in valid:
            raise ValueError(f"{name} {g!r} not in {tuple(valid)}")
