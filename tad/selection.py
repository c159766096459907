"""Choices made from the good training images alone: a configuration, and an alarm threshold.

Pseudo-anomalous images are made from training images (`pseudo_anomaly_images`); every configuration of a
grid is validated by how well it separates held-out good training images from pseudo-anomalies made from
those same held-out images, fitted on all the other training images (`validate_grid`), and the best is
chosen (`select_config`); `split_half_optimism` measures what choosing the best on the test set itself would
overstate. An alarm threshold is set split-conformally on good training images held out from the very model
that is thresholded (`conformal_points`, with `tad.calibrate`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image
from scipy.stats import rankdata
from sklearn.model_selection import KFold

from tad.calibrate import calibration_split, conformal_rank, conformal_threshold
from tad.data import load_image
from tad.evaluate import auroc
from tad.estimators import make_estimator
from tad.reduce import DEFAULT_BASIS, PrincipalAxes, check_reduction, kept_axes
from tad.trial import score

__all__ = ["pseudo_anomaly_images", "validate_grid", "select_config", "validation_ties", "aurocs",
           "split_half_optimism", "ConformalPoints", "conformal_points"]


def pseudo_anomaly_images(paths: Sequence[str | Path], out_dir: str | Path | None = None, *, seed: int = 0,
                          area: tuple[float, float] = (0.02, 0.15),
                          aspect: tuple[float, float] = (0.3, 3.3)) -> list[Path]:
    """One CutPaste-style pseudo-anomalous copy of each image, written as lossless PNG.

    As in CutPaste (Li et al., CVPR 2021) without its colour jitter: a rectangle covering a fraction
    ``area`` of the image (uniform in that range) with width/height ratio log-uniform in ``aspect`` is
    cut from a random place and pasted, unchanged, at another random place of the same image. The result
    is a local structural irregularity made of the object's own texture and colours, a stand-in for a
    defect that needs no defect example. PNG (never JPEG) so the only change from the source is the
    pasted rectangle.

    Parameters
    ----------
    paths : sequence of path, shape (n,)
        Good training images (read with `tad.data.load_image`, so RGB).
    out_dir : path, optional
        Folder to write into (created); default a new temporary folder, which the caller removes.
    seed : int
        Seed of ``numpy.random.default_rng``; image ``i`` uses the ``i``-th draw, so reproducible.
    area, aspect : (low, high)
        Ranges of the patch's area fraction and width/height ratio.

    Returns
    -------
    list of Path, shape (n,)
        ``out_dir / f"{i:05d}_{stem}.png"``, in the order of ``paths``; feed to `tad.features.extract`.
    """
    if not 0 < area[0] <= area[1] < 0.5:
        raise ValueError(f"area {area!r} must satisfy 0 < low <= high < 0.5")
    if not 0 < aspect[0] <= aspect[1]:
        raise ValueError(f"aspect {aspect!r} must satisfy 0 < low <= high")
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="tad_pseudo_"))
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for i, path in enumerate(paths):
        image = np.asarray(load_image(path)).copy()
        h, w = image.shape[:2]
        frac, ratio = rng.uniform(*area), np.exp(rng.uniform(*np.log(aspect)))
        ph = int(np.clip(round(np.sqrt(frac * h * w / ratio)), 1, h // 2))
        pw = int(np.clip(round(np.sqrt(frac * h * w * ratio)), 1, w // 2))
        (sy, ty), (sx, tx) = rng.integers(0, h - ph + 1, 2), rng.integers(0, w - pw + 1, 2)
        while (sy, sx) == (ty, tx):  # a patch pasted onto itself would leave the image unchanged
            ty, tx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
        image[ty:ty + ph, tx:tx + pw] = image[sy:sy + ph, sx:sx + pw].copy()
        target = out / f"{i:05d}_{Path(path).stem}.png"
        Image.fromarray(image).save(target, format="PNG")
        written.append(target)
    return written


def validate_grid(train: np.ndarray, pseudo: np.ndarray, rows: np.ndarray,
                  configs: Sequence[tuple[str, float | None, str]], *, n_folds: int = 5,
                  basis: str = DEFAULT_BASIS, seed: int = 0, flow_params: dict | None = None) -> pd.DataFrame:
    """Nested validation of every configuration on one feature matrix, each distinct model scored once.

    The rows ``rows`` (good training images that have a pseudo-anomaly) are split into ``n_folds`` shuffled
    folds (`KFold`, seeded). For fold ``k`` each configuration is fitted on every training row outside fold
    ``k`` and scores fold ``k``'s rows (good) against the pseudo-anomalies made from them, so a fit has seen
    neither those images nor the images their pseudo-anomalies were made from, and fits on nearly as many
    images as the final fit on all training rows. The validation AUROC is the mean over the folds.

    A configuration is *well defined* when no fit (the validation fits and the final one) keeps part of the
    training null space (a basis-dependent view, `tad.reduce.View`), and the reading ``basis`` keeps the same
    axes as the paper's literal reading ("dims") at every fit or at none of them: otherwise validation would
    score one model (e.g. the null block kept whole where the fold's null space is larger) and the test
    another. Configurations keeping the same axes of this matrix at every fit, with the same estimator, are
    one model (as `tad.trial.model_key` merges result rows): each model is validated once.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Features of every good training image.
    pseudo : ndarray of shape (m, d)
        ``pseudo[i]``: features of the pseudo-anomaly made from training image ``rows[i]``.
    rows : ndarray of int, shape (m,)
        Distinct indices into ``train``.
    configs : sequence of (reduction, ratio, estimator)
    n_folds, basis, seed, flow_params
        Folds, and the configuration settings as in `tad.trial.score`.

    Returns
    -------
    DataFrame
        One row per configuration, in the given order: ``reduction``, ``ratio``, ``estimator``, ``kept_start``
        and ``kept_stop`` (axes kept by the final fit on all training rows; None without reduction),
        ``well_defined``, ``model`` (position of the first configuration of the same model; -1 when not well
        defined) and ``validation`` (its model's mean AUROC; NaN when not well defined).
    """
    rows = np.asarray(rows)
    if pseudo.shape != (len(rows), train.shape[1]) or len(np.unique(rows)) != len(rows):
        raise ValueError(f"pseudo has shape {pseudo.shape} for {len(rows)} rows ({len(np.unique(rows))} distinct); "
                         f"expected one row of {train.shape[1]} features per distinct training row")
    folds = [(np.setdiff1d(np.arange(len(train)), rows[held]), held) for _, held in _folds(rows, n_folds, seed)]
    fits = [PrincipalAxes.fit(train[fit]) for fit, _ in folds] + [PrincipalAxes.fit(train)]
    table, identities = [], {}
    for i, (reduction, ratio, estimator) in enumerate(configs):
        check_reduction(reduction, ratio, basis)
        views = [axes.view(reduction, ratio, basis) for axes in fits]
        literal = [kept_axes(reduction, ratio, axes.eigenvalues, "dims") == v.axes for axes, v in zip(fits, views)]
        defined = not any(v.basis_dependent for v in views) and len(set(literal)) == 1
        identity = (estimator, *((v.axes.start, v.axes.stop) for v in views))
        model = identities.setdefault(identity, i) if defined else -1
        none = reduction == "none"
        table.append({"reduction": reduction, "ratio": None if none else ratio, "estimator": estimator,
                      "kept_start": None if none else views[-1].axes.start,
                      "kept_stop": None if none else views[-1].axes.stop, "well_defined": defined, "model": model,
                      "_views": views})
    table = pd.DataFrame(table)
    projected = [axes.project(np.concatenate([train[fit], train[rows[held]], pseudo[held]]))
                 for axes, (fit, held) in zip(fits, folds)]
    validation = {}
    for i in sorted(set(identities.values())):
        aurocs = []
        for k, (fit, held) in enumerate(folds):
            view = table.at[i, "_views"][k]
            X = (np.concatenate([train[fit], train[rows[held]], pseudo[held]]) if view.method == "none"
                 else np.ascontiguousarray(projected[k][:, view.axes]))
            s = make_estimator(table.at[i, "estimator"], seed=seed, **(flow_params or {})).fit(
                X[:len(fit)]).score_samples(X[len(fit):])
            aurocs.append(auroc(np.r_[np.zeros(held.size, bool), np.ones(held.size, bool)], s))
        validation[i] = float(np.mean(aurocs))
    table["validation"] = table.model.map(validation).astype(float)
    return table.drop(columns="_views")


def select_config(features: Mapping[Hashable, tuple[np.ndarray, np.ndarray]], rows: np.ndarray,
                  configs: Sequence[tuple[str, float | None, str]], *, n_folds: int = 5,
                  basis: str = DEFAULT_BASIS, seed: int = 0, flow_params: dict | None = None
                  ) -> tuple[int, pd.DataFrame]:
    """The configuration of the whole grid with the highest nested validation AUROC, chosen without test images.

    Parameters
    ----------
    features : mapping of layer to (train, pseudo)
        Per feature matrix (e.g. layer), the good training rows and the pseudo-anomaly rows, as
        `validate_grid` takes them.
    rows, configs, n_folds, basis, seed, flow_params
        As `validate_grid`; every configuration is crossed with every feature matrix.

    Returns
    -------
    (chosen, table) : (int, DataFrame)
        ``table``: `validate_grid`'s rows for each matrix in turn (``layer`` column first; ``model`` made
        unique over the whole table), on a RangeIndex; ``chosen``: the index of the first well-defined row
        with the highest validation AUROC, so the order of ``features`` and ``configs`` is the tie-break rule.
    """
    if not features or not configs:
        raise ValueError("features and configs must each hold at least one entry")
    parts = []
    for layer, (train, pseudo) in features.items():
        part = validate_grid(train, pseudo, rows, configs, n_folds=n_folds, basis=basis, seed=seed,
                             flow_params=flow_params)
        offset = sum(map(len, parts))
        part["model"] = part.model.where(part.model < 0, part.model + offset)
        parts.append(part.assign(layer=layer)[["layer", *part.columns]])
    table = pd.concat(parts, ignore_index=True)
    if not table.well_defined.any():
        raise ValueError("no configuration is well defined at every fit; use basis 'rank' or more training images")
    return int(table.validation.idxmax()), table


def aurocs(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``scores`` (shape (k, n)) against ``labels`` (shape (n,), 1 = anomalous), ties half."""
    labels = np.asarray(labels).astype(bool)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0 or np.shape(scores)[-1] != labels.size:
        raise ValueError(f"labels need both classes and one entry per score column; got {n0} good, {n1} "
                         f"anomalous for scores of shape {np.shape(scores)}")
    ranks = rankdata(scores, axis=-1)
    return (ranks[..., labels].sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def split_half_optimism(labels: np.ndarray, scores: np.ndarray, *, n_splits: int = 200,
                        seed: int = 0) -> pd.DataFrame:
    """How much the best of many models on test images overstates that model on new images.

    Each split divides the test images at random into two halves, each with half of the good and half of
    the anomalous images (the odd one to the second half); the model with the highest AUROC on the first
    half (the first on a tie) is read on the second. The drop from the first reading to the second is the
    optimism of picking the best on the images that score it.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        1 marks an anomalous image; each half needs both classes (at least 2 of each).
    scores : ndarray of shape (k, n)
        Every candidate model's scores of the test images.

    Returns
    -------
    DataFrame
        One row per split: ``chosen`` (row of ``scores``), ``in_sample`` (its AUROC on the first half),
        ``out_of_sample`` (on the second), ``optimism`` (their difference).
    """
    labels = np.asarray(labels).astype(bool)
    good, bad = np.flatnonzero(~labels), np.flatnonzero(labels)
    if min(good.size, bad.size) < 2 or n_splits < 1:
        raise ValueError(f"need at least 2 good and 2 anomalous images and n_splits >= 1; got {good.size}, "
                         f"{bad.size}, n_splits={n_splits}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        g, b = rng.permutation(good), rng.permutation(bad)
        first = np.r_[g[:g.size // 2], b[:b.size // 2]]
        second = np.r_[g[g.size // 2:], b[b.size // 2:]]
        chosen = int(np.argmax(aurocs(labels[first], scores[:, first])))
        a, b_ = aurocs(labels[first], scores[chosen, first]), aurocs(labels[second], scores[chosen, second])
        out.append({"chosen": chosen, "in_sample": float(a), "out_of_sample": float(b_), "optimism": float(a - b_)})
    return pd.DataFrame(out)


def validation_ties(validation: pd.Series, *, tol: float = 1e-9) -> list[Hashable]:
    """The candidates whose validation AUROC equals the best, within ``tol``, in their given order.

    More than one means validation saturates (typically at 1: pseudo-anomalies every candidate separates)
    and cannot tell them apart; `select_config` then takes the first of them in candidate order, so the
    order the candidates are given in is the tie-break rule and should be stated with the choice.

    Parameters
    ----------
    validation : Series of float, shape (k,)
        One validation AUROC per candidate model, e.g. `select_config`'s table's ``validation`` column over
        its distinct models.
    tol : float
        Largest difference from the best still counted as equal, >= 0.
    """
    if validation.empty or tol < 0:
        raise ValueError(f"validation must be non-empty and tol >= 0; got {len(validation)} values, tol={tol!r}")
    best = validation.max()
    return [key for key, value in validation.items() if best - value <= tol]


class ConformalPoints(NamedTuple):
    """One fitted model's split-conformal thresholds and its test scores (`conformal_points`)."""

    thresholds: dict[float, float | None]
    """Target false-positive rate -> threshold (flag ``score > threshold``); None where the calibration images
    are too few for the target (``n_calibration < 1 / fpr - 1``)."""
    test_scores: np.ndarray
    calibration_scores: np.ndarray
    n_fit: int


def conformal_points(train: np.ndarray, test: np.ndarray, reduction: str, ratio: float | None, estimator: str,
                     fprs: Sequence[float], *, calibration_fraction: float = 0.5, basis: str = DEFAULT_BASIS,
                     seed: int = 0, flow_params: dict | None = None) -> ConformalPoints:
    """Split-conformal thresholds that belong to the model scoring the test images.

    The good training rows are split as `tad.detector.Detector` splits them (`tad.calibrate.calibration_split`):
    the configuration is fitted once on the fitting rows, and that one fitted model scores both the held-out
    calibration rows and the test rows; each threshold is `tad.calibrate.conformal_threshold` of the
    calibration scores. A new good image exchangeable with the calibration rows is then flagged with
    probability at most the target (`tad.calibrate.expected_fpr`).

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Good training rows.
    test : ndarray of shape (n_test, d)
    reduction, ratio, estimator, basis, seed, flow_params
        The configuration, as `tad.trial.score`.
    fprs : sequence of float
        Target false-positive rates, each in (0, 1).
    calibration_fraction : float
        Share of the training rows held out to calibrate, in (0, 1).
    """
    fit, cal = calibration_split(len(train), calibration_fraction, seed)
    scores = score(train[fit], np.concatenate([train[cal], test]), reduction, ratio, estimator, basis=basis,
                   seed=seed, flow_params=flow_params)
    cal_scores, test_scores = scores[:len(cal)], scores[len(cal):]
    thresholds = {}
    for f in fprs:
        if not 0 < f < 1:
            raise ValueError(f"fpr {f!r} must lie in (0, 1)")
        try:
            conformal_rank(len(cal), f)  # refuses n_calibration < 1 / f - 1
        except ValueError:
            thresholds[f] = None
        else:
            thresholds[f] = conformal_threshold(cal_scores, f)
    return ConformalPoints(thresholds, test_scores, cal_scores, len(fit))


# --- helpers -----------------------------------------------------------------------------------

def _folds(rows: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(other positions, held-out positions) of each shuffled fold of ``rows``."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 2 <= n_folds <= len(rows):
        raise ValueError(f"n_folds {n_folds!r} must be an int from 2 to the number of validation rows ({len(rows)})")
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(rows))

