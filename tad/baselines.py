"""Baselines the study's scores are measured against: pixels, the classifier's own outputs, DFM, SPE, fusion.

Inputs are image files or feature matrices of good training images and of test images; every scorer
returns one score per test image, **higher meaning more anomalous**, like `tad.estimators`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from tad.backbones import Backbone, parse_layers
from tad.cache import cached_arrays
from tad.data import Split, load_image
from tad.estimators import MVG
from tad.features import cache_key, preprocess, select_pair, split_features
from tad.reduce import null_axes, retained_axes, spectrum
from tad.sweep import score

__all__ = ["pixel_features", "classifier_outputs", "Reconstruction", "fusion_scores", "baseline_scores"]


def pixel_features(paths: Sequence[str | Path], size: int = 16) -> np.ndarray:
    """Raw pixels of each image, downsampled to ``size`` x ``size`` (bicubic, antialiased) and flattened.

    Parameters
    ----------
    paths : sequence of path
    size : int
        Side of the downsampled square image.

    Returns
    -------
    ndarray of shape (n_images, 3 * size * size), values in [0, 1]
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size {size!r} must be a positive int")
    if len(paths) == 0:
        raise ValueError("paths is empty: no images to read")
    return np.stack([preprocess(load_image(p), size).numpy().ravel() for p in paths]).astype(np.float64)


def classifier_outputs(backbone: Backbone, paths: Sequence[str | Path], *, input_size: int | None = None,
                       batch_size: int = 32, cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ImageNet classifier's pre-logit features and its max-softmax anomaly score for each image.

    Pre-logit features: the head's globally pooled vector that the last linear layer maps to the 1000
    logits. Max-softmax score (Hendrycks & Gimpel 2017): ``1 - max_k softmax(logits)_k``, high when the
    classifier is unsure of every ImageNet class.

    Parameters
    ----------
    backbone : Backbone
    paths : sequence of path
    input_size : int, optional
        Square side fed to the network; default the weights' native size.
    cache_dir : path, optional
        Keep the result in ``head-<backbone>-<size>px-<key>.npz`` there (`tad.cache.cached_arrays`; key as
        `tad.features.cache_key`).

    Returns
    -------
    pre_logits : ndarray of shape (n_images, n_features)
    max_softmax : ndarray of shape (n_images,)
    """
    size = input_size or backbone.input_size
    if len(paths) == 0:
        raise ValueError("paths is empty: no images to read")

    def compute() -> dict[str, np.ndarray]:
        model = backbone.model.eval()
        mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
        std = torch.tensor(backbone.std).view(1, 3, 1, 1)
        feats, scores = [], []
        with torch.inference_mode():
            for i in range(0, len(paths), batch_size):
                x = torch.stack([preprocess(load_image(p), size) for p in paths[i:i + batch_size]])
                pre = model.forward_head(model.forward_features((x - mean) / std), pre_logits=True)
                logits = model.get_classifier()(pre)
                feats.append(pre.double().numpy())
                scores.append(1 - torch.softmax(logits.double(), dim=1).amax(dim=1).numpy())
        return {"pre_logits": np.concatenate(feats), "max_softmax": np.concatenate(scores)}

    key = cache_key(backbone, paths, size, 0.0, 0)
    out = cached_arrays(cache_dir, f"head-{backbone.name}-{size}px", key, compute,
                        {"pre_logits": (len(paths), None), "max_softmax": (len(paths),)})
    return out["pre_logits"], out["max_softmax"]


class Reconstruction(BaseEstimator):
    """PCA reconstruction error: squared distance to the training features' leading principal subspace.

    Ahuja et al. (2019, "Probabilistic modeling of deep features for out-of-distribution and adversarial
    detection", DFM) score a test feature by how badly a PCA fitted on good features reconstructs it, the
    PCA keeping the leading axes up to a share of the training variance (95 % to 99 %): ``variance=0.95``
    or ``0.99`` is DFM. In process monitoring the same quantity is the PCA residual (SPE, Q statistic).
    With every axis of non-zero training variance kept (the default, or ``variance=1.0``) it is the
    full-rank SPE: the distance to the affine span of the training features, which is what NPCA with more
    axes than the null space scores under ``basis="dims"`` once the null-space axes dominate. That
    degenerate case is not DFM.

    Parameters
    ----------
    n_components : int or None
        Principal axes kept (the largest-variance ones); None lets ``variance`` decide.
    variance : float or None
        In (0, 1]: keep the smallest number k of leading axes whose eigenvalues sum to at least this share
        of the total training variance. None (with ``n_components`` None) keeps every axis whose training
        variance is above rounding (the rank of the centred training features), as does 1.0.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    components_ : ndarray of shape (k, d)
        The kept axes as rows.
    n_components_ : int
        k, the number of kept axes.
    """

    def __init__(self, n_components: int | None = None, variance: float | None = None) -> None:
        self.n_components = n_components
        self.variance = variance

    def fit(self, X: np.ndarray, y: None = None) -> Reconstruction:
        X = check_array(X, dtype=np.float64)
        if len(X) < 2:
            raise ValueError(f"Reconstruction needs at least 2 training images, got {len(X)}")
        if self.n_components is not None and self.variance is not None:
            raise ValueError(f"give n_components ({self.n_components!r}) or variance ({self.variance!r}), not both")
        v = self.variance
        if v is not None and (isinstance(v, bool) or not isinstance(v, (float, int)) or not 0 < v <= 1):
            raise ValueError(f"variance {v!r} must be None or a share of the training variance in (0, 1]")
        mean, values, vectors = spectrum(X)
        rank = null_axes(values).start
        if v is not None:
            k = retained_axes(values, v)
        else:
            k = rank if self.n_components is None else self.n_components
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= rank:
            raise ValueError(f"n_components {self.n_components!r} must be None or an int in 0..{rank} "
                             f"(the rank of the training features)")
        self.mean_ = mean
        self.components_ = vectors[:, :k].T
        self.n_components_ = int(k)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Squared norm of each row's residual after projection onto the kept axes, shape (n_samples,)."""
        check_is_fitted(self)
        D = check_array(X, dtype=np.float64) - self.mean_
        R = D - (D @ self.components_.T) @ self.components_
        return (R * R).sum(axis=1)


def fusion_scores(train: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> np.ndarray:
    """Rippel et al.'s multi-level score: the sum over levels of each level's squared Mahalanobis distance.

    One `tad.estimators.MVG` (Ledoit-Wolf) is fitted per level on that level's good training features;
    unlike concatenating the levels into one vector, no covariance between levels is estimated.

    Parameters
    ----------
    train : sequence of ndarray, each of shape (n_train, d_level)
    test : sequence of ndarray, each of shape (n_test, d_level)

    Returns
    -------
    ndarray of shape (n_test,)
    """
    if len(train) != len(test) or not train:
        raise ValueError(f"train and test must hold the same, non-zero number of levels; got {len(train)} "
                         f"and {len(test)}")
    return np.sum([MVG().fit(X).score_samples(Y) for X, Y in zip(train, test)], axis=0)


def baseline_scores(split: Split, backbone: Backbone, random_backbone: Backbone, *, layer: int | str,
                    pooling: str, reduction: str, ratio: float | None, estimator: str, pixel_size: int = 16,
                    dfm_variances: Sequence[float] = (0.95, 0.99), input_size: int | None = None,
                    cache_dir: str | Path | None = None, device: str = "cpu",
                    seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Every baseline's test scores of one split beside the main configuration's.

    The main configuration is ``backbone``'s ``layer`` and ``pooling`` features, ``reduction`` at ``ratio``
    and ``estimator`` (`tad.sweep.score`). The same reduction and estimator score the same layer of
    ``random_backbone`` (untrained weights), raw pixels downsampled to ``pixel_size`` (`pixel_features`)
    and the classifier's pre-logits (`classifier_outputs`); the classifier's maximum softmax, DFM on the
    main features at each retained-variance share of ``dfm_variances`` (`Reconstruction`), the SPE of the
    full-rank PCA of the main features (every non-zero axis kept), Rippel's fusion over every layer
    (`fusion_scores`) and one MVG on every layer concatenated score without them.

    Returns
    -------
    scores : dict of str to ndarray of shape (n_test,)
        Keys "main", "random network", "pixels", "pre-logits", "max-softmax", "DFM 95 %" (one "DFM p %"
        per share, in percent), "SPE (full-rank residual)", "fusion (Rippel)", "concatenation".
    kept : dict of str to int
        The principal axes k that each DFM key and the SPE key keep.
    """
    features, random_features = (split_features(split, bb, input_size=input_size, cache_dir=cache_dir,
                                                device=device, progress=False) for bb in (backbone, random_backbone))
    X, Y = select_pair(features, layer, pooling, backbone)
    Xr, Yr = select_pair(random_features, layer, pooling, random_backbone)
    Ptr, _ = classifier_outputs(backbone, split.train_paths, input_size=input_size, cache_dir=cache_dir)
    Pte, msp = classifier_outputs(backbone, split.test_paths, input_size=input_size, cache_dir=cache_dir)
    per_level = [select_pair(features, i, pooling, backbone) for i in parse_layers(backbone, "all")]
    main = {"reduction": reduction, "ratio": ratio, "estimator": estimator, "seed": seed}
    residuals = {f"DFM {100 * v:g} %": Reconstruction(variance=v).fit(X) for v in dfm_variances}
    residuals["SPE (full-rank residual)"] = Reconstruction().fit(X)
    scores = {
        "main": score(X, Y, **main),
        "random network": score(Xr, Yr, **main),
        "pixels": score(pixel_features(split.train_paths, pixel_size), pixel_features(split.test_paths, pixel_size),
                        **main),
        "pre-logits": score(Ptr, Pte, **main),
        "max-softmax": msp,
        **{name: model.score_samples(Y) for name, model in residuals.items()},
        "fusion (Rippel)": fusion_scores([a for a, _ in per_level], [b for _, b in per_level]),
        "concatenation": score(*select_pair(features, "all", pooling, backbone), "none", None, "mvg"),
    }
    return scores, {name: model.n_components_ for name, model in residuals.items()}
