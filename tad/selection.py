"""Choices made from the good training images alone: a configuration, and an alarm threshold.

Pseudo-anomalous images are made from training images (`pseudo_anomaly_images`); configurations are
ranked by how well they separate held-out good training images from pseudo-anomalies made from those same
held-out images (`select_config`); an alarm threshold is set split-conformally on good training images held
out from the very model that is thresholded (`conformal_points`, with `tad.calibrate`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import KFold

from tad.calibrate import calibration_split, conformal_rank, conformal_threshold
from tad.data import load_image
from tad.evaluate import auroc
from tad.reduce import DEFAULT_BASIS
from tad.trial import score

__all__ = ["Candidate", "pseudo_anomaly_images", "validation_auroc", "select_config", "validation_ties",
           "ConformalPoints", "conformal_points"]

Candidate = tuple[np.ndarray, np.ndarray, str, "float | None", str]  # train, pseudo, reduction, ratio, estimator


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


def validation_auroc(train: np.ndarray, pseudo: np.ndarray, reduction: str, ratio: float | None,
                     estimator: str, *, n_folds: int = 5, basis: str = DEFAULT_BASIS, seed: int = 0,
                     flow_params: dict | None = None) -> float:
    """Mean over validation folds of the AUROC of held-out good training rows vs their pseudo-anomalies.

    The training rows are split into ``n_folds`` shuffled folds (`KFold`, seeded). For fold ``k`` the
    configuration is fitted (`tad.sweep.score`) on the other folds and scores fold ``k``'s rows (good)
    and the pseudo-anomalies made from fold ``k``'s images, so the fit has seen neither those images nor
    the images their pseudo-anomalies were made from.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Features of the good training images.
    pseudo : ndarray of shape (n_train, d)
        ``pseudo[i]``: features of the pseudo-anomaly made from training image ``i``
        (`pseudo_anomaly_images` keeps the order).
    reduction, ratio, estimator, basis, flow_params
        The configuration, as in `tad.sweep.score`.

    Returns
    -------
    float
    """
    if pseudo.shape != train.shape:
        raise ValueError(f"pseudo has shape {pseudo.shape}; expected {train.shape}, one row per training row")
    aurocs = []
    for fit, held in _folds(train, n_folds, seed):
        s = score(train[fit], np.concatenate([train[held], pseudo[held]]), reduction, ratio, estimator,
                  basis=basis, seed=seed, flow_params=flow_params)
        aurocs.append(auroc(np.r_[np.zeros(held.size, bool), np.ones(held.size, bool)], s))
    return float(np.mean(aurocs))


def select_config(candidates: Mapping[Hashable, Candidate], *, n_folds: int = 5, basis: str = DEFAULT_BASIS,
                  seed: int = 0, flow_params: dict | None = None) -> tuple[Hashable, pd.Series]:
    """The configuration with the highest `validation_auroc`: chosen without test images or labels.

    Parameters
    ----------
    candidates : mapping of key to (train, pseudo, reduction, ratio, estimator)
        Each configuration's training and pseudo-anomaly features (arrays of shape (n_train, d), d
        depending on its layer and pooling) and its reduction and estimator.
    n_folds, basis, seed, flow_params
        As in `validation_auroc`.

    Returns
    -------
    (key, validation) : (hashable, Series)
        The chosen key (the first in ``candidates`` order among equal best) and every candidate's
        validation AUROC, indexed by key in the given order.
    """
    if not candidates:
        raise ValueError("candidates must hold at least one configuration")
    values = pd.Series({key: validation_auroc(train, pseudo, reduction, ratio, estimator, n_folds=n_folds,
                                              basis=basis, seed=seed, flow_params=flow_params)
                        for key, (train, pseudo, reduction, ratio, estimator) in candidates.items()},
                       name="validation_auroc", dtype=float)
    return values.index[int(np.argmax(values.to_numpy()))], values


def validation_ties(validation: pd.Series, *, tol: float = 1e-9) -> list[Hashable]:
    """The candidates whose validation AUROC equals the best, within ``tol``, in their given order.

    More than one means validation saturates (typically at 1: pseudo-anomalies every candidate separates)
    and cannot tell them apart; `select_config` then takes the first of them in candidate order, so the
    order the candidates are given in is the tie-break rule and should be stated with the choice.

    Parameters
    ----------
    validation : Series of float, shape (k,)
        `select_config`'s second return value.
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

def _folds(train: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) of each shuffled fold of the training rows."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 2 <= n_folds <= len(train):
        raise ValueError(f"n_folds {n_folds!r} must be an int from 2 to the number of training rows ({len(train)})")
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(train))

