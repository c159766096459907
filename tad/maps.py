"""Anomaly maps: transferred CNN features kept per position, a model per position (or shared), upsampled maps.

`extract_maps` runs a backbone and keeps the spatial activations of one or more layers (deeper maps resized
to the grid of the shallowest), `PatchModel` fits NPCA/PCA + Gaussian (Ledoit-Wolf) or k-NN on the good
training patches and scores every test patch, `upsample_maps` brings the score grid to image resolution and
smooths it, and `evaluate_maps` runs all of it on a split and scores the maps against the ground-truth masks;
`evaluate_detector` does the same for a patch-level detector of `tad.patch` (PaDiM, PatchCore).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from tad.backbones import Backbone, parse_layers
from tad.cache import cached_arrays, extend_key
from tad.cost import measure_cost
from tad.data import DataError, Split, load_mask
from tad.estimators import ESTIMATORS, knn_distance, ledoit_wolf_precision, mahalanobis_sq, n_neighbours
from tad.evaluate import auroc, pixel_auroc, pro_score
from tad.features import backbone_outputs, cache_key, resolve_input_size
from tad.reduce import DEFAULT_BASIS, PrincipalAxes, check_reduction

__all__ = ["MAPS_VERSION", "PATCH_ESTIMATORS", "extract_maps", "PatchModel", "upsample_maps", "evaluate_maps",
           "evaluate_detector", "concatenated_maps"]

# Bump when anything that changes map values changes (layer resizing, dtype).
MAPS_VERSION = 1
PATCH_ESTIMATORS = tuple(name for name in ESTIMATORS if name != "flow")  # the flow has no batched form here
# Batched small matrices gain nothing from BLAS threads, and threaded OpenBLAS slows them 20-40x on a
# loaded machine (measured: (49, 120, 120) eigh 0.7 s with one thread, 15 s with two under load 15).
_one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


def extract_maps(
    backbone: Backbone,
    paths: Sequence[str | Path],
    layers: Sequence[int] = (3, 4),
    *,
    input_size: int | None = None,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Spatial activations of one or more layers for every image, concatenated along channels.

    Images are read with `tad.data.load_image`, resized by `tad.features.preprocess` and normalised with the
    backbone's mean and std, as for the pooled features. Maps of a coarser grid are resized (bilinear,
    ``align_corners=False``) to the finest grid among ``layers`` before concatenation.

    Parameters
    ----------
    backbone : Backbone
    paths : sequence of path
    layers : sequence of int
        Layer numbers (1-based, as in `tad.backbones.parse_layers`), distinct; their channels are
        concatenated in this order. E.g. ``(3, 4)`` of Lite0 at 224 px gives a 28 x 28 grid of 120 channels.
    input_size : int, optional
        Square side the images are resized to; default the weights' native size.
    batch_size, num_workers, device
        As in `tad.features.extract`.
    cache_dir : path, optional
        Where to keep the result, keyed like `tad.features.extract` (file contents, weights, size) plus the
        layers and `MAPS_VERSION`; written atomically; a corrupt file is recomputed.

    Returns
    -------
    ndarray of shape (n_images, H', W', C), float32
        ``C`` is the sum of the layers' channels, ``H' x W'`` the finest grid.
    """
    layers = _check_layers(backbone, layers)
    size = resolve_input_size(backbone, input_size)
    key = extend_key(cache_key(backbone, paths, size, 0.0, 0), {"layers": layers, "maps_version": MAPS_VERSION})

    def compute() -> dict[str, np.ndarray]:
        return backbone_outputs(backbone, paths, lambda out: {"maps": concatenated_maps(out, layers)},
                                input_size=size, batch_size=batch_size, num_workers=num_workers, device=device,
                                progress=progress)

    name = f"{backbone.name}-{size}px-maps{'-'.join(map(str, layers))}"
    channels = sum(backbone.channels[lay - 1] for lay in layers)
    return cached_arrays(cache_dir, name, key, compute, {"maps": (len(paths), None, None, channels)})["maps"]


class PatchModel(BaseEstimator):
    """Anomaly model of feature-map patches: (N)PCA, then a Gaussian or k-NN, per position or shared.

    Parameters
    ----------
    estimator : {"mvg", "knn1", "knn5", "knn10"}
        ``"mvg"``: squared Mahalanobis distance under a Gaussian with Ledoit-Wolf shrinkage
        (`tad.estimators.ledoit_wolf_precision`, batched over positions, as `tad.estimators.MVG`).
        ``"knnK"``: mean Euclidean distance to the K nearest training patches (`tad.estimators.knn_distance`,
        exhaustive search, no coreset).
    reduction : {"npca", "pca", "none"}
        As `tad.reduce.Reducer`: keep ``round(ratio * C)`` of the smallest (NPCA) or largest (PCA) variance
        axes of the training patches, read by ``basis``.
    ratio : float in (0, 1]
    shared : bool
        False: one reduction and one estimator per position, fitted on the ``n_train`` patches at that
        position (a k-NN then searches the same position only). True: one of each for all positions, fitted
        on all ``n_train * H' * W'`` patches (for k-NN: the nearest training patch from any position, as
        PatchCore without coreset).
    basis : one of `tad.reduce.BASES`
        How the ratio meets the training null space of a group (n_train <= C per position), see
        `tad.reduce.kept_axes`; default the book's one reading, `tad.reduce.DEFAULT_BASIS`. It is the same
        as the paper's ``"dims"`` wherever a group has more patches than channels.

    Attributes
    ----------
    grid_ : tuple of int
        ``(H', W')`` of the training maps.
    mean_ : ndarray of shape (G, C)
        ``G`` is ``H' * W'`` (per position, row-major) or 1 (shared).
    components_ : ndarray of shape (G, d, C) or None
        Kept axes per group, as rows; None for ``reduction="none"`` (then ``d = C``).
    location_ : ndarray of shape (G, d)
        MVG only: mean of the reduced training patches.
    precision_ : ndarray of shape (G, d, d)
        MVG only: inverse of the shrunk covariance.
    shrinkage_ : ndarray of shape (G,)
        MVG only: Ledoit-Wolf shrinkage.
    bank_ : ndarray of shape (G, m, d), float32
        k-NN only: the reduced training patches of each group.
    """

    def __init__(self, estimator: str = "mvg", reduction: str = "npca", ratio: float = 0.5,
                 shared: bool = False, basis: str = DEFAULT_BASIS) -> None:
        self.estimator = estimator
        self.reduction = reduction
        self.ratio = ratio
        self.shared = shared
        self.basis = basis

    @_one_blas_thread
    def fit(self, maps: np.ndarray, y: None = None) -> PatchModel:
        """Fit on good training maps of shape (n_train, H', W', C)."""
        if self.estimator not in PATCH_ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} not in {PATCH_ESTIMATORS}")
        check_reduction(self.reduction, self.ratio, self.basis)
        if not isinstance(self.shared, (bool, np.bool_)):
            raise ValueError(f"shared {self.shared!r} must be a bool")
        maps = _check_maps(maps, "maps")
        if len(maps) < 2:
            raise ValueError(f"PatchModel needs at least 2 training maps, got {len(maps)}")
        n, h, w, _ = maps.shape
        per_group = n * h * w if self.shared else n
        if self.estimator != "mvg" and n_neighbours(self.estimator) > per_group:
            raise ValueError(f"{self.estimator} needs {n_neighbours(self.estimator)} neighbours, more than the "
                             f"{per_group} training patches per group")
        self.grid_ = (h, w)
        X = self._groups(maps)  # (G, m, C)
        self.mean_ = X.mean(axis=1)
        self.components_ = None
        if self.reduction != "none":
            axes = PrincipalAxes.fit(X)  # one decomposition per group, batched
            self.components_ = axes.components(axes.view(self.reduction, self.ratio, self.basis))
        Z = self._reduce(X)
        if self.estimator == "mvg":
            self.location_, _, self.precision_, self.shrinkage_ = ledoit_wolf_precision(Z)
        else:
            self.bank_ = Z.astype(np.float32)
        return self

    @_one_blas_thread
    def score_maps(self, maps: np.ndarray) -> np.ndarray:
        """Anomaly score of every patch, higher = more anomalous.

        Parameters
        ----------
        maps : ndarray of shape (n, H', W', C)
            Same grid (unless ``shared``) and channels as the training maps.

        Returns
        -------
        ndarray of shape (n, H', W'), float64
        """
        check_is_fitted(self)
        maps = _check_maps(maps, "maps")
        n, h, w, c = maps.shape
        if c != self.mean_.shape[1] or (not self.shared and (h, w) != tuple(self.grid_)):
            raise ValueError(f"maps have grid {(h, w)} and {c} channels; the model was fitted on grid "
                             f"{tuple(self.grid_)} and {self.mean_.shape[1]} channels")
        Z = self._reduce(self._groups(maps))
        if self.estimator == "mvg":
            scores = mahalanobis_sq(Z, self.location_, self.precision_)
        else:
            scores = knn_distance(Z.astype(np.float32), self.bank_, n_neighbours(self.estimator))
        return scores.reshape(n, h, w) if self.shared else scores.T.reshape(n, h, w)

    def _groups(self, maps: np.ndarray) -> np.ndarray:
        """(n, H', W', C) float32 to (G, m, C) float64: G = 1 with all patches, or G = H' * W' positions."""
        n, h, w, c = maps.shape
        if self.shared:
            return maps.reshape(1, n * h * w, c).astype(np.float64)
        return maps.reshape(n, h * w, c).transpose(1, 0, 2).astype(np.float64)

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        """(G, m, C) patches to (G, m, d) coordinates on the kept axes, centred on the training mean."""
        Xc = X - self.mean_[:, None]
        return Xc if self.components_ is None else Xc @ np.swapaxes(self.components_, 1, 2)


def upsample_maps(scores: np.ndarray, size: int | tuple[int, int], sigma: float = 4.0) -> np.ndarray:
    """Score grids to image-sized anomaly maps: bilinear upsampling, then Gaussian smoothing.

    Parameters
    ----------
    scores : ndarray of shape (n, H', W')
    size : int or (height, width)
        Output size; an int means square.
    sigma : float
        Standard deviation of the Gaussian, in output pixels (`scipy.ndimage.gaussian_filter`, reflecting
        borders); 0 for none.

    Returns
    -------
    ndarray of shape (n, height, width), float32
    """
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must have shape (n, H', W'); got {scores.shape}")
    if sigma < 0:
        raise ValueError(f"sigma {sigma!r} must be >= 0")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    x = torch.from_numpy(scores.astype(np.float32))[:, None]
    up = F.interpolate(x, size=hw, mode="bilinear", align_corners=False)[:, 0].numpy()
    return ndimage.gaussian_filter(up, sigma=(0, sigma, sigma)) if sigma else up


def evaluate_maps(
    split: Split,
    backbone: Backbone,
    *,
    layers: Sequence[int] = (3, 4),
    input_size: int | None = None,
    estimator: str = "mvg",
    reduction: str = "npca",
    ratio: float = 0.5,
    shared: bool = False,
    resolution: int = 256,
    sigma: float = 4.0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Anomaly maps of a split's test images and their pixel AUROC, PRO and map-based image AUROC.

    Maps are evaluated at a fixed ``resolution x resolution``: the score grid is upsampled to it and smoothed
    (`upsample_maps`), and ground-truth masks are resized to it with nearest-neighbour interpolation. Good
    test images count as all-normal masks. An image's score is the maximum of its smoothed map.

    Parameters
    ----------
    split : Split
        Needs a mask for every anomalous test image (``load_split(..., require_masks=True)``).
    backbone : Backbone
    layers, input_size
        As in `extract_maps`.
    estimator, reduction, ratio, shared
        As in `PatchModel`.
    resolution : int
        Side of the square evaluation grid, in pixels.
    sigma : float
        Gaussian smoothing, in pixels of the evaluation grid.
    cache_dir, device, progress
        As in `extract_maps`.

    Returns
    -------
    dict
        ``pixel_auroc``, ``pro`` (normalised area up to FPR 0.3), ``image_auroc_from_map``, ``seconds``
        (wall time, features included), ``fit_s`` and ``score_ms_per_image`` (`tad.cost.measure_cost` of the
        model's fit and of its patch scores), ``grid`` (H', W'), the configuration, and for plotting ``maps``
        (n_test, resolution, resolution) float32, ``masks`` of the same shape (bool), ``labels`` (n_test,)
        and ``paths``.
    """
    start = time.perf_counter()
    masks, train, test = _split_maps(split, backbone, layers, resolution, input_size=input_size, device=device,
                                     cache_dir=cache_dir, progress=progress)
    model, scored = PatchModel(estimator, reduction, ratio, shared), {}
    cost = measure_cost(lambda: model.fit(train), lambda: scored.update(grid=model.score_maps(test)), len(test))
    maps = upsample_maps(scored["grid"], resolution, sigma)
    labels = split.test_labels
    return {
        "category": split.name, "backbone": backbone.name, "layers": list(_check_layers(backbone, layers)),
        "input_size": input_size or backbone.input_size, "estimator": estimator, "reduction": reduction,
        "ratio": ratio, "shared": shared, "resolution": resolution, "sigma": sigma,
        "grid": tuple(train.shape[1:3]),
        "pixel_auroc": pixel_auroc(masks, maps),
        "pro": pro_score(masks, maps, max_fpr=0.3),
        "image_auroc_from_map": auroc(labels, maps.max(axis=(1, 2))),
        "seconds": time.perf_counter() - start, "fit_s": cost["fit_s"],
        "score_ms_per_image": cost["score_ms_per_image"],
        "maps": maps, "masks": masks, "labels": labels, "paths": split.test_paths,
    }


def evaluate_detector(
    split: Split,
    backbone: Backbone,
    detector: BaseEstimator,
    *,
    layers: Sequence[int] = (3, 4),
    input_size: int | None = None,
    resolution: int = 256,
    sigma: float = 4.0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """A patch-level detector (`tad.patch.PaDiM`, `tad.patch.PatchCore`) on a split's maps, scored as `evaluate_maps`.

    The detector is fitted on the training maps of `extract_maps` and scores the test maps: its image scores
    (``score_samples``, the papers' image score) give the image AUROC; its patch scores (``score_maps``),
    upsampled and smoothed to ``resolution`` (`upsample_maps`), give pixel AUROC and PRO against the masks.

    Parameters
    ----------
    split : Split
        Needs a mask for every anomalous test image.
    backbone : Backbone
    detector : estimator
        Unfitted, with ``fit(maps)``, ``score_samples(maps)`` and ``score_maps(maps)``; fitted in place.
    layers, input_size, resolution, sigma, cache_dir, device, progress
        As in `evaluate_maps`.

    Returns
    -------
    dict
        ``pixel_auroc``, ``pro`` (FPR up to 0.3), ``image_auroc``, ``image_scores`` (n_test,), ``fit_s`` and
        ``score_ms_per_image`` (`tad.cost.measure_cost` of ``fit`` and ``score_samples``, features extracted
        beforehand), ``grid``, and for plotting ``maps``, ``masks``, ``labels``, ``paths``, ``category``.
    """
    masks, train, test = _split_maps(split, backbone, layers, resolution, input_size=input_size, device=device,
                                     cache_dir=cache_dir, progress=progress)
    scored = {}
    cost = measure_cost(lambda: detector.fit(train), lambda: scored.update(image=detector.score_samples(test)),
                        len(test))
    maps = upsample_maps(detector.score_maps(test), resolution, sigma)
    labels = split.test_labels
    return {
        "category": split.name, "grid": tuple(train.shape[1:3]), "resolution": resolution, "sigma": sigma,
        "pixel_auroc": pixel_auroc(masks, maps), "pro": pro_score(masks, maps, max_fpr=0.3),
        "image_auroc": auroc(labels, scored["image"]), "image_scores": scored["image"],
        "fit_s": cost["fit_s"], "score_ms_per_image": cost["score_ms_per_image"],
        "maps": maps, "masks": masks, "labels": labels, "paths": split.test_paths,
    }


# --- helpers -----------------------------------------------------------------------------------

def _split_maps(split: Split, backbone: Backbone, layers: Sequence[int], resolution: int,
                **extract: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test masks at ``resolution`` and the training and test maps of `extract_maps`, for both evaluations."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution {resolution!r} must be an int >= 8")
    return (_test_masks(split, resolution), extract_maps(backbone, split.train_paths, layers, **extract),
            extract_maps(backbone, split.test_paths, layers, **extract))


def _check_layers(backbone: Backbone, layers: Sequence[int]) -> tuple[int, ...]:
    if isinstance(layers, (int, str)) or len(layers) == 0:
        raise ValueError(f"layers {layers!r} must be a non-empty sequence of layer numbers")
    out = tuple(lay for layer in layers for lay in parse_layers(backbone, layer))
    if "all" in layers or len(set(out)) != len(out):
        raise ValueError(f"layers {layers!r} must be distinct layer numbers in 1..{backbone.n_layers}")
    return out


def _check_maps(maps: np.ndarray, name: str) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 4 or 0 in maps.shape:
        raise ValueError(f"{name} must have shape (n, H', W', C) with no empty axis; got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError(f"{name} contain NaN or inf")
    return maps


def concatenated_maps(outputs: list[torch.Tensor], layers: Sequence[int]) -> torch.Tensor:
    """The layers' (B, C, h, w) maps resized to the finest grid among them and concatenated: (B, H', W', sum C)."""
    picked = [outputs[lay - 1] for lay in layers]
    grid = max((m.shape[2:] for m in picked), key=lambda s: s[0] * s[1])
    picked = [m if m.shape[2:] == grid else F.interpolate(m, size=grid, mode="bilinear", align_corners=False)
              for m in picked]
    return torch.cat(picked, dim=1).permute(0, 2, 3, 1)


def _test_masks(split: Split, resolution: int) -> np.ndarray:
    """Ground truth of every test image at ``resolution x resolution`` (nearest neighbour), shape (n, R, R)."""
    masks = np.zeros((len(split.test), resolution, resolution), dtype=bool)
    for i, sample in enumerate(split.test):
        if sample.mask is None:
            if sample.label:
                raise DataError(f"anomalous test image {sample.path} has no ground-truth mask; load the split "
                                "with require_masks=True or use a dataset with masks")
            continue
        with Image.open(sample.path) as image:
            size = image.size
        mask = load_mask(sample.mask, size, image=sample.path)
        small = Image.fromarray(mask.astype(np.uint8)).resize((resolution, resolution), Image.NEAREST)
        masks[i] = np.asarray(small) > 0
    return masks
