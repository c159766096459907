"""Pooled CNN features: image files in, one (n_images, 3, C) array per layer out, cached on disk.

One forward pass per image yields every layer and every pooling (avg, max, min); `select` then picks a
layer (or "all") and a pooling or a concatenation of poolings ("min+avg") as a flat feature matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tad.backbones import Backbone, parse_layers
from tad.data import load_image

POOLINGS = ("avg", "max", "min")
# Concatenations in the paper's order (table 4).
POOLING_CHOICES = ("min", "max", "avg", "min+max", "min+avg", "max+avg", "min+max+avg")
# Bump when anything that changes feature values changes (resizing, pooling, normalisation).
FEATURE_VERSION = 1

Features = dict[int, np.ndarray]  # layer -> (n_images, 3, C) float32, poolings in POOLINGS order


def extract(
    backbone: Backbone,
    paths: Sequence[str | Path],
    *,
    input_size: int | None = None,
    noise_std: float = 0.0,
    noise_seed: int = 0,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Features:
    """Pooled activations of every layer for every image.

    Parameters
    ----------
    backbone : Backbone
    paths : sequence of path
        Image files; any mode (grayscale, RGBA, 16-bit) is converted to RGB by `tad.data.load_image`.
    input_size : int, optional
        Square side the images are resized to (bicubic, antialiased); default the weights' native size.
    noise_std : float
        Standard deviation of Gaussian noise added to the [0, 1] image before normalisation
        (augmentation); 0 for none. Seeded by ``noise_seed`` and the image's index, so reproducible.
    batch_size, num_workers, device
        DataLoader and torch settings; ``num_workers=None`` picks 1 worker on CPU (decode overlaps the
        forward pass) and 4 on CUDA.
    cache_dir : path, optional
        Where to keep the result. Keyed by the image files' contents, the backbone's weights, the input
        size, the augmentation and `FEATURE_VERSION`; written atomically; a corrupt file is recomputed.

    Returns
    -------
    dict of int to ndarray of shape (n_images, 3, C_layer)
        Layer number (1-based) to avg, max and min pooled features.
    """
    size = input_size or backbone.input_size
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"input_size {input_size!r} must be an int >= 32")
    if noise_std < 0:
        raise ValueError(f"noise_std {noise_std!r} must be >= 0")
    if len(paths) == 0:
        raise ValueError("paths is empty: no images to extract features from")
    if cache_dir is None:
        return _compute(backbone, paths, size, noise_std, noise_seed, batch_size, num_workers, device, progress)
    key = cache_key(backbone, paths, size, noise_std, noise_seed)
    file = Path(cache_dir) / f"{backbone.name}-{size}px-{key[:20]}.npz"
    file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(file) + ".lock"):  # a second process waits, then reuses instead of recomputing
        cached = _read_cache(file, key, len(paths), backbone.n_layers)
        if cached is not None:
            return cached
        feats = _compute(backbone, paths, size, noise_std, noise_seed, batch_size, num_workers, device, progress)
        _write_cache(file, key, feats)
    return feats


def select(features: Features, layer: int | str, pooling: str, backbone: Backbone) -> np.ndarray:
    """Flat feature matrix for one layer (or ``"all"``, concatenated) and one pooling choice.

    Returns
    -------
    ndarray of shape (n_images, d), float64
    """
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"pooling {pooling!r} not in {POOLING_CHOICES}")
    idx = [POOLINGS.index(p) for p in pooling.split("+")]
    cols = [features[lay][:, i] for lay in parse_layers(backbone, layer) for i in idx]
    out = np.concatenate(cols, axis=1).astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"features of layer {layer!r}, pooling {pooling!r} contain NaN or inf")
    return out


def cache_key(backbone: Backbone, paths: Sequence[str | Path], size: int, noise_std: float, noise_seed: int) -> str:
    """SHA-256 over everything that determines the features (file contents, not their names)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(_file_digest(Path(p)))
    h.update(json.dumps({
        "weights": backbone.weights, "size": size, "noise_std": float(noise_std),
        "noise_seed": int(noise_seed) if noise_std else 0, "version": FEATURE_VERSION,
    }, sort_keys=True).encode())
    return h.hexdigest()


def preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image to a float (3, size, size) tensor in [0, 1]: bicubic, antialiased, no crop."""
    image = image.resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)


@torch.no_grad()
def pool(maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """(B, C, H, W) maps to (B, 3, C): average, max and min over positions."""
    return [torch.stack([m.mean((2, 3)), m.amax((2, 3)), m.amin((2, 3))], dim=1) for m in maps]


# --- helpers -----------------------------------------------------------------------------------

class _Images(Dataset):
    def __init__(self, paths: Sequence[str | Path], size: int, noise_std: float, noise_seed: int) -> None:
        self.paths, self.size, self.noise_std, self.noise_seed = list(paths), size, noise_std, noise_seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = preprocess(load_image(self.paths[i]), self.size)
        if self.noise_std:
            g = torch.Generator().manual_seed(self.noise_seed * 1_000_003 + i)
            x = (x + self.noise_std * torch.randn(x.shape, generator=g)).clamp_(0, 1)
        return x


def _compute(backbone, paths, size, noise_std, noise_seed, batch_size, num_workers, device, progress) -> Features:
    backbone = backbone.to(device).eval()
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1)
    if num_workers is None:
        num_workers = 4 if device.startswith("cuda") else 1
    loader = DataLoader(_Images(paths, size, noise_std, noise_seed), batch_size=batch_size,
                        num_workers=num_workers, pin_memory=device.startswith("cuda"))
    chunks: list[list[np.ndarray]] = [[] for _ in range(backbone.n_layers)]
    with torch.inference_mode():
        for x in tqdm(loader, desc=f"{backbone.name} {size}px", disable=not progress, unit="batch"):
            x = (x.to(device, non_blocking=True) - mean) / std
            for layer, pooled in enumerate(pool(backbone(x))):
                chunks[layer].append(pooled.float().cpu().numpy())
    return {i + 1: np.concatenate(c) for i, c in enumerate(chunks)}


def _file_digest(path: Path) -> bytes:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError as err:
        raise FileNotFoundError(f"image file {path} cannot be read: {err}") from err


def _read_cache(file: Path, key: str, n: int, n_layers: int) -> Features | None:
    arrays = _read_npz(file, key, [f"layer{i}" for i in range(1, n_layers + 1)])
    if arrays is None:
        return None
    feats = {i: arrays[f"layer{i}"] for i in range(1, n_layers + 1)}
    if any(f.shape[0] != n or f.shape[1] != 3 or not np.isfinite(f).all() for f in feats.values()):
        return None
    return feats


def _read_npz(file: Path, key: str, names: list[str]) -> dict[str, np.ndarray] | None:
    """The named arrays of a cache file written under ``key``; None if it is missing, stale or corrupt."""
    if not file.exists():
        return None
    try:
        with np.load(file) as z:
            if str(z["key"]) != key:
                return None
            return {name: z[name] for name in names}
    except Exception:  # truncated or corrupt file of any kind: recompute, never trust
        return None


def _write_cache(file: Path, key: str, feats: Features) -> None:
    _atomic_savez(file, key=np.array(key), **{f"layer{i}": a for i, a in feats.items()})


def _atomic_savez(file: Path, **arrays: np.ndarray) -> None:
    """`np.savez` to a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=file.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
