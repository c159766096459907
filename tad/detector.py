"""A detector for an inspection line: fitted once on good images, calibrated, saved without pickle, scoring new images.

`Detector` runs the book's pipeline (`tad.features` -> `tad.reduce.Reducer` -> `tad.estimators`) on part of the
good images and sets its alarm threshold split-conformally (`tad.calibrate`) on the rest, so the promised
false-positive rate holds for the model that is saved and deployed. Optionally it also fits the anomaly-map
model of `tad.maps` for overlays. The file is safetensors (arrays) with a JSON header; `Detector.load` checks
format, arrays, backbone weights and input against it and refuses any mismatch with one `DetectorFileError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from tad import __version__
from tad.backbones import Backbone, load_backbone, parse_layers
from tad.cache import atomic_write
from tad.calibrate import (calibration_percentile, calibration_split, conformal_rank, conformal_threshold,
                           expected_fpr, fpr_upper_bound)
from tad.data import DataError, Split, load_image
from tad.estimators import ESTIMATORS, FLOW_PARAMS, KNN, MVG, Flow, make_estimator
from tad.features import FEATURE_VERSION, POOLING_CHOICES, backbone_outputs, extract, pool, resolve_input_size, select
from tad.maps import MAPS_VERSION, PatchModel, concatenated_maps, extract_maps, upsample_maps
from tad.reduce import DEFAULT_BASIS, Reducer, View, check_reduction

__all__ = ["FORMAT_VERSION", "RECOMMENDED", "MAP_CONFIG", "DetectorFileError", "Detector", "weights_sha256",
           "overlay"]

FORMAT_VERSION = 1
# The book's configuration: the paper's best (ENB5 layer 7, NPCA 50 %, MVG, average pooling; tables 2-4) on the
# backbone every page runs offline, EfficientNet-Lite0, whose last layer is also its layer 7; the null space
# kept whole ("block", tad.reduce.DEFAULT_BASIS). Maps as the anomaly-map page: layers 3+4, NPCA 50 %, a
# Gaussian per position, 256 px, smoothed with sigma 4 px.
RECOMMENDED = {"backbone": "tf_efficientnet_lite0", "layer": 7, "pooling": "avg", "reduction": "npca",
               "ratio": 0.5, "estimator": "mvg"}
MAP_CONFIG = {"estimator": "mvg", "reduction": "npca", "ratio": 0.5, "shared": False}
MAP_RESOLUTION, MAP_SIGMA = 256, 4.0
_HEADER_KEY = "tad_detector"
_PROBE_SEED = 20250325


class DetectorFileError(ValueError):
    """A detector file that cannot be used here; the one-line message names the file and what is wrong."""


class Detector(BaseEstimator):
    """Fit on good images, calibrate a threshold on held-out good images, save, load, score new images.

    Parameters
    ----------
    backbone, layer, pooling, reduction, ratio, estimator
        The configuration (default `RECOMMENDED`); as in `tad.sweep.evaluate_config`. ``"flow"`` uses the
        book's `tad.estimators.FLOW_PARAMS`.
    input_size : int, optional
        Square input side; default the weights' native size.
    fpr : float
        Target false-positive rate of the threshold on good images, in (0, 1).
    calibration_fraction : float
        Share of the good images held out (at random, seeded) to calibrate the threshold; the model is fitted
        on the rest and never refitted: split-conformal validity needs the threshold to belong to the very
        model that scores new images, and a model refitted on all images would score its own calibration
        images too low. Needs ``round(fraction * n) >= 1 / fpr - 1`` images (99 for 1 %).
    basis : str
        How the ratio meets the training null space (`tad.reduce.kept_axes`).
    maps : bool
        Also fit the anomaly-map model (`tad.maps.PatchModel`, `MAP_CONFIG`) for overlays.
    map_layers : tuple of int
        Layers kept per position for the maps.
    weights : "pretrained", "random" or path
        As `tad.backbones.load_backbone` ("random" for tests only).
    seed : int
        Seeds the fit/calibration split and the flow.
    device, batch_size, cache_dir, progress
        Where and how features are computed; ``cache_dir`` caches the fitting images' features only.

    Attributes
    ----------
    backbone_ : Backbone
    input_size_ : int
    reducer_ : tad.reduce.Reducer
    estimator_ : MVG, KNN or Flow
    threshold_ : float
        Flag an image when its score is above it.
    calibration_scores_ : ndarray of shape (n_calibration,)
        Sorted scores of the held-out good images.
    n_fit_, n_calibration_ : int
    expected_fpr_ : float
        The calibration's promise (`tad.calibrate.expected_fpr`), at most ``fpr``.
    fpr_bound_ : float
        95 % bound on this threshold's false-positive rate (`tad.calibrate.fpr_upper_bound`).
    weights_sha256_ : str
        SHA-256 of the backbone's state (every parameter and buffer).
    probe_ : ndarray of shape (d,)
        Features of a fixed synthetic image: `load` recomputes them to check weights, input size and
        preprocessing end to end.
    patch_model_ : tad.maps.PatchModel or None
    map_scale_ : tuple of float or None
        Map values of good calibration images: the median and the largest of their maps' maxima.
    """

    def __init__(self, backbone: str = RECOMMENDED["backbone"], layer: int | str = RECOMMENDED["layer"],
                 pooling: str = RECOMMENDED["pooling"], reduction: str = RECOMMENDED["reduction"],
                 ratio: float | None = RECOMMENDED["ratio"], estimator: str = RECOMMENDED["estimator"],
                 input_size: int | None = None, fpr: float = 0.01, calibration_fraction: float = 0.5,
                 basis: str = DEFAULT_BASIS, maps: bool = True, map_layers: tuple[int, ...] = (3, 4),
                 weights: str | Path = "pretrained", seed: int = 0, device: str = "cpu", batch_size: int = 32,
                 cache_dir: str | Path | None = None, progress: bool = False) -> None:
        self.backbone = backbone
        self.layer = layer
        self.pooling = pooling
        self.reduction = reduction
        self.ratio = ratio
        self.estimator = estimator
        self.input_size = input_size
        self.fpr = fpr
        self.calibration_fraction = calibration_fraction
        self.basis = basis
        self.maps = maps
        self.map_layers = map_layers
        self.weights = weights
        self.seed = seed
        self.device = device
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.progress = progress

    # --- fitting ------------------------------------------------------------------------------

    def fit(self, images: Split | Sequence[str | Path], y: None = None) -> Detector:
        """Fit on good images (a `Split`'s training images, or paths) and calibrate the threshold.

        Raises
        ------
        ValueError
            A bad parameter, or too few images for ``fpr`` (the message says how many it takes).
        tad.data.DataError
            An image that cannot be read, named.
        """
        paths = list(images.train_paths if isinstance(images, Split) else images)
        fit_idx, cal_idx = self._split(len(paths))
        check_reduction(self.reduction, self.ratio, self.basis)
        if self.pooling not in POOLING_CHOICES:
            raise ValueError(f"pooling {self.pooling!r} not in {POOLING_CHOICES}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} not in {ESTIMATORS}")
        bb = load_backbone(self.backbone, weights=self.weights)
        parse_layers(bb, self.layer)
        self.backbone_, self.input_size_ = bb, resolve_input_size(bb, self.input_size)
        kw = dict(input_size=self.input_size_, batch_size=self.batch_size, device=self.device,
                  cache_dir=self.cache_dir, progress=self.progress)
        X = select(extract(bb, paths, **kw), self.layer, self.pooling, bb)
        self.reducer_ = Reducer(self.reduction, 1.0 if self.ratio is None else self.ratio, self.basis).fit(X[fit_idx])
        flow = FLOW_PARAMS if self.estimator == "flow" else {}
        self.estimator_ = make_estimator(self.estimator, seed=self.seed, **flow).fit(self.reducer_.transform(X[fit_idx]))
        cal = self.estimator_.score_samples(self.reducer_.transform(X[cal_idx]))
        self._calibrate(cal, len(fit_idx))
        self.weights_sha256_ = weights_sha256(bb)
        self.probe_ = self._probe()
        self.patch_model_, self.map_scale_ = None, None
        if self.maps:
            M = extract_maps(bb, paths, self.map_layers, **kw)
            self.patch_model_ = PatchModel(**MAP_CONFIG).fit(M[fit_idx])
            peaks = self._maps_of(M[cal_idx]).max(axis=(1, 2))
            self.map_scale_ = (float(np.median(peaks)), float(peaks.max()))
        return self

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Fitting and calibration rows: a seeded permutation, the first ``round(fraction * n)`` calibrate."""
        fit, cal = calibration_split(n, self.calibration_fraction, self.seed)
        try:
            conformal_rank(len(cal), self.fpr)
        except ValueError as err:
            raise ValueError(f"calibration_fraction {self.calibration_fraction} of {n} good images: {err}") from err
        return fit, cal

    def _calibrate(self, scores: np.ndarray, n_fit: int) -> None:
        self.calibration_scores_ = np.sort(scores)
        self.n_fit_, self.n_calibration_ = n_fit, len(scores)
        self.threshold_ = conformal_threshold(scores, self.fpr)
        self.expected_fpr_ = expected_fpr(len(scores), self.fpr)
        self.fpr_bound_ = fpr_upper_bound(len(scores), self.fpr, 0.95)

    # --- scoring ------------------------------------------------------------------------------

    def score_samples(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Anomaly score of each image, higher = more anomalous; a bad image raises `tad.data.DataError`."""
        check_is_fitted(self)
        return self._forward(list(paths), maps=False)[0]

    def score(self, paths: Sequence[str | Path]) -> pd.DataFrame:
        """Per image: ``score``, ``percentile`` among the calibration scores and ``anomalous`` (above threshold).

        A bad image raises `tad.data.DataError` naming it; `iter_scores` skips such images instead.
        """
        s = self.score_samples(paths)
        return pd.DataFrame({"path": [str(p) for p in paths], "score": s,
                             "percentile": calibration_percentile(self.calibration_scores_, s),
                             "anomalous": s > self.threshold_})

    def iter_scores(self, paths: Sequence[str | Path], *, chunk: int = 64,
                    maps: bool = False) -> Iterator[tuple[pd.DataFrame, list[np.ndarray | None]]]:
        """Score images ``chunk`` at a time, skipping unreadable ones: per chunk a table and its maps.

        Yields
        ------
        rows : DataFrame
            ``path``, ``score``, ``percentile``, ``verdict`` ("pass", "fail", or "error" for an image that
            could not be read, whose ``error`` says why; its score is NaN).
        maps : list
            Per row, its (`MAP_RESOLUTION`, `MAP_RESOLUTION`) anomaly map (with ``maps=True``), else None.
        """
        check_is_fitted(self)
        if maps and self.patch_model_ is None:
            raise ValueError("this detector has no map model: fit it with maps=True (tad fit without --no-maps)")
        paths = list(paths)
        for start in range(0, len(paths), chunk):
            part = paths[start:start + chunk]
            errors = {}
            try:
                scores, grids = self._forward(part, maps)
            except DataError:  # find the bad images, then score the rest
                for p in part:
                    try:
                        load_image(p)
                    except DataError as err:
                        errors[p] = " ".join(str(err).split())
                good = [p for p in part if p not in errors]
                scores, grids = self._forward(good, maps) if good else (np.empty(0), None)
            ok = iter(range(len(scores)))
            rows, out_maps = [], []
            for p in part:
                if p in errors:
                    rows.append((str(p), np.nan, np.nan, "error", errors[p]))
                    out_maps.append(None)
                    continue
                i = next(ok)
                s = float(scores[i])
                rows.append((str(p), s, float(calibration_percentile(self.calibration_scores_, [s])[0]),
                             "fail" if s > self.threshold_ else "pass", ""))
                out_maps.append(grids[i] if grids is not None else None)
            yield pd.DataFrame(rows, columns=["path", "score", "percentile", "verdict", "error"]), out_maps

    def anomaly_maps(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Anomaly maps of the images, shape (n, `MAP_RESOLUTION`, `MAP_RESOLUTION`), float32."""
        check_is_fitted(self)
        if self.patch_model_ is None:
            raise ValueError("this detector has no map model: fit it with maps=True")
        return self._forward(list(paths), maps=True)[1]

    def _forward(self, paths: list, maps: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores (and maps) of images from one pass through the backbone, nothing cached."""
        bb, layers = self.backbone_, parse_layers(self.backbone_, self.layer)

        def summarise(out: list[torch.Tensor]) -> dict[str, torch.Tensor]:
            res = {f"layer{i}": p for i, p in zip(layers, pool([out[i - 1] for i in layers]))}
            if maps:
                res["maps"] = concatenated_maps(out, self.map_layers)
            return res

        arrays = backbone_outputs(bb, paths, summarise, input_size=self.input_size_, batch_size=self.batch_size,
                                  device=self.device, progress=False)
        X = select({i: arrays[f"layer{i}"] for i in layers}, self.layer, self.pooling, bb)
        return self._scores_of(X), (self._maps_of(arrays["maps"]) if maps else None)

    def _scores_of(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.score_samples(self.reducer_.transform(X))

    def _maps_of(self, M: np.ndarray) -> np.ndarray:
        return upsample_maps(self.patch_model_.score_maps(M), MAP_RESOLUTION, MAP_SIGMA)

    def _probe(self) -> np.ndarray:
        """Pooled features of a fixed noise image at the input size: weights, size and preprocessing in one."""
        bb, size = self.backbone_, self.input_size_
        g = torch.Generator().manual_seed(_PROBE_SEED)
        x = torch.rand((1, 3, size, size), generator=g)
        mean, std = torch.tensor(bb.mean).view(1, 3, 1, 1), torch.tensor(bb.std).view(1, 3, 1, 1)
        layers = parse_layers(bb, self.layer)
        with torch.inference_mode():
            out = bb.to("cpu").eval()((x - mean) / std)
            pooled = {i: p.float().numpy() for i, p in zip(layers, pool([out[i - 1] for i in layers]))}
        bb.to(self.device)
        return select(pooled, self.layer, self.pooling, bb)[0]

    # --- saving and loading -----------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the detector to ``path`` (safetensors arrays + JSON header; no pickle), atomically."""
        from safetensors.numpy import save

        check_is_fitted(self)
        arrays = self._arrays()
        header = self._header(arrays)
        data = save(arrays, metadata={_HEADER_KEY: json.dumps(header, sort_keys=True)})
        return atomic_write(path, lambda f: f.write(data))

    @classmethod
    def load(cls, path: str | Path, *, weights: str | Path | None = None, device: str = "cpu",
             batch_size: int = 32) -> Detector:
        """Read a detector file, check it against this installation, and rebuild the detector.

        Parameters
        ----------
        weights : "pretrained", "random" or path, optional
            Where the backbone's weights come from; default as recorded at fit. Their SHA-256 must match.

        Raises
        ------
        DetectorFileError
            One line naming the file: missing, a pickle, truncated or corrupt, not a detector, a newer
            format or feature version, altered arrays, other backbone weights, or other features (input
            size, preprocessing) than at fit.
        """
        path = Path(path)
        header, arrays = _read(path)

        def refuse(why: str) -> DetectorFileError:
            return DetectorFileError(f"detector file {path}: {why}")

        if header.get("format_version", 0) > FORMAT_VERSION:
            raise refuse(f"format version {header['format_version']} was written by a newer tad "
                         f"({header.get('tad_version')}); this tad {__version__} reads version {FORMAT_VERSION}")
        if header.get("feature_version") != FEATURE_VERSION or header.get("maps_version") != MAPS_VERSION:
            raise refuse(f"features version {header.get('feature_version')}/{header.get('maps_version')} differs from "
                         f"this tad's {FEATURE_VERSION}/{MAPS_VERSION}: refit the detector")
        if _arrays_sha256(arrays) != header.get("arrays_sha256"):
            raise refuse("its arrays do not match the SHA-256 recorded in its header (altered or corrupt)")
        try:
            det = cls(**header["config"], device=device, batch_size=batch_size)
            if weights is not None:
                det.weights = weights
            det._restore(header, arrays)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise refuse(f"inconsistent content ({type(err).__name__}: {' '.join(str(err).split())})") from err
        bb_info = header["backbone"]
        try:
            bb = load_backbone(det.backbone, weights=det.weights)
        except Exception as err:  # WeightsUnavailable, a missing weights file
            raise refuse(f"its backbone cannot be loaded here: {' '.join(str(err).split())}") from err
        found = weights_sha256(bb)
        if found != bb_info["weights_sha256"]:
            raise refuse(f"backbone {det.backbone} weights loaded here ({bb.weights['source']}) have SHA-256 "
                         f"{found[:16]}..., the detector was fitted with {bb_info['weights_sha256'][:16]}... "
                         f"({bb_info['source']})")
        det.backbone_ = bb.to(device)
        probe = det._probe()
        ref = det.probe_
        if probe.shape != ref.shape or np.linalg.norm(probe - ref) > 1e-2 * np.linalg.norm(ref):
            raise refuse(f"features of the check image differ from those at fit (input size {det.input_size_} px, "
                         "preprocessing or weights changed): refit the detector")
        return det

    def _arrays(self) -> dict[str, np.ndarray]:
        a = {"calibration_scores": self.calibration_scores_, "probe": self.probe_,
             "reducer.mean": self.reducer_.mean_, "reducer.components": self.reducer_.components_,
             "reducer.explained_variance": self.reducer_.explained_variance_}
        e = self.estimator_
        if isinstance(e, MVG):
            a |= {"mvg.location": e.location_, "mvg.covariance": e.covariance_, "mvg.precision": e.precision_}
        elif isinstance(e, KNN):
            a |= {"knn.train": e.train_}
        else:
            a |= {"flow.kept": e.kept_, "flow.mean": e.mean_, "flow.scale": e.scale_}
            a |= {f"flow.state.{k}": v.detach().cpu().numpy() for k, v in e.flow_.state_dict().items()}
        if self.patch_model_ is not None:
            pm = self.patch_model_
            a |= {"maps.mean": pm.mean_, "maps.location": pm.location_, "maps.precision": pm.precision_,
                  "maps.shrinkage": pm.shrinkage_}
            if pm.components_ is not None:
                a["maps.components"] = pm.components_
        return {k: np.ascontiguousarray(v) for k, v in a.items()}

    def _header(self, arrays: dict[str, np.ndarray]) -> dict:
        e, v, bb = self.estimator_, self.reducer_.view_, self.backbone_
        config = self.get_params()
        for runtime in ("device", "batch_size", "cache_dir", "progress"):
            config.pop(runtime)
        config["weights"] = str(config["weights"])
        config["map_layers"] = list(config["map_layers"])
        estimator = {"name": self.estimator}
        if isinstance(e, MVG):
            estimator["shrinkage"] = e.shrinkage_
        elif isinstance(e, KNN):
            estimator["k"] = e.k
        else:
            estimator["params"] = e.get_params()
            estimator["final_loss"] = e.final_loss_
        return {
            "format": "tad detector", "format_version": FORMAT_VERSION, "tad_version": __version__,
            "feature_version": FEATURE_VERSION, "maps_version": MAPS_VERSION, "config": config,
            "backbone": {"name": bb.name, "tag": bb.weights["tag"], "source": bb.weights["source"],
                         "file_sha256": bb.weights.get("sha256"), "weights_sha256": self.weights_sha256_},
            "input_size": self.input_size_,
            "reduction": {"method": v.method, "ratio": v.ratio, "basis": v.basis,
                          "kept_axes": [v.axes.start, v.axes.stop], "n_null": v.n_null, "n_null_kept": v.n_null_kept,
                          "basis_dependent": v.basis_dependent, "d": int(self.reducer_.mean_.size)},
            "estimator": estimator,
            "calibration": {"rule": "split conformal: flag score > the k-th smallest of n held-out good scores, "
                                    "k = ceil((n + 1)(1 - fpr))",
                            "n_fit": self.n_fit_, "n_calibration": self.n_calibration_, "fpr_target": self.fpr,
                            "k": conformal_rank(self.n_calibration_, self.fpr), "threshold": self.threshold_,
                            "expected_fpr": self.expected_fpr_, "fpr_bound_95": self.fpr_bound_},
            "maps": None if self.patch_model_ is None else {
                **MAP_CONFIG, "layers": list(self.map_layers), "grid": list(self.patch_model_.grid_),
                "resolution": MAP_RESOLUTION, "sigma": MAP_SIGMA, "scale": list(self.map_scale_)},
            "arrays_sha256": _arrays_sha256(arrays),
        }

    def _restore(self, header: dict, a: dict[str, np.ndarray]) -> None:
        """Rebuild the fitted attributes from a checked header and its arrays."""
        self.input_size_ = int(header["input_size"])
        if self.input_size is not None and self.input_size != self.input_size_:
            raise ValueError(f"input size {self.input_size_} differs from its configuration's {self.input_size}")
        red = header["reduction"]
        r = Reducer(self.reduction, 1.0 if self.ratio is None else self.ratio, self.basis)
        r.mean_, r.components_ = a["reducer.mean"], a["reducer.components"]
        r.explained_variance_ = a["reducer.explained_variance"]
        r.view_ = View(red["method"], red["ratio"], red["basis"], slice(*red["kept_axes"]), red["n_null"],
                       red["n_null_kept"], red["basis_dependent"])
        self.reducer_ = r
        est = header["estimator"]
        if self.estimator == "mvg":
            e = MVG()
            e.location_, e.covariance_, e.precision_ = a["mvg.location"], a["mvg.covariance"], a["mvg.precision"]
            e.shrinkage_ = float(est["shrinkage"])
        elif self.estimator.startswith("knn"):
            e = KNN(k=int(est["k"]))
            e.train_ = a["knn.train"]
        else:
            e = Flow(**est["params"])
            e.kept_, e.mean_, e.scale_ = a["flow.kept"], a["flow.mean"], a["flow.scale"]
            e.final_loss_ = float(est["final_loss"])
            import zuko
            flow = zuko.flows.MAF(int(e.kept_.sum()), transforms=e.transforms, hidden_features=(e.hidden, e.hidden))
            prefix = "flow.state."
            flow.load_state_dict({k[len(prefix):]: torch.from_numpy(v.copy()) for k, v in a.items()
                                  if k.startswith(prefix)}, strict=True)
            e.flow_ = flow.to(e.device).eval()
        self.estimator_ = e
        cal = header["calibration"]
        self._calibrate(a["calibration_scores"], int(cal["n_fit"]))
        if self.threshold_ != cal["threshold"] or self.expected_fpr_ != cal["expected_fpr"]:
            raise ValueError("its threshold does not follow from its calibration scores")
        self.weights_sha256_ = header["backbone"]["weights_sha256"]
        self.probe_ = a["probe"]
        self.patch_model_, self.map_scale_ = None, None
        if header["maps"] is not None:
            m = header["maps"]
            pm = PatchModel(**MAP_CONFIG)
            pm.grid_ = tuple(m["grid"])
            pm.mean_, pm.components_ = a["maps.mean"], a.get("maps.components")
            pm.location_, pm.precision_, pm.shrinkage_ = a["maps.location"], a["maps.precision"], a["maps.shrinkage"]
            self.patch_model_, self.map_scale_ = pm, tuple(m["scale"])

    def describe(self) -> str:
        """The configuration and calibration in a few lines, as `tad fit` prints them."""
        check_is_fitted(self)
        red = "no reduction" if self.reduction == "none" else f"{self.reduction.upper()} {self.ratio:g} ({self.basis})"
        return (f"{self.backbone} ({self.backbone_.weights['tag']}), {self.input_size_} px, layer {self.layer}, "
                f"{self.pooling} pooling, {red}, {self.estimator}"
                f"{'; maps: layers ' + '+'.join(map(str, self.map_layers)) if self.patch_model_ is not None else ''}\n"
                f"fitted on {self.n_fit_} good images; threshold {self.threshold_:.6g} calibrated on "
                f"{self.n_calibration_} held-out good images: target FPR {self.fpr:g}, expected "
                f"{self.expected_fpr_:.4f}, below {self.fpr_bound_:.4f} with 95 % probability")


def weights_sha256(backbone: Backbone) -> str:
    """SHA-256 of a backbone's state: every parameter and buffer, by name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in sorted(backbone.model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def overlay(image: Image.Image, amap: np.ndarray, scale: tuple[float, float], alpha: float = 0.6) -> Image.Image:
    """The image at the map's size with the map drawn over it where it exceeds good calibration images.

    Colour and opacity grow from ``scale[0]`` (the median good calibration image's hottest point: nothing
    drawn below) to ``scale[1]`` (the hottest point of any good calibration image: full colour above).
    """
    import matplotlib

    low, high = scale
    h, w = amap.shape
    level = np.clip((amap - low) / max(high - low, 1e-12 * max(abs(high), 1.0)), 0, 1)
    colour = matplotlib.colormaps["inferno"](0.35 + 0.65 * level)[..., :3]
    base = np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float64) / 255
    weight = ((alpha / 2) * (1 + level) * (amap > low))[..., None]  # half opacity just above low, full at high
    return Image.fromarray(np.rint(255 * ((1 - weight) * base + weight * colour)).astype(np.uint8))


# --- helpers -----------------------------------------------------------------------------------

def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays of a detector file, or a `DetectorFileError` saying why they cannot be had."""
    from safetensors.numpy import load

    try:
        data = path.read_bytes()
    except OSError as err:
        raise DetectorFileError(f"detector file {path} cannot be read: {err.strerror or err}") from err
    if data[:1] == b"\x80" or data[:2] == b"PK":
        raise DetectorFileError(f"detector file {path} is a pickle or a torch/zip archive, not a tad detector "
                                "(safetensors): tad never loads pickles")
    try:
        n = int.from_bytes(data[:8], "little")
        if len(data) < 8 or n > len(data) - 8:
            raise ValueError(f"its header claims {n} bytes, {max(len(data) - 8, 0)} follow")
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
        arrays = load(data)
    except Exception as err:  # safetensors, JSON and UnicodeDecode errors alike: the file is not whole
        raise DetectorFileError(f"detector file {path} is truncated or corrupt (not a complete safetensors file: "
                                f"{' '.join(str(err).split())})") from err
    if _HEADER_KEY not in meta:
        raise DetectorFileError(f"detector file {path} is a safetensors file without a tad detector header")
    try:
        header = json.loads(meta[_HEADER_KEY])
    except json.JSONDecodeError as err:
        raise DetectorFileError(f"detector file {path} has a corrupt header ({err})") from err
    if not isinstance(header, dict) or header.get("format") != "tad detector":
        raise DetectorFileError(f"detector file {path} has no tad detector header")
    return header, arrays
