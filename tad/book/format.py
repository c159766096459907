"""How a page writes numbers, configurations and tables: one format per kind of value, readable
headers, long tables shown interactively offline (itables).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["MAX_PLAIN_ROWS", "config_label", "format_value", "ci_text", "auroc_entry", "HEADERS", "readable_table", "show_table"]

MAX_PLAIN_ROWS = 20  # longer tables are shown interactively


_ESTIMATOR_NAMES = {"mvg": "MVG", "knn1": "1-NN", "knn5": "5-NN", "knn10": "10-NN", "flow": "flow"}


_REDUCTION_NAMES = {"pca": "PCA", "npca": "NPCA"}


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


# --------------------------------------------------------------------------------------------- tables


# Result-table columns as a reader reads them; other snake_case names lose their underscores.
HEADERS = {"ci_low": "95 % low", "ci_high": "95 % high", "p_value": "p", "within_noise":
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
