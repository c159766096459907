"""A book page's setup: its data, weights and folders, the lines saying how the run differs from the paper, and its CSV download.

`open_page` turns a notebook's parameters into the splits and backbone it runs on (every MVTec AD class
present, else ELPV), creates its folders and prints how this run differs from the paper as found.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from tad.backbones import BACKBONES, Backbone, load_backbone
from tad.data import ELPV_CATEGORIES, MVTEC_CATEGORIES, Split, available_categories, default_cache, load_split, resolve_root


__all__ = ["PAPER_BACKBONE", "FALLBACK", "NEEDS", "Page", "open_page", "OUTPUT_ENV", "output_dir", "shown_path", "resolve_data", "keep_needed", "download_notice", "data_line", "weights_line", "input_line", "save_csv"]

PAPER_BACKBONE = "tf_efficientnet_b5"


FALLBACK = "elpv_mono"  # the data set every installation has (the elpv-dataset package)


NEEDS = ("masks", "mvtec")


_WIDTH = 100  # printed lines wrap here, so a book page shows them without a scroll bar


@dataclass(frozen=True)
class Page:
    """Everything a page runs on, as found.

    Attributes
    ----------
    name : str
        The page's name (its notebook's stem), used for its CSV download.
    splits : list of Split
        The data sets this page can use (after `needs`); may be empty, then `missing` says why.
    backbone : Backbone
    input_size : int
        Side of the square input fed to the backbone (the weights' native size unless asked otherwise).
    cache_dir, results, download_dir : Path
        Feature cache, the shared results table (JSON lines) and the folder the book serves CSVs from.
    summary : str
        The printed account of data, weights and input, one line each (Markdown-safe).
    missing : str
        One sentence on what the page asked for (`needs`) and this run lacks; "" when nothing is missing.
    """

    name: str
    splits: list[Split]
    backbone: Backbone
    input_size: int
    cache_dir: Path
    results: Path
    download_dir: Path
    summary: str
    missing: str = ""
    notices: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        """Names of the data sets in `splits`, in order."""
        return [s.name for s in self.splits]


def open_page(name: str, *, data_root: str | Path | None = None, classes: Sequence[str] | str | None = None,
              backbone: str = "tf_efficientnet_lite0", input_size: int | None = None, seed: int = 0,
              needs: Sequence[str] | str = (), cache_dir: str | Path | None = None,
              results: str | Path | None = None,
              download_dir: str | Path | None = None, verbose: bool = True) -> Page:
    """Resolve a page's parameters into data, weights and folders, and print what differs from the paper.

    Data: ``classes`` as given, or every folder in MVTec AD layout under ``data_root`` (default
    ``$TAD_DATA``; official classes first); when none is there, ELPV (`FALLBACK`) from the installed package, said in one line. Never fails for absent
    data: requested MVTec classes that are absent are dropped with a notice.

    Parameters
    ----------
    name : str
        The page (notebook stem), e.g. ``"02_layers"``.
    needs : "masks", "mvtec" or a sequence of them
        What the page's analysis needs: ground-truth masks (anomaly maps) or MVTec AD classes (a paper
        table). Data sets without it are left out of `Page.splits` and `Page.missing` says so.
    cache_dir, results, download_dir : path
        Created if missing (``results``: its folder). None means the one default of the library, the CLI
        and the book: `tad.data.default_cache` for features and ``results.jsonl`` in it for the results;
        ``data/`` under `output_dir` for the downloads (so a page writes only into the build it belongs to).
        Relative paths are relative to the working directory, which for a book page is ``notebooks/``.

    Raises
    ------
    ValueError
        An unknown backbone, a ``needs`` value not in `NEEDS`, or a class name that is neither present,
        an official MVTec AD class nor an ELPV split (the message lists the valid ones).
    tad.backbones.WeightsUnavailable
        The backbone's weights cannot be had here (the message names the offline alternatives).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone {backbone!r} not in {sorted(BACKBONES)}")
    needs = [needs] if isinstance(needs, str) else list(needs)
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise ValueError(f"needs {bad} not in {NEEDS}")
    root = resolve_root(data_root)
    cache_dir = default_cache() if cache_dir is None else cache_dir
    results = Path(cache_dir) / "results.jsonl" if results is None else results
    download_dir = output_dir() / "data" if download_dir is None else download_dir
    names, notices = resolve_data(root, classes)
    splits = [load_split(c, root, seed=seed) for c in names]
    splits, missing = keep_needed(splits, needs)
    bb = load_backbone(backbone)
    size = input_size or bb.input_size
    paths = [Path(cache_dir).resolve(), Path(results).resolve(), Path(download_dir).resolve()]
    for folder in (paths[0], paths[1].parent, paths[2]):
        folder.mkdir(parents=True, exist_ok=True)
    lines = [*notices, data_line(splits), weights_line(bb), input_line(size, bb.input_size)]
    if missing:
        lines.append(missing)
    summary = "\n".join(lines)
    if verbose:
        details = [f"{s.name}: {len(s.train)} train (good), {len(s.test)} test ({int(s.test_labels.sum())} "
                   f"anomalous); {s.source.replace(str(root), shown_path(root))}" for s in splits]
        details.append(f"Paths: features cached in {shown_path(paths[0])}, results in {shown_path(paths[1])}, "
                       f"downloads in {shown_path(paths[2])}")
        for line in [*lines, *details]:
            print(textwrap.fill(line, width=_WIDTH, subsequent_indent="    ", break_on_hyphens=False,
                                break_long_words=False))
    return Page(name, splits, bb, size, *paths, summary=summary, missing=missing, notices=tuple(notices))


OUTPUT_ENV = "TAD_PAGE_OUTPUT"


def output_dir() -> Path:
    """The folder a page writes its files under (its CSV downloads in ``data/``): the folder of its output notebook.

    ``$TAD_PAGE_OUTPUT`` when set (scripts/build_book.py sets it to ``book/generated/``, where it writes the
    executed pages); else the working directory, so a page run by hand (papermill, Python) writes beside the
    notebook it is run into there and never into the book's folder.
    """
    env = os.environ.get(OUTPUT_ENV)
    return Path(env) if env else Path.cwd()


def shown_path(path: str | Path) -> str:
    """A path as a page prints it: relative to the working directory when under it or its parent (a book
    page runs in ``notebooks/``), else under ``~`` when in the home folder, else as given."""
    path, here = Path(path).resolve(), Path.cwd().resolve()
    for base, prefix in ((here, ""), (here.parent, "../")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return f"~/{path.relative_to(Path.home())}" if path.is_relative_to(Path.home()) else str(path)


def resolve_data(data_root: str | Path | None, classes: Sequence[str] | str | None) -> tuple[list[str], list[str]]:
    """The data set names a page runs on and the notices (one sentence each) about what was not found.

    Returns
    -------
    names : list of str
        ``classes`` that are present (MVTec layout under ``data_root``) or ELPV names, in the given order;
        with ``classes=None`` every folder in MVTec layout under ``data_root``: the official MVTec AD
        classes in their official order, then a user's own folders by name; `FALLBACK` when that leaves
        nothing.
    notices : list of str
    """
    present = available_categories(data_root) if data_root and Path(data_root).is_dir() else []
    where = f"under {data_root}" if data_root else "(no data root: TAD_DATA is unset)"
    notices = []
    if classes is None:
        names = [c for c in MVTEC_CATEGORIES if c in present] + [c for c in present if c not in MVTEC_CATEGORIES]
    else:
        classes = [classes] if isinstance(classes, str) else list(classes)
        unknown = [c for c in classes if c not in present and c not in ELPV_CATEGORIES and c not in MVTEC_CATEGORIES]
        if unknown:
            raise ValueError(f"classes {unknown} not found {where}; valid choices here: "
                             f"{[*present, *ELPV_CATEGORIES]}, or an MVTec AD class once placed there")
        names = [c for c in classes if c in present or c in ELPV_CATEGORIES]
        absent = [c for c in classes if c not in names]
        if absent:
            notices.append(f"Requested MVTec AD class(es) {', '.join(absent)} are not {where}; left out.")
    if not names:
        notices.append(f"No MVTec AD class {where}: this run uses ELPV ({FALLBACK}) from the installed "
                       f"elpv-dataset package instead.")
        names = [FALLBACK]
    return names, notices


def keep_needed(splits: Sequence[Split], needs: Sequence[str]) -> tuple[list[Split], str]:
    """The splits that have what the page needs, and one sentence naming those left out and why ("" if none).

    ``"masks"``: every anomalous test image has a ground-truth mask. ``"mvtec"``: an official MVTec AD class.
    """
    kept, dropped = [], {}
    for s in splits:
        lacks = [n for n in needs if not _has(s, n)]
        if lacks:
            dropped[s.name] = lacks
        else:
            kept.append(s)
    if not dropped:
        return kept, ""
    why = {"masks": "ground-truth masks", "mvtec": "an official MVTec AD class"}
    parts = [f"{name} ({' and '.join(why[n] for n in lacks)})" for name, lacks in dropped.items()]
    rest = f"; it shows {', '.join(s.name for s in kept)}" if kept else "; nothing here has it, so its analysis is skipped"
    return kept, f"This page needs what these data sets lack, so it leaves them out: {', '.join(parts)}{rest}."


def download_notice(root: str | Path, present: Sequence[str], missing: Sequence[str], reason: str = "") -> str:
    """One line on the MVTec AD classes present and, when some are missing, how to place MVTec AD by hand.

    ``present`` and ``missing`` as `tad.download.ensure_mvtec` returns them; ``reason`` why the download did not
    bring them (its warning's text, or "" when it was not tried), of which the line keeps only the cause
    (e.g. ``[Errno -2] Name or service not known``), not the warning's lists and instructions.
    """
    from tad.download import MVTEC_URL

    have = f"MVTec AD under {root}: {len(present)} of {len(present) + len(missing)} classes present"
    if not missing:
        return f"{have}."
    why = f"the download failed ({_cause(reason)})" if reason else "the download was not tried"
    return (f"{have}; {why}. To place MVTec AD by hand: download {MVTEC_URL}, extract it so that "
            f"{root}/<class>/train/good/*.png exist, and set TAD_DATA={root}.")


def _cause(reason: str) -> str:
    """The cause in a failed download's warning: the URL error's text, else the warning's first clause."""
    found = re.search(r"<urlopen error (.*?)>", reason)
    if found:
        return found.group(1)
    text = reason.split("To place MVTec AD by hand")[0]
    text = text.split("download failed: ", 1)[-1].strip(" .;()")
    return textwrap.shorten(text, 120, placeholder=" ...")


def data_line(splits: Sequence[Split]) -> str:
    """One line: which data sets, how many of the 15 MVTec AD classes and at what image size."""
    mvtec = [s for s in splits if s.name in MVTEC_CATEGORIES]
    other = [s for s in splits if s.name not in MVTEC_CATEGORIES]
    parts = []
    if mvtec:
        parts.append(f"{len(mvtec)} of the {len(MVTEC_CATEGORIES)} MVTec AD classes "
                     f"({', '.join(s.name for s in mvtec)}) at {_sizes(mvtec)}")
    else:
        parts.append(f"none of the {len(MVTEC_CATEGORIES)} MVTec AD classes")
    if other:
        parts.append(f"{', '.join(s.name for s in other)} at {_sizes(other)}")
    return f"Data: {'; '.join(parts)} (the paper: all {len(MVTEC_CATEGORIES)} MVTec AD classes, input size not stated)."


def weights_line(bb: Backbone) -> str:
    """One line: the weights' tag and source, and the paper's backbone when it differs (the paper names no tag)."""
    same = "" if bb.name == PAPER_BACKBONE else (
        f" (the paper: EfficientNet-B5, weights tag not stated; the book's pin for it is {BACKBONES[PAPER_BACKBONE].tag})")
    return f"Weights: {bb.weights['tag']} from {bb.weights['source']}{same}."


def input_line(size: int, native: int) -> str:
    """One line: the input side fed to the backbone against the weights' native one."""
    note = "the weights' native size" if size == native else f"the weights' native size is {native} px"
    return f"Input: {size}x{size} px ({note})."


def save_csv(df: pd.DataFrame, page: Page | str, folder: str | Path | None = None, *,
             text: str = "Download these results (CSV)") -> str:
    """Write ``df`` to ``folder/<page>.csv`` and return a MyST ``{download}`` link to it.

    The link is relative to the page's output notebook, in `output_dir` (``book/generated/`` in the book
    build), which is where the book expects ``data/<page>.csv``; glue it with `glue_text` and paste it with
    ``{glue:md}`name:myst```.
    """
    name = page.name if isinstance(page, Page) else page
    folder = Path(folder) if folder is not None else (page.download_dir if isinstance(page, Page) else None)
    if folder is None:
        raise ValueError("save_csv needs a folder when given a page name instead of a Page")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    df.to_csv(path, index=not isinstance(df.index, pd.RangeIndex))
    return f"{{download}}`{text} <{folder.name}/{path.name}>`"


# --------------------------------------------------------------------------------------------- helpers


def _has(split: Split, need: str) -> bool:
    if need == "mvtec":
        return split.name in MVTEC_CATEGORIES
    return all(s.mask is not None for s in split.test if s.label == 1)


def _sizes(splits: Sequence[Split]) -> str:
    sizes = []
    for s in splits:
        with Image.open(s.train[0].path) as im:
            sizes.append(im.size)
    distinct = sorted(set(sizes))
    return " / ".join(f"{w}x{h} px" for w, h in distinct)
