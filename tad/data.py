"""Datasets for transfer anomaly detection: MVTec AD (a local folder in its layout) and ELPV.

Every loader returns a :class:`Split` of file paths with labels; images are read lazily with :func:`load_image`.
The data root defaults to :func:`default_root`; `tad.download` fetches the official MVTec AD archive into it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from tad.cache import file_sha256

__all__ = ["MVTEC_CATEGORIES", "ELPV_CATEGORIES", "MAX_IMAGE_PIXELS", "IMAGE_SUFFIXES", "DataError",
           "DatasetUnavailable", "DataWarning", "Sample", "Split", "default_root", "default_cache",
           "resolve_root", "check_category", "load_image", "load_mask", "available_categories",
           "check_disjoint", "load_mvtec", "example_samples", "image_format", "count_report", "load_elpv",
           "load_split"]

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
# Larger images are refused before decoding: 2**26 px (8192 x 8192) is 192 MiB as 8-bit RGB, held once per
# DataLoader worker and batch slot; MVTec AD's largest images have 1024 x 1024 px.
MAX_IMAGE_PIXELS = 2**26
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


# --------------------------------------------------------------------------------------------------- locations


def default_root() -> Path:
    """The data root used when none is given: the one default of the library, the CLI and the book.

    In order: ``$TAD_DATA`` if set; else the project's shared copy ``../shared/data/mvtec_ad`` beside the
    checkout holding this package, if that folder exists; else the per-user folder
    ``$XDG_DATA_HOME/tad/mvtec_ad`` (``~/.local/share/tad/mvtec_ad``), where ``tad download`` puts the data.
    """
    env = os.environ.get("TAD_DATA")
    if env:
        return Path(env).expanduser()
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec_ad"
    if shared.is_dir():
        return shared
    return _user_dir("XDG_DATA_HOME", ".local/share") / "mvtec_ad"


def default_cache() -> Path:
    """The feature cache used when none is given: ``$TAD_CACHE``, else ``$XDG_CACHE_HOME/tad`` (``~/.cache/tad``).

    Per user and independent of the current folder, so every run from anywhere shares one cache.
    """
    env = os.environ.get("TAD_CACHE")
    return Path(env).expanduser() if env else _user_dir("XDG_CACHE_HOME", ".cache")


def resolve_root(root: str | Path | None) -> Path:
    """``root`` as a Path, or :func:`default_root` for None."""
    return default_root() if root is None or root == "" else Path(root).expanduser()


def check_category(name: str) -> str:
    """``name`` if it is a plain folder name (no path separator, not ``.`` or ``..``, not empty).

    Raises
    ------
    DataError
        Otherwise, so that a category can never point outside its data root.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise DataError(f"category {name!r} is not a folder name: expected a name like 'bottle', without path "
                        "separators or '..'")
    return name


def _user_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / fallback) / "tad"


# --------------------------------------------------------------------------------------------------- images


def load_image(path: str | Path) -> Image.Image:
    """Read an image file as an 8-bit RGB image.

    Grayscale (L) is replicated to three channels; alpha (LA, RGBA, transparent P) is dropped, not composited,
    so the stored colour values are kept. 16-bit and 32-bit integer modes (``I;16*``, ``I``, as PIL reads 16-bit
    PNG/TIFF) are taken as 16-bit samples and scaled by 255/65535 (not by the image's min/max), so 65535 -> 255.
    32-bit float images (mode ``F``, e.g. float TIFF) are taken as intensities in [0, 1] and scaled by 255;
    values outside [0, 1] are refused rather than guessed at.

    Parameters
    ----------
    path : str or Path
        Image file, at most `MAX_IMAGE_PIXELS` pixels.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"`` image, size (width, height) of the file.

    Raises
    ------
    DataError
        If the file is missing, not an image, truncated, larger than `MAX_IMAGE_PIXELS`, or a float image
        with values outside [0, 1].
    """
    return _to_rgb(_read(Path(path), "image file"), Path(path))


def load_mask(path: str | Path, size: tuple[int, int], *, image: str | Path | None = None) -> np.ndarray:
    """Read a ground-truth mask as a boolean array.

    Parameters
    ----------
    path : str or Path
        Mask file (any mode `load_image` reads; pixels >= 128 after conversion to 8-bit grayscale are anomalous).
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
    gray = np.asarray(_to_rgb(_read(path, "mask file"), path).convert("L"))
    found = (gray.shape[1], gray.shape[0])
    if found != tuple(size):
        of = f"image {image}" if image is not None else "its image"
        raise DataError(f"mask {path} has size {found} (width, height) but {of} has size {tuple(size)}")
    return gray >= 128


def _read(path: Path, what: str) -> Image.Image:
    """The decoded image in ``path``, after checking its size against `MAX_IMAGE_PIXELS` from the header."""
    limit = f"tad reads at most MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,} pixels (the decoded image must fit in memory)"
    try:
        with warnings.catch_warnings():  # PIL warns from 89 MP on; our own limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(f"{what} {path} has {width}x{height} = {width * height:,} pixels; {limit}")
            image.load()
            return image.copy()
    except Image.DecompressionBombError as err:  # PIL's own refusal, at twice its limit, before ours could look
        raise DataError(f"{what} {path} is too large ({err}); {limit}") from err
    except FileNotFoundError as err:
        raise DataError(f"{what} {path} does not exist") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read {what} {path}: expected a complete image file ({err})") from err


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if not (np.isfinite(values).all() and 0 <= lo and hi <= 1):
            raise DataError(f"float image {path} has values in [{lo:.4g}, {hi:.4g}]: expected intensities in "
                            "[0, 1] (or save it as an 8- or 16-bit image)")
        return Image.fromarray(np.rint(values * 255).astype(np.uint8)).convert("RGB")
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float64)
        values = np.clip(np.rint(values * (255 / 65535)), 0, 255).astype(np.uint8)
        return Image.fromarray(values).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La"):
        image = image.getchannel("L")
    return image.convert("RGB")


# --------------------------------------------------------------------------------------------------- MVTec AD


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
    return [p.name for p in _subdirs(resolve_root(root)) if _is_mvtec_category(p)]


def _scan(folder: Path, require_masks: bool) -> tuple[list[Sample], list[Sample]]:
    train_dir = folder / "train" / "good"
    train = [Sample(p, 0, "good") for p in _images(train_dir)]
    test = []
    seen: dict[Path, Path] = {}
    for defect_dir in _subdirs(folder / "test"):
        target = defect_dir.resolve()
        if target == train_dir.resolve():  # e.g. test/dup -> ../train/good: training images scored as tests
            raise DataError(f"test folder {defect_dir} is a link to the training folder {train_dir}: a test "
                            "image must not be a training image; remove the link")
        if target in seen:  # e.g. test/dup -> good: the same images under two labels
            first, second = sorted([seen[target], defect_dir], key=lambda d: d.name != "good")
            raise DataError(f"test folder {second} is a link to {first}: every test image must sit in one "
                            "folder, whose name is its label; remove the link")
        seen[target] = defect_dir
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


def check_disjoint(train: Sequence[Sample], test: Sequence[Sample]) -> None:
    """Refuse a test image whose bytes are those of a training image (a copy, a link or the same file).

    Such an image is scored by a model fitted on it, so a defective label on it is meaningless and a good
    one flatters the AUROC. Compares SHA-256 digests of the files' contents (`tad.cache.file_sha256`, read
    once per file and shared with `tad.results.data_key`).

    Raises
    ------
    DataError
        Naming the first such test image, the training image it repeats, and how many there are.
    """
    trained = {file_sha256(s.path): s.path for s in train}
    repeats = [(s.path, trained[h]) for s in test if (h := file_sha256(s.path)) in trained]
    if repeats:
        (first, same), more = repeats[0], len(repeats) - 1
        raise DataError(f"test image {first} has the same bytes as training image {same}"
                        + (f" (and {more} more test images repeat training images)" if more else "")
                        + ": a test image must not be a training image; remove it from the test set")


def _existing_root(root: str | Path | None) -> Path:
    path = resolve_root(root)
    if not path.is_dir():
        given = "given" if root not in (None, "") else "default (TAD_DATA unset)" if not os.environ.get("TAD_DATA") \
            else "from TAD_DATA"
        raise DataError(f"data root {path} ({given}) is not a folder: expected a folder holding MVTec-layout "
                        "categories (<category>/train/good, <category>/test/<defect>)")
    return path


def _counts(train: list[Sample], test: list[Sample]) -> tuple[int, int, int]:
    n_bad = sum(s.label for s in test)
    return len(train), len(test) - n_bad, n_bad


def load_mvtec(root: str | Path | None, category: str, *, require_masks: bool = False) -> Split:
    """Load one category in MVTec AD layout.

    Expects ``root/category/train/good/*``, ``root/category/test/<defect>/*`` (``good`` for normal images) and
    ``root/category/ground_truth/<defect>/<stem>_mask.png``. Image files are .png .jpg .jpeg .bmp .tif .tiff
    (any case), sorted by name, hidden files ignored. For the 15 official categories the split counts are
    compared with :data:`MVTEC_CATEGORIES` and a :class:`DataWarning` names any deviation; other folder names
    are accepted without that check. A test image's label is the name of the folder it sits in; a test
    sub-folder that is a link to another one (``test/dup -> good``) is refused, since its images would be
    read twice under two labels.

    Parameters
    ----------
    root : str, Path or None
        Folder holding the categories; None means :func:`default_root`.
    category : str
        Sub-folder name, e.g. ``"bottle"``: a name, not a path (see :func:`check_category`).
    require_masks : bool, default False
        Raise if a defective test image has no mask (otherwise its ``mask`` is None).

    Returns
    -------
    Split
        ``train`` (n_train good samples) and ``test`` (good and defective samples), in sorted order.

    Raises
    ------
    DataError
        If ``category`` is not a name, the root or category folder is missing, ``train/good`` is empty, the test
        set lacks a label, a test folder links to another or to the training folder, a test image repeats a
        training image (`check_disjoint`), or a required mask is missing.
    """
    root = _existing_root(root)
    folder = root / check_category(category)
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
    check_disjoint(train, test)
    expected = MVTEC_CATEGORIES.get(category)
    if expected is not None and expected != (n_train, n_good, n_bad):
        warnings.warn(
            f"MVTec AD {category} at {folder}: expected (train good, test good, test defective) = {expected}, "
            f"found {(n_train, n_good, n_bad)}",
            DataWarning,
            stacklevel=2,
        )
    return Split(category, tuple(train), tuple(test), f"MVTec AD layout at {folder}")


def example_samples(split: Split, n_defects: int = 3) -> list[Sample]:
    """The first good test image of ``split``, then the first test image of each of up to ``n_defects``
    defect types, in the order the test set lists them."""
    good = [t for t in split.test if t.label == 0][:1]
    first: dict[str, Sample] = {}
    for t in split.test:
        if t.label == 1 and t.defect not in first:
            first[t.defect] = t
    return [*good, *list(first.values())[:n_defects]]


def image_format(path: str | Path) -> str:
    """An image file's size and mode as the book writes them, ``"512x512 px, RGB"``, read from its header."""
    with Image.open(path) as im:
        return f"{im.size[0]}x{im.size[1]} px, {im.mode}"


def count_report(root: str | Path | None = None) -> pd.DataFrame:
    """Split counts of every category under ``root`` next to the official ones.

    Returns
    -------
    pandas.DataFrame
        One row per category (index ``category``) with columns ``train_good``, ``test_good``,
        ``test_defective``, ``official_train_good``, ``official_test_good``, ``official_test_defective``
        (<NA> for a category of one's own) and ``matches`` (nullable boolean: whether the counts are the
        official ones; <NA> for a category of one's own, which has nothing to match).

    Raises
    ------
    DataError
        If ``root`` is not a folder.
    """
    root = _existing_root(root)
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
            "matches": official == found if official else pd.NA,
        })
    columns = ["category", "train_good", "test_good", "test_defective", "official_train_good",
               "official_test_good", "official_test_defective", "matches"]
    frame = pd.DataFrame(rows, columns=columns).set_index("category")
    return frame.astype({c: "Int64" for c in columns[4:7]} | {"matches": "boolean"})


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
    check_disjoint(train, test)
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
