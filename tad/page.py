"""What a book page needs around the pipeline: its data, weights and folders, and the words and tables it shows.

`open_page` turns a notebook's parameters into the splits and backbone it runs on (every MVTec AD class
present, else ELPV), creates its folders and prints how this run differs from the paper as found. The
helpers below select trials of a results table, label configurations, format and glue numbers into prose
(MyST-NB), show long tables interactively offline (itables) and write a page's results as a CSV download.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from tad.backbones import BACKBONES, Backbone, load_backbone
from tad.data import (ELPV_CATEGORIES, MVTEC_CATEGORIES, Split, available_categories, default_cache, load_split,
                      resolve_root)

__all__ = ["PAPER_BACKBONE", "FALLBACK", "NEEDS", "MAX_PLAIN_ROWS", "Page", "open_page", "OUTPUT_ENV",
           "output_dir", "shown_path", "resolve_data", "keep_needed", "download_notice", "data_line",
           "weights_line", "input_line", "select_trials", "config_label", "format_value", "ci_text",
           "auroc_entry", "CONFIG_COLUMNS", "rank_configs", "Glued", "glue_value", "glue_text", "AGGREGATES",
           "CSV_SUFFIX", "csv_value", "glue_csv", "read_glued", "restate", "HEADERS", "readable_table",
           "show_table", "save_csv"]

PAPER_BACKBONE = "tf_efficientnet_b5"
FALLBACK = "elpv_mono"  # the data set every installation has (the elpv-dataset package)
NEEDS = ("masks", "mvtec")
MAX_PLAIN_ROWS = 20  # longer tables are shown interactively
_WIDTH = 100  # printed lines wrap here, so a book page shows them without a scroll bar

_ESTIMATOR_NAMES = {"mvg": "MVG", "knn1": "1-NN", "knn5": "5-NN", "knn10": "10-NN", "flow": "flow"}
_REDUCTION_NAMES = {"pca": "PCA", "npca": "NPCA"}


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


# --------------------------------------------------------------------------------------------- results vocabulary


def select_trials(df: pd.DataFrame, *, dataset: str | Sequence[str] | None = None, layer: int | str | None = None,
                  pooling: str | None = None, reduction: str | None = None, ratio: float | None = None,
                  estimator: str | None = None, backbone: str | None = None) -> pd.DataFrame:
    """Rows of a results table (`tad.sweep.run_grid`) matching every choice given; None means any.

    ``reduction="none"`` has no ratio (NaN in the table): asking it with a ratio is an error. A ratio is
    matched to 1e-9, so 0.5 finds rows stored as 0.5 whatever the float round trip. ``layer`` may be an int
    or a string (the table stores ``"7"``, ``"all"``).

    Raises
    ------
    ValueError
        ``reduction="none"`` with a ratio, or a choice no row of ``df`` has (the message lists those it has).
    """
    if reduction == "none" and ratio is not None:
        raise ValueError(f"reduction 'none' keeps every dimension and has no ratio; got ratio={ratio}")
    mask = pd.Series(True, index=df.index)
    for col, want in (("dataset", dataset), ("layer", None if layer is None else str(layer)),
                      ("pooling", pooling), ("reduction", reduction), ("estimator", estimator),
                      ("backbone", backbone)):
        if want is None:
            continue
        wants = [want] if isinstance(want, str) else list(want)
        have = set(df[col].astype(str))
        if not set(wants) & have:
            raise ValueError(f"{col} {want!r} not in this table; it has {sorted(have)}")
        mask &= df[col].astype(str).isin(wants)
    if ratio is not None:
        ratios = pd.to_numeric(df["ratio"], errors="coerce")
        mask &= (ratios - ratio).abs() < 1e-9
    return df[mask]


def config_label(config: Mapping, *, parts: Sequence[str] = ("layer", "pooling", "reduction", "estimator")) -> str:
    """A configuration as the book writes it: ``"layer 7, avg, NPCA 50 %, MVG"``.

    ``config`` holds the result-table columns named in ``parts`` (``reduction`` uses ``ratio`` too);
    layer ``"all"`` reads "all layers", reduction ``"none"`` reads "no reduction".
    """
    words = []
    for part in parts:
        value = config[part]
        if part == "layer":
            words.append("all layers" if str(value) == "all" else f"layer {value}")
        elif part == "reduction":
            words.append("no reduction" if value == "none"
                         else f"{_REDUCTION_NAMES.get(value, value)} {format_value(config['ratio'], 'percent')}")
        elif part == "estimator":
            words.append(_ESTIMATOR_NAMES.get(value, value))
        else:
            words.append(str(value))
    return ", ".join(words)


def format_value(value: float, kind: str) -> str:
    """A number as the book writes it.

    ``"auroc"``: 3 decimals (0.934); ``"diff"``: signed, 3 decimals (+0.012, −0.012); ``"count"``: an
    integer (3; a non-integral value is an error); ``"percent"``: a fraction as a percentage (0.5 -> "50 %",
    0.125 -> "12.5 %"); ``"seconds"``: 1 decimal with unit (2.5 s).
    """
    value = float(value)
    if kind == "auroc":
        return f"{value:.3f}"
    if kind == "diff":
        text = f"{abs(value):.3f}"
        return ("−" if value < 0 and text.strip("0.") else "+") + text
    if kind == "count":
        if not value.is_integer():
            raise ValueError(f"count {value} is not an integer")
        return f"{int(value)}"
    if kind == "percent":
        return f"{100 * value:.1f}".removesuffix(".0") + " %"
    if kind == "seconds":
        return f"{value:.1f} s"
    raise ValueError(f"kind {kind!r} not in ('auroc', 'diff', 'count', 'percent', 'seconds')")


def ci_text(estimate: float, low: float, high: float, *, digits: int = 3, ci_digits: int = 2) -> str:
    """An estimate with its interval: ``"0.934 [0.90, 0.96]"``.

    The bounds are rounded outward (low down, high up), so the printed interval contains the computed one.
    """
    scale = 10 ** ci_digits
    lo, hi = math.floor(low * scale + 1e-9) / scale, math.ceil(high * scale - 1e-9) / scale
    return f"{estimate:.{digits}f} [{lo:.{ci_digits}f}, {hi:.{ci_digits}f}]"


def auroc_entry(labels: np.ndarray, scores: np.ndarray) -> dict:
    """A scored configuration's table cells: ``auroc``, its 95 % interval from `tad.stats.auroc_ci`
    (``ci_low``, ``ci_high``) and the two as `ci_text` (``interval``)."""
    from tad.evaluate import auroc
    from tad.stats import auroc_ci

    a, (low, high) = auroc(labels, scores), auroc_ci(labels, scores)
    return {"auroc": a, "ci_low": low, "ci_high": high, "interval": ci_text(a, low, high)}


CONFIG_COLUMNS = ("backbone", "layer", "pooling", "reduction", "ratio", "estimator")


def rank_configs(df: pd.DataFrame, sizes: Mapping[str, tuple[int, int]], *,
                 by: Sequence[str] = CONFIG_COLUMNS, level: float = 0.95) -> pd.DataFrame:
    """Distinct models ranked by mean AUROC over the data sets, each marked whether it ties with the best.

    Only configurations run on every data set of ``df`` are ranked. Configurations that are the same model
    on every data set (`tad.trial.model_key`: same layer and pooling, same kept principal axes, same
    estimator; e.g. NPCA 10-50 % under the block reading wherever ``round(r d)`` lies inside the training
    null space) are one row, the first of them in ``df``'s order standing for all, so ranks and ties count
    distinct models. Each trial's standard error is the
    wider side of its `tad.stats.auroc_ci` interval divided by the normal quantile ``z`` (so it stays
    nonzero at AUROC 1, where a bootstrap's is 0); the mean over ``k`` data sets has standard error
    ``sqrt(sum se**2) / k``. A configuration is ``within_noise`` of the best when
    ``best - mean <= z * sqrt(se_best**2 + se**2)``. Treating the two means as independent overstates the
    noise of a difference between configurations scored on the same images, so ties are called
    generously: a configuration is said to trail the best only when it clearly does.

    Parameters
    ----------
    df : DataFrame
        Result rows (`tad.sweep.run_grid`): the ``by`` columns, ``dataset`` and ``auroc``; ``basis_dependent``
        is carried over (True if any data set's trial is) when present.
    sizes : mapping of data set name to (n_good, n_anomalous)
        Test-set sizes, e.g. ``{s.name: (int((s.test_labels == 0).sum()), int(s.test_labels.sum()))}``.
    by : sequence of str
        Columns that make a configuration.
    level : float
        Coverage of the intervals the noise comes from.

    Returns
    -------
    DataFrame
        Index ``rank`` 1..n (best first; equal means keep their order in ``df``); columns ``by``, auroc
        (mean), se, worst_class (lowest AUROC), within_noise, n_configs (configurations merged into this
        model), same_as (their labels, `config_label`, "; "-joined) and basis_dependent when ``df`` has it.
        ``attrs["n_configs"]``: configurations ranked before merging.
    """
    from scipy.stats import norm

    from tad.stats import score_interval

    missing = sorted(set(df["dataset"]) - set(sizes))
    if missing:
        raise ValueError(f"sizes lacks data set(s) {missing}; it has {sorted(sizes)}")
    z = norm.ppf((1 + level) / 2)
    se = pd.Series(index=df.index, dtype=float)
    for name, rows in df.groupby("dataset"):
        low, high = score_interval(rows["auroc"].to_numpy(float), *sizes[name], level)
        se[rows.index] = np.maximum(rows["auroc"] - low, high - rows["auroc"]) / z
    trials = df.assign(_se2=se ** 2)
    agg = {"auroc": ("auroc", "mean"), "se": ("_se2", "sum"), "worst_class": ("auroc", "min"),
           "n": ("dataset", "nunique")}
    if "basis_dependent" in df:
        agg["basis_dependent"] = ("basis_dependent", "any")
    from tad.trial import model_key, with_model_columns

    trials["_model"] = [model_key(r) for r in with_model_columns(df).to_dict("records")]
    agg["_models"] = ("_model", frozenset)
    ranked = trials.groupby(list(by), dropna=False, sort=False).agg(**agg).reset_index()
    k = df["dataset"].nunique()
    ranked = ranked[ranked.n == k].drop(columns="n")
    n_configs = len(ranked)
    labels = [config_label(r) if {"layer", "pooling", "reduction", "estimator"} <= set(r.index) else ""
              for _, r in ranked.iterrows()]
    ranked = ranked.assign(_label=labels)
    merged = ranked.groupby("_models", sort=False)
    ranked = merged.head(1).assign(n_configs=merged["_label"].transform("size"),
                                   same_as=merged["_label"].transform("; ".join)).drop(columns=["_models", "_label"])
    ranked["se"] = np.sqrt(ranked["se"]) / k
    ranked = ranked.sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
    best = ranked.iloc[0]
    ranked["within_noise"] = best.auroc - ranked.auroc <= z * np.sqrt(best.se ** 2 + ranked.se ** 2)
    ranked.index = pd.RangeIndex(1, len(ranked) + 1, name="rank")
    ranked.attrs["n_configs"] = n_configs
    return ranked


# --------------------------------------------------------------------------------------------- glue


class Glued:
    """Text for MyST-NB glue that pastes as itself: Markdown as is, plain text as a string literal.

    ``{glue:text}`` reads text/plain through `ast.literal_eval`, which would turn "+0.405" into 0.405 and
    "0.950" into 0.95; a quoted literal comes back as the string, unchanged.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)

    def _repr_markdown_(self) -> str:
        return self.text


def glue_value(name: str, value: float, kind: str = "auroc") -> str:
    """Glue ``value`` formatted by `format_value` under ``name``, for ``{glue:text}`name``` in prose.

    Returns the text glued.
    """
    return glue_text(name, format_value(value, kind))


def glue_text(name: str, text: str) -> str:
    """Glue a word, phrase or generated Markdown sentence under ``name``, as is; returns it.

    A verdict word (from `tad.stats.verdict`) or plain text is pasted with ``{glue:text}`name```; Markdown
    with ``{glue:md}`name:myst``` (MyST, so roles such as ``{download}`` in it work).
    """
    from myst_nb import glue

    glue(name, Glued(text), display=False)
    return text


AGGREGATES = ("first", "mean", "min", "max", "sum", "count", "nunique", "argmax", "argmin")
CSV_SUFFIX = ".csv_rule"  # the glue name under which `glue_csv` records how a value follows from the CSV


def csv_value(table: pd.DataFrame, column: str, how: str = "first", by: str | None = None,
              where: Mapping[str, object] | None = None) -> object:
    """One value of a page's CSV table, as `glue_csv` derives it and `scripts/check_glue.py` recomputes it.

    The rows whose ``where`` columns equal the given values (compared as text, so 7 matches "7"), then
    ``how`` over ``column``: "first" (the only row's value; several rows are an error), "mean", "min",
    "max", "sum", "count" (rows), "nunique" (the last three 0 when no row matches); or, with ``by``,
    "argmax" / "argmin": the ``by`` value whose rows have the highest / lowest mean ``column`` (first in
    table order on a tie).

    Raises
    ------
    ValueError
        An unknown ``how`` or column, no matching row (but for a count or sum), several rows for "first", or
        argmax without ``by``.
    """
    if how not in AGGREGATES:
        raise ValueError(f"how {how!r} not in {AGGREGATES}")
    where = dict(where or {})
    missing = sorted({column, *where, *([by] if by else [])} - set(table.columns))
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(table.columns)}")
    rows = table
    for col, want in where.items():
        rows = rows[rows[col].astype(str) == str(want)]
    if rows.empty and how not in ("count", "nunique", "sum"):
        raise ValueError(f"no row has {where}")
    values = rows[column]
    if how in ("argmax", "argmin"):
        if by is None:
            raise ValueError(f"how={how!r} needs by=")
        means = values.groupby(rows[by].astype(str), sort=False).mean()
        return means.idxmax() if how == "argmax" else means.idxmin()
    if how == "first":
        if len(values) != 1:
            raise ValueError(f"{len(values)} rows have {where}; 'first' needs exactly one")
        return values.iloc[0]
    return {"count": len, "nunique": pd.Series.nunique}.get(how, lambda v: getattr(v, how)())(values)


def glue_csv(page: Page, name: str, column: str, how: str = "first", kind: str = "auroc", *,
             by: str | None = None, **where: object) -> str:
    """Glue a value read from the page's own CSV download (`save_csv`), and record how it was read.

    The value is `csv_value` of ``download_dir/<page>.csv`` (so the CSV must be saved first), written by
    `format_value` with ``kind`` (``kind="text"`` pastes it as is, e.g. a layer found by argmax). The rule
    is glued too, under ``name + CSV_SUFFIX`` (JSON), so `scripts/check_glue.py` recomputes every such value
    from the built book's CSV and fails on a disagreement. Returns the text glued.
    """
    import json

    table = pd.read_csv(page.download_dir / f"{page.name}.csv")
    value = csv_value(table, column, how, by, where)
    text = str(value) if kind == "text" else format_value(value, kind)
    rule = {"column": column, "how": how, "kind": kind, "by": by, "where": {k: str(v) for k, v in where.items()}}
    glue_text(name + CSV_SUFFIX, json.dumps(rule))
    return glue_text(name, text)


def read_glued(notebook: str | Path) -> dict[str, str]:
    """The values an executed notebook glued (MyST-NB / scrapbook outputs), by name, as their plain text.

    Lets one page (the introduction) restate what other pages computed. A missing file gives ``{}``, so a
    page that was not run reads as "no values"; a later glue of the same name wins, as in MyST-NB.

    Returns
    -------
    dict of str to str
        Glue name to its text (the ``text/plain`` of the glued output, unquoted as `Glued` quotes it).
    """
    import ast
    import json

    path = Path(notebook)
    if not path.is_file():
        return {}
    values = {}
    for cell in json.loads(path.read_text()).get("cells", []):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            text = output.get("data", {}).get(f"{meta.get('mime_prefix', '')}text/plain")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            try:
                value = ast.literal_eval(text)
                values[meta["name"]] = value if isinstance(value, str) else text
            except (ValueError, SyntaxError):
                values[meta["name"]] = text
    return values


_REFERENCE = re.compile(r"\{([\w.-]+)/(\w+)\}")


def restate(template: str, glued: Mapping[str, Mapping[str, str]]) -> str | None:
    """``template`` with every ``{page/name}`` replaced by the value that page glued under that name.

    Parameters
    ----------
    template : str
        Text with references such as ``"{02_layers/best_mean}"``.
    glued : mapping of page name to (mapping of glue name to text)
        As `read_glued` returns them, one per page.

    Returns
    -------
    str or None
        The filled template; None when any reference was not glued (its page did not run in this build, or
        computed no such value): a sentence that cannot be said whole is left out, never shown with a
        placeholder.
    """
    values = [glued.get(page, {}).get(name) for page, name in _REFERENCE.findall(template)]
    if any(v is None for v in values):
        return None
    filled = iter(values)
    return _REFERENCE.sub(lambda _: next(filled), template)


# --------------------------------------------------------------------------------------------- tables


# Result-table columns as a reader reads them; other snake_case names lose their underscores.
HEADERS = {"ci_low": "95 % low", "ci_high": "95 % high", "p_holm": "p (Holm)", "p_value": "p", "within_noise":
           "within noise", "worst_class": "lowest AUROC of a data set", "basis_dependent": "basis dependent",
           "n_train": "training images", "n_test": "test images", "trials_here": "trials run here",
           "mean_seconds": "mean seconds per trial", "se": "standard error", "auroc": "AUROC"}


def readable_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as a page shows it: readable headers (`HEADERS`, else underscores as spaces), counts stored as
    floats shown as integers (2310.0 -> 2310; a column of whole numbers reaching 2 or more, so an AUROC of
    1.0 stays a float), and p-values (a column named ``p``, ``p (...)``, ``p_...``)
    as text with 2 significant digits (0.300159 -> "0.30")."""
    out = df.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_float_dtype(values) and str(col).split(" ")[0].split("_")[0] in ("p",):
            out[col] = [f"{v:#.2g}".rstrip(".") if pd.notna(v) else "" for v in values]
        elif pd.api.types.is_float_dtype(values) and values.notna().any() \
                and np.all(np.mod(values.dropna(), 1) == 0) and 2 <= values.dropna().abs().max() < 2 ** 53:
            out[col] = values.astype("Int64")
    names = {c: HEADERS.get(c, c.replace("_", " ")) for c in out.columns if isinstance(c, str)}
    return out.rename(columns=names).rename_axis(index=[HEADERS.get(n, n.replace("_", " ")) if isinstance(n, str)
                                                        else n for n in out.index.names])


def show_table(df: pd.DataFrame, *, max_plain_rows: int = MAX_PLAIN_ROWS, **options) -> None:
    """Display ``df`` as `readable_table` writes it: as a plain table up to ``max_plain_rows`` rows, else as an
    interactive one (sortable, searchable) whose JavaScript is embedded in the notebook, so the built HTML
    needs no network.

    ``options`` go to `itables.show` (e.g. ``pageLength``).
    """
    from IPython.display import display

    df = readable_table(df)
    if len(df) <= max_plain_rows:
        display(df)
        return
    import itables

    global _ITABLES_READY
    if not _ITABLES_READY:
        itables.init_notebook_mode(all_interactive=False, connected=False)
        _ITABLES_READY = True
    itables.show(df, **({"pageLength": 20, "lengthMenu": [20, 50, 100], "classes": "display compact"} | options))


_ITABLES_READY = False


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
