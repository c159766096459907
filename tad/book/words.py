"""The words a book page builds from its numbers: lists, names, verdicts and the sentences chosen by them.

Every function returns plain text (Markdown where it says so) and computes nothing a page could not
check: the page glues the text (`tad.book.glue.glue_text`), and the prose around it never types a result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from tad.book.format import format_value
from tad.stats import VERDICTS

__all__ = ["CHANCE_WORDS", "bullets", "data_sentence", "deviation_sentence", "layer_name", "listing",
           "pairwise_summary", "reduction_key", "spread_cell", "verdict_list", "verdict_sentence", "versus_chance"]

# How an AUROC's interval stands to chance (0.5), by `tad.stats.verdict` of AUROC - 0.5.
CHANCE_WORDS = {"higher": "above chance", "lower": "below chance", "within noise": "not distinguishable from chance"}


def listing(items: Iterable[str], empty: str = "none") -> str:
    """Items as prose: ``"a"``, ``"a and b"``, ``"a, b and c"``; ``empty`` when there are none."""
    items = [str(i) for i in items]
    if not items:
        return empty
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def bullets(lines: Iterable[str]) -> str:
    """Lines as a Markdown bullet list, one ``- `` item per line; glue it as a block (``{glue:md}`` directive),
    since an inline role pastes a list into one paragraph."""
    return "\n".join(f"- {line}" for line in lines)


def layer_name(layer: int | str) -> str:
    """A layer as the book writes it: ``"layer 7"``, ``"all layers"``."""
    return "all layers" if str(layer) == "all" else f"layer {layer}"


def reduction_key(reduction: str, ratio: float | None) -> str:
    """A short key for a reduction and its ratio: ``"none"``, ``"npca 50%"`` (table rows and labels)."""
    return "none" if reduction == "none" else f"{reduction} {ratio:.0%}"


def spread_cell(auroc: float, low: float, high: float, marked: bool) -> str:
    """A table cell: the AUROC, and when ``marked`` a star and the range it takes over arbitrary choices,
    ``"0.934 * [0.901, 0.950]"``."""
    text = format_value(auroc, "auroc")
    return f"{text} * [{low:.3f}, {high:.3f}]" if marked else text


def versus_chance(low: float, high: float) -> str:
    """Where an AUROC's interval ``[low, high]`` lies against chance: "above chance", "below chance" or
    "not distinguishable from chance" (the interval excludes 0.5 above, below, or holds it)."""
    if low > high:
        raise ValueError(f"interval [{low}, {high}] must have low <= high")
    return CHANCE_WORDS["higher" if low > 0.5 else "lower" if high < 0.5 else "within noise"]


def verdict_list(items: Iterable[tuple[str, str, float]], empty: str = "none") -> str:
    """Comparisons as one sentence part: ``"bottle: higher (+0.012); screw: within noise (−0.004)"``.

    ``items`` are (what, verdict word, difference); ``empty`` when there are none.
    """
    parts = [f"{what}: {word} ({format_value(diff, 'diff')})" for what, word, diff in items]
    return "; ".join(parts) if parts else empty


def pairwise_summary(pairs: Sequence[tuple[str, str]], verdicts: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """One sentence per compared pair, naming the data sets where the difference is beyond noise.

    Parameters
    ----------
    pairs : sequence of (a, b)
        The pairs in the order to report them, as labels the reader knows.
    verdicts : iterable of (a, b, dataset, verdict word)
        `tad.stats.compare` results (``verdict`` one of "higher", "lower", "within noise").

    Returns
    -------
    list of str
        ``"a against b: higher on bottle, lower on screw."`` or ``"a against b: within noise on every data
        set."``
    """
    rows = list(verdicts)
    lines = []
    for a, b in pairs:
        clear = [f"{word} on {d}" for ra, rb, d, word in rows if (ra, rb) == (a, b) and word != "within noise"]
        lines.append(f"{a} against {b}: " + (", ".join(clear) if clear else "within noise on every data set") + ".")
    return lines


def deviation_sentence(deviation: np.ndarray, variance: np.ndarray) -> str:
    """Where one image's squared deviations (red) lie against the training variances (grey) on the kept axes.

    Counts the axes on which the deviation exceeds the variance (the image departs by more than one
    standard deviation of the good images) and words the comparison by that count, for the figure's
    reader: "above" on more than half of the axes, "below" on fewer than a tenth, "around" otherwise.
    """
    deviation, variance = np.asarray(deviation, float), np.asarray(variance, float)
    if deviation.shape != variance.shape or deviation.ndim != 1 or not len(deviation):
        raise ValueError(f"deviation {deviation.shape} and variance {variance.shape} must be 1-D, equal and non-empty")
    above, n = int((deviation > variance).sum()), len(deviation)
    counted = f"{format_value(above, 'count')} of the {format_value(n, 'count')} kept axes"
    if above > n / 2:
        return (f"The red line stands above the grey one on {counted}: the image departs from the good images "
                "along directions they hardly vary in, the signal NPCA keeps.")
    if above < n / 10:
        return (f"The red line lies below the grey one on most kept axes (above it only on {counted}): along "
                "the directions good images hardly vary in, this image departs no more than they do, so NPCA "
                "finds little here.")
    return (f"The red line crosses the grey one: above it on {counted}. Where it stands above, the image "
            "departs from the good images along directions they hardly vary in, the signal NPCA keeps.")


def data_sentence(mvtec: Sequence[str], own: Sequence[str], n_official: int, n_matching: int,
                  n_mvtec: int = 15) -> str:
    """What the data page says it found: MVTec AD classes, a user's own classes in MVTec layout, or ELPV alone.

    Parameters
    ----------
    mvtec : sequence of str
        Official MVTec AD classes present.
    own : sequence of str
        A user's own classes in MVTec AD layout (names MVTec AD does not have).
    n_official, n_matching : int
        Of ``mvtec``, how many were checked and how many have the official split counts.
    n_mvtec : int
        Classes of MVTec AD.
    """
    parts = []
    if mvtec:
        parts.append(f"This run has {format_value(len(mvtec), 'count')} of the {format_value(n_mvtec, 'count')} "
                     f"MVTec AD classes; {format_value(n_matching, 'count')} of "
                     f"{format_value(n_official, 'count')} have the official split counts.")
    elif own:
        parts.append("This run has no official MVTec AD class.")
    if own:
        one = len(own) == 1
        parts.append(f"It has your own {'class' if one else 'classes'} {listing(own)} in MVTec AD layout: the "
                     f"later pages run on {'it' if one else 'them'} as on MVTec AD's classes, and "
                     f"{'its' if one else 'their'} counts and images follow.")
    if not mvtec and not own:
        return ("This run has no MVTec AD class and no class of your own, so the book runs on ELPV solar cells "
                "alone; the parts of later pages that need an MVTec AD class say so.")
    parts.append("Every mean in this book is over these classes only, not the paper's 15.")
    return " ".join(parts)


def verdict_sentence(rows: pd.DataFrame, *, by: str = "estimator", detail: str | None = None) -> str:
    """Where a set of comparisons came out which way, e.g. "higher for Euclidean 1-NN (7, all); within noise
    on the other 12".

    Parameters
    ----------
    rows : DataFrame
        Comparisons with a ``verdict`` column (`tad.stats.VERDICTS`), a ``by`` column naming each and,
        optionally, a ``detail`` column listed in brackets after each name (e.g. the layer).

    Returns
    -------
    str
        The "higher" and then the "lower" comparisons (each part only if there are any) grouped by ``by`` in
        order of first appearance, then the count of the rest; "within noise on all N" when every one is.
    """
    bad = sorted(set(rows["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"verdicts {bad} not in {VERDICTS}")
    parts = []
    for word in ("higher", "lower"):
        hits = rows[rows["verdict"] == word]
        names = [f"{name} ({', '.join(map(str, g[detail]))})" if detail else str(name)
                 for name, g in hits.groupby(by, sort=False)]
        if names:
            parts.append(f"{word} for {listing(names)}")
    rest = int((rows["verdict"] == "within noise").sum())
    if not parts:
        return f"within noise on all {rest}"
    return "; ".join(parts) + (f"; within noise on the other {rest}" if rest else "")
