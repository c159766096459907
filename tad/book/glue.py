"""Numbers and sentences glued into a page's prose (MyST-NB), read back from its CSV, and restated by
the introduction.

`glue_csv` records how a value follows from the page's CSV so that `scripts/check_glue.py` recomputes
it; `read_glued` and `restate` let one page quote another's glued values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from tad.book.format import format_value
from tad.book.page import Page

__all__ = ["Glued", "glue_value", "glue_text", "AGGREGATES", "CSV_SUFFIX", "csv_value", "glue_csv", "read_glued", "restate"]

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
