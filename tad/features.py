"""CNN features: image files in, one (n_images, 3, C) array of pooled activations per layer out, cached on disk.

`backbone_outputs` is the one path from files to activations (load, resize, normalise, forward), each
batch summarised by a function: `extract` pools every layer (avg, max, min), `tad.maps.extract_maps` keeps
the spatial maps. `select` picks a layer (or "all") and a pooling or a concatenation of poolings
("min+avg") as a flat feature matrix; `split_features` extracts a split's training and test images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tad.backbones import Backbone, parse_layers
from tad.cache import cached_arrays, content_key
from tad.data import Split, load_image

__all__ = ["POOLINGS", "POOLING_CHOICES", "FEATURE_VERSION", "Features", "extract", "split_features",
           "backbone_outputs", "resolve_input_size", "select", "select_pair", "cache_key", "preprocess", "pool"]

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
    size = resolve_input_size(backbone, input_size)
    if noise_std < 0:
        raise ValueError(f"noise_std {noise_std!r} must be >= 0")
    key = cache_key(backbone, paths, size, noise_std, noise_seed)

    def compute() -> dict[str, np.ndarray]:
        return backbone_outputs(backbone, paths, _pooled_layers, input_size=size, noise_std=noise_std,
                                noise_seed=noise_seed, batch_size=batch_size, num_workers=num_workers,
                                device=device, progress=progress)

    shapes = {f"layer{i}": (len(paths), 3, c) for i, c in enumerate(backbone.channels, 1)}
    arrays = cached_arrays(cache_dir, f"{backbone.name}-{size}px", key, compute, shapes)
    return {i: arrays[f"layer{i}"] for i in range(1, backbone.n_layers + 1)}


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

    Returns
    -------
    train, test : dict of int to ndarray of shape (n_images, 3, C_layer)
        As `extract`; ``n_images`` is ``n_train * (1 + n_augment)`` for ``train``.
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


def backbone_outputs(
    backbone: Backbone,
    paths: Sequence[str | Path],
    summarise: Callable[[list[torch.Tensor]], dict[str, torch.Tensor]],
    *,
    input_size: int | None = None,
    noise_std: float = 0.0,
    noise_seed: int = 0,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Every image through the backbone, each batch's layer outputs summarised, the summaries concatenated.

    Images are read with `tad.data.load_image`, resized by `preprocess`, optionally noised, normalised with
    the backbone's mean and std, and passed forward in batches.

    Parameters
    ----------
    backbone : Backbone
    paths : sequence of path
    summarise : callable
        Maps the backbone's outputs for a batch, a list of (B, C_layer, H_layer, W_layer) tensors, to named
        (B, ...) tensors (e.g. pooled vectors, or resized maps).
    input_size, noise_std, noise_seed, batch_size, num_workers, device, progress
        As in `extract`.

    Returns
    -------
    dict of str to ndarray, float32
        Each name's (n_images, ...) array, images in the order of ``paths``.
    """
    size = resolve_input_size(backbone, input_size)
    if len(paths) == 0:
        raise ValueError("paths is empty: no images to extract features from")
    backbone = backbone.to(device).eval()
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1)
    if num_workers is None:
        num_workers = 4 if device.startswith("cuda") else 1
    loader = DataLoader(_Images(paths, size, noise_std, noise_seed), batch_size=batch_size,
                        num_workers=num_workers, pin_memory=device.startswith("cuda"))
    chunks: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for x in tqdm(loader, desc=f"{backbone.name} {size}px", disable=not progress, unit="batch"):
            x = (x.to(device, non_blocking=True) - mean) / std
            for name, out in summarise(backbone(x)).items():
                chunks.setdefault(name, []).append(out.float().cpu().numpy())
    return {name: np.concatenate(c) for name, c in chunks.items()}


def resolve_input_size(backbone: Backbone, input_size: int | None) -> int:
    """The square side images are resized to: ``input_size``, or by default the weights' native size."""
    size = input_size or backbone.input_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"input_size {input_size!r} must be an int >= 32")
    return size


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


def select_pair(features: tuple[Features, Features], layer: int | str, pooling: str,
                backbone: Backbone) -> tuple[np.ndarray, np.ndarray]:
    """`select` applied to a split's (train, test) features, as `tad.sweep.split_features` returns them:
    the training matrix X and the test matrix Y of one layer and pooling."""
    train, test = features
    return select(train, layer, pooling, backbone), select(test, layer, pooling, backbone)


def cache_key(backbone: Backbone, paths: Sequence[str | Path], size: int, noise_std: float, noise_seed: int) -> str:
    """SHA-256 over everything that determines the features (file contents, not their names)."""
    return content_key(paths, {
        "weights": backbone.weights, "size": size, "noise_std": float(noise_std),
        "noise_seed": int(noise_seed) if noise_std else 0, "version": FEATURE_VERSION,
    })


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


def _pooled_layers(maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"layer{i}": pooled for i, pooled in enumerate(pool(maps), 1)}
