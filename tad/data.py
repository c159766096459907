"""Datasets for transfer anomaly detection: MVTec AD (local folder or official download) and ELPV.

Every loader returns a :class:`Split` of file paths with labels; images are read lazily with :func:`load_image`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

MVTEC_URL = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
    "420938113-1629952094/mvtec_anomaly_detection.tar.xz"
)
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
MVTEC_CATEGORIES: dict[str, tuple[int, int, int]] = {
    "bottle": (209, 20, 63),
    "cable": (224, 58, 92),
    "capsule": (219, 23, 109),
    "carpet": (280, 28, 89),
    "grid": (264, 21, 57),
    "hazelnut": (391, 40, 70),
    "leather": (245, 32, 92),
    "metal_nut": (220, 22, 93),
    "pill": (267, 26, 141),
    "screw": (320, 41, 119),
    "tile": (230, 33, 84),
    "toothbrush": (60, 12, 30),
    "transistor": (213, 60, 40),
    "wood": (247, 19, 60),
    "zipper": (240, 32, 119),
}
ELPV_CATEGORIES = ("elpv_mono", "elpv_poly")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
_ELPV_DEFECTS = {0.0: "good", 1 / 3: "possibly_defective", 2 / 3: "likely_defective", 1.0: "defective"}


class DataError(ValueError):
    """Bad input data; the message names the offending file or folder and what was expected."""


class DatasetUnavailable(RuntimeError):
    """A dataset could not be obtained (e.g. offline); the message says how to place it by hand."""


class DataWarning(UserWarning):
    """The data deviates from the official dataset (e.g. split counts) but can still be used."""


@dataclass(frozen=True)
class Sample:
    """One image: its path, label (0 good, 1 anomalous), defect type and optional ground-truth mask."""

    path: Path
    label: int
    defect: str
    mask: Path | None = None


@dataclass(frozen=True)
class Split:
    """Train (good only) and test (good and anomalous) samples of one category, with their provenance."""

    name: str
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    source: str

    @property
    def train_paths(self) -> list[Path]:
        """Paths of the training images, shape (n_train,)."""
        return [s.path for s in self.train]

    @property
    def test_paths(self) -> list[Path]:
        """Paths of the test images, shape (n_test,)."""
        return [s.path for s in self.test]

    @property
    def test_labels(self) -> np.ndarray:
        """Test labels (0 good, 1 anomalous), int array of shape (n_test,)."""
        return np.array([s.label for s in self.test], dtype=int)

    @property
    def test_masks(self) -> list[Path | None]:
        """Ground-truth mask path per test image (None where there is none), shape (n_test,)."""
        return [s.mask for s in self.test]


# --------------------------------------------------------------------------------------------------- images


def load_image(path: str | Path) -> Image.Image:
    """Read an image file as an 8-bit RGB image.

    Grayscale (L) is replicated to three channels; alpha (LA, RGBA, transparent P) is dropped, not composited,
    so the stored colour values are kept. 16-bit and 32-bit integer modes (``I;16*``, ``I``, as PIL reads 16-bit
    PNG/TIFF) are taken as 16-bit samples and scaled by 255/65535 (not by the image's min/max), so 65535 -> 255.

    Parameters
    ----------
    path : str or Path
        Image file.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"`` image, size (width, height) of the file.

    Raises
    ------
    DataError
        If the file is missing, not an image, or truncated.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb(image)
    except FileNotFoundError as err:
        raise DataError(f"image file {path} does not exist") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise DataError(f"cannot read image file {path}: expected a complete image file ({err})") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float64)
        values = np.clip(np.rint(values * (255 / 65535)), 0, 255).astype(np.uint8)
        return Image.fromarray(values).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La"):
        image = image.getchannel("L")
    return image.convert("RGB")


def load_mask(path: str | Path, size: tuple[int, int], *, image: str | Path | None = None) -> np.ndarray:
    """Read a ground-truth mask as a boolean array.

    Parameters
    ----------
    path : str or Path
        Mask file (any mode; pixels >= 128 after conversion to 8-bit grayscale are anomalous).
    size : tuple of int
        Expected (width, height), i.e. ``load_image(image).size``.
    image : str or Path, optional
        The image the mask belongs to, named in the error message.

    Returns
    -------
    np.ndarray
        Bool array of shape (height, width).

    Raises
    ------
    DataError
        If the mask cannot be read or its size differs from ``size``.
    """
    path = Path(path)
    try:
        with Image.open(path) as mask:
            mask.load()
            gray = np.asarray(_to_rgb(mask).convert("L"))
    except FileNotFoundError as err:
        raise DataError(f"mask file {path} does not exist") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise DataError(f"cannot read mask file {path}: expected a complete image file ({err})") from err
    found = (gray.shape[1], gray.shape[0])
    if found != tuple(size):
        of = f"image {image}" if image is not None else "its image"
        raise DataError(f"mask {path} has size {found} (width, height) but {of} has size {tuple(size)}")
    return gray >= 128


# --------------------------------------------------------------------------------------------------- MVTec AD


def _resolve_root(root: str | Path | None) -> Path:
    if root is None:
        env = os.environ.get("TAD_DATA")
        if not env:
            raise DataError("no data root given: pass root= or set the TAD_DATA environment variable")
        root = env
    return Path(root).expanduser()


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_mvtec_category(folder: Path) -> bool:
    return (folder / "train" / "good").is_dir() and (folder / "test").is_dir()


def available_categories(root: str | Path | None = None) -> list[str]:
    """Names of the sub-folders of ``root`` in MVTec layout (``train/good`` and ``test`` present), sorted."""
    return [p.name for p in _subdirs(_resolve_root(root)) if _is_mvtec_category(p)]


def _scan(folder: Path, require_masks: bool) -> tuple[list[Sample], list[Sample]]:
    train = [Sample(p, 0, "good") for p in _images(folder / "train" / "good")]
    test = []
    for defect_dir in _subdirs(folder / "test"):
        defect = defect_dir.name
        for p in _images(defect_dir):
            if defect == "good":
                test.append(Sample(p, 0, "good"))
                continue
            mask = folder / "ground_truth" / defect / f"{p.stem}_mask.png"
            if not mask.is_file():
                if require_masks:
                    raise DataError(
                        f"defect folder {defect_dir}: missing ground-truth mask {mask} for image {p.name}"
                    )
                mask = None
            test.append(Sample(p, 1, defect, mask))
    return train, test


def _counts(train: list[Sample], test: list[Sample]) -> tuple[int, int, int]:
    n_bad = sum(s.label for s in test)
    return len(train), len(test) - n_bad, n_bad


def load_mvtec(root: str | Path | None, category: str, *, require_masks: bool = False) -> Split:
    """Load one category in MVTec AD layout.

    Expects ``root/category/train/good/*``, ``root/category/test/<defect>/*`` (``good`` for normal images) and
    ``root/category/ground_truth/<defect>/<stem>_mask.png``. Image files are .png .jpg .jpeg .bmp .tif .tiff
    (any case), sorted by name, hidden files ignored. For the 15 official categories the split counts are
    compared with :data:`MVTEC_CATEGORIES` and a :class:`DataWarning` names any deviation; other folder names
    are accepted without that check.

    Parameters
    ----------
    root : str, Path or None
        Folder holding the categories; None reads the ``TAD_DATA`` environment variable.
    category : str
        Sub-folder name, e.g. ``"bottle"``.
    require_masks : bool, default False
        Raise if a defective test image has no mask (otherwise its ``mask`` is None).

    Returns
    -------
    Split
        ``train`` (n_train good samples) and ``test`` (good and defective samples), in sorted order.

    Raises
    ------
    DataError
        If the category folder is missing, ``train/good`` is empty, the test set lacks a label, or a required
        mask is missing.
    """
    root = _resolve_root(root)
    folder = root / category
    if not folder.is_dir():
        found = available_categories(root) if root.is_dir() else []
        raise DataError(
            f"category folder {folder} not found; categories under {root}: {found or 'none'}; "
            f"official MVTec AD categories: {sorted(MVTEC_CATEGORIES)}"
        )
    train, test = _scan(folder, require_masks)
    if not train:
        raise DataError(
            f"training folder {folder / 'train' / 'good'} holds no images (expected {sorted(IMAGE_SUFFIXES)} files)"
        )
    n_train, n_good, n_bad = _counts(train, test)
    if n_good == 0 or n_bad == 0:
        raise DataError(
            f"test folder {folder / 'test'} needs good and defective images: found {n_good} in test/good and "
            f"{n_bad} in defect sub-folders"
        )
    expected = MVTEC_CATEGORIES.get(category)
    if expected is not None and expected != (n_train, n_good, n_bad):
        warnings.warn(
            f"MVTec AD {category} at {folder}: expected (train good, test good, test defective) = {expected}, "
            f"found {(n_train, n_good, n_bad)}",
            DataWarning,
            stacklevel=2,
        )
    return Split(category, tuple(train), tuple(test), f"MVTec AD layout at {folder}")


def count_report(root: str | Path | None = None) -> pd.DataFrame:
    """Split counts of every category under ``root`` next to the official ones.

    Returns
    -------
    pandas.DataFrame
        One row per category (index ``category``) with columns ``train_good``, ``test_good``,
        ``test_defective``, ``official_train_good``, ``official_test_good``, ``official_test_defective``
        (missing for non-official categories) and ``matches`` (False for non-official categories).
    """
    root = _resolve_root(root)
    rows = []
    for name in available_categories(root):
        found = _counts(*_scan(root / name, require_masks=False))
        official = MVTEC_CATEGORIES.get(name)
        rows.append({
            "category": name,
            "train_good": found[0], "test_good": found[1], "test_defective": found[2],
            "official_train_good": official[0] if official else pd.NA,
            "official_test_good": official[1] if official else pd.NA,
            "official_test_defective": official[2] if official else pd.NA,
            "matches": official == found,
        })
    columns = ["category", "train_good", "test_good", "test_defective", "official_train_good",
               "official_test_good", "official_test_defective", "matches"]
    frame = pd.DataFrame(rows, columns=columns).set_index("category")
    return frame.astype({c: "Int64" for c in columns[4:7]} | {"matches": bool})


def _manual_instructions(root: Path, url: str) -> str:
    return (
        f"To place MVTec AD by hand: download {url} (or the archive from "
        "https://www.mvtec.com/company/research/datasets/mvtec-ad), extract it so that "
        f"{root}/<category>/train/good/*.png, {root}/<category>/test/<defect>/*.png and "
        f"{root}/<category>/ground_truth/<defect>/*_mask.png exist, then set TAD_DATA={root} or pass that root."
    )


def download_mvtec(
    root: str | Path | None = None,
    *,
    url: str = MVTEC_URL,
    sha256: str = MVTEC_SHA256,
    timeout: float = 30,
) -> Path:
    """Download, verify and extract the MVTec AD archive into ``root``.

    The archive is written to ``root/<archive>.part`` (resumed with an HTTP Range request if present; restarted
    when the server ignores Range), checked against ``sha256``, renamed to ``root/<archive>`` and kept there.
    Extraction refuses links, devices and any member that would land outside ``root``; nothing is extracted
    unless every member passes.

    Parameters
    ----------
    root : str, Path or None
        Target folder; None reads ``TAD_DATA``.
    url : str
        Archive URL.
    sha256 : str
        Expected SHA-256 hex digest of the archive.
    timeout : float, default 30
        Socket timeout in seconds.

    Returns
    -------
    Path
        ``root``, now holding the extracted categories.

    Raises
    ------
    DatasetUnavailable
        If the download fails (network) or ``root`` cannot be created or written (e.g. read-only); the message
        says how to place the data by hand.
    DataError
        If the checksum does not match (the download is deleted) or the archive holds unsafe members.
    """
    root = _resolve_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetUnavailable(
            f"cannot create the data root {root} to download MVTec AD into: {err}. " + _manual_instructions(root, url)
        ) from err
    name = Path(urllib.parse.urlparse(url).path).name or "mvtec_anomaly_detection.tar.xz"
    archive = root / name
    if not archive.is_file():
        part = root / f"{name}.part"
        try:
            _fetch(url, part, timeout)
        except (urllib.error.URLError, HTTPException, OSError) as err:
            raise DatasetUnavailable(
                f"could not download MVTec AD from {url}: {err}. " + _manual_instructions(root, url)
            ) from err
        digest = _sha256(part)
        if digest != sha256.lower():
            part.unlink()
            raise DataError(
                f"SHA-256 mismatch for {part} downloaded from {url}: expected {sha256.lower()}, got {digest}; "
                "the file was deleted"
            )
        os.replace(part, archive)
    _safe_extract(archive, root)
    return root


def _fetch(url: str, part: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to fetch: the partial file is complete
            return
        raise
    with response:
        if response.status != 206:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, desc=part.name, disable=None
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_extract(archive: Path, root: Path) -> None:
    base = root.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            target = (base / member.name).resolve()
            if os.path.isabs(member.name) or (target != base and base not in target.parents):
                raise DataError(f"archive {archive}: member {member.name!r} would be written outside {root}")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"archive {archive}: member {member.name!r} is a link or device, expected files")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(base, members=members, filter="data")
        else:
            tar.extractall(base, members=members)


def ensure_mvtec(
    root: str | Path | None,
    categories: list[str] | tuple[str, ...],
    *,
    download: bool = True,
    url: str = MVTEC_URL,
    sha256: str = MVTEC_SHA256,
) -> tuple[list[str], list[str]]:
    """Make the requested categories available, downloading once if some are missing.

    Never raises for being offline or for a read-only ``root``: a failed download gives one
    :class:`DataWarning` line and the categories already present are returned.

    Returns
    -------
    present, missing : list of str
        Requested categories found (after any download) and those still missing, in request order.
    """
    root = _resolve_root(root)

    def split() -> tuple[list[str], list[str]]:
        have = set(available_categories(root)) if root.is_dir() else set()
        return [c for c in categories if c in have], [c for c in categories if c not in have]

    present, missing = split()
    if missing and download:
        try:
            download_mvtec(root, url=url, sha256=sha256)
        except DatasetUnavailable as err:
            reason = str(err.__cause__ or err).replace("\n", " ")
            warnings.warn(
                f"MVTec AD categories {missing} unavailable under {root} (download failed: {reason}); "
                f"continuing with {present}",
                DataWarning,
                stacklevel=2,
            )
            return present, missing
        present, missing = split()
    return present, missing


# --------------------------------------------------------------------------------------------------- ELPV


def load_elpv(
    kind: str = "mono",
    *,
    seed: int = 0,
    test_good_fraction: float = 0.25,
    intermediate: str = "exclude",
) -> Split:
    """Split the ELPV solar-cell images of one cell type into train and test.

    Good cells have defect probability 0, anomalous cells probability 1; the intermediate cells (1/3, 2/3) are
    dropped (``intermediate="exclude"``) or counted as anomalous (``"anomalous"``). The good cells are shuffled
    with ``numpy.random.default_rng(seed)``; the first ``round(n_good * test_good_fraction)`` go to test, the
    rest to train. Test = those good cells + all anomalous cells. Both parts keep the order of ``labels.csv``.
    With the defaults: mono 441 train, 147 + 313 test; poly 690 train, 230 + 402 test.

    Parameters
    ----------
    kind : {"mono", "poly"}
        Cell type (``"elpv_mono"``/``"elpv_poly"`` also accepted).
    seed : int, default 0
        Seed of the good-cell shuffle.
    test_good_fraction : float, default 0.25
        Share of good cells held out for testing, in (0, 1).
    intermediate : {"exclude", "anomalous"}
        Handling of cells with probability 1/3 and 2/3.

    Returns
    -------
    Split
        Named ``elpv_<kind>``; paths point at the PNG files of the installed ``elpv_dataset`` package.
    """
    kind = kind.removeprefix("elpv_")
    if kind not in ("mono", "poly"):
        raise DataError(f"ELPV kind {kind!r} unknown: expected 'mono' or 'poly'")
    if intermediate not in ("exclude", "anomalous"):
        raise DataError(f"intermediate={intermediate!r} unknown: expected 'exclude' or 'anomalous'")
    if not 0 < test_good_fraction < 1:
        raise DataError(f"test_good_fraction={test_good_fraction} must lie strictly between 0 and 1")
    try:
        import elpv_dataset
        from elpv_dataset.__about__ import __version__
    except ImportError as err:
        raise DatasetUnavailable("ELPV needs the package elpv-dataset: pip install elpv-dataset") from err
    data = Path(elpv_dataset.__file__).parent / "data"
    good, bad = [], []
    for line in (data / "labels.csv").read_text().splitlines():
        if not line.strip():
            continue
        rel, prob, cell_type = line.split()
        if cell_type != kind:
            continue
        defect = min(_ELPV_DEFECTS.items(), key=lambda kv: abs(kv[0] - float(prob)))[1]
        if defect == "good":
            good.append(Sample(data / rel, 0, "good"))
        elif defect == "defective" or intermediate == "anomalous":
            bad.append(Sample(data / rel, 1, defect))
    n_test = round(len(good) * test_good_fraction)
    order = np.random.default_rng(seed).permutation(len(good))
    test_idx = set(order[:n_test].tolist())
    train = tuple(s for i, s in enumerate(good) if i not in test_idx)
    test = tuple(s for i, s in enumerate(good) if i in test_idx) + tuple(bad)
    source = (f"elpv-dataset {__version__}, {kind}, seed {seed}, test_good_fraction {test_good_fraction}, "
              f"intermediate {intermediate}")
    return Split(f"elpv_{kind}", train, test, source)


def load_split(
    name: str, root: str | Path | None = None, *, seed: int = 0, require_masks: bool = False
) -> Split:
    """Load ``name``: an ELPV name (:data:`ELPV_CATEGORIES`, split with ``seed``) or an MVTec category in ``root``."""
    if name in ELPV_CATEGORIES:
        return load_elpv(name, seed=seed)
    return load_mvtec(root, name, require_masks=require_masks)


# --------------------------------------------------------------------------------------------------- synthetic


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
    """Write a tiny MVTec-layout category of textured PNGs. For tests only.

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
