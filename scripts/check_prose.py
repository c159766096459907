"""Fail when a notebook's prose types a result figure instead of gluing it from the run.

Reads the Markdown cells of the jupytext sources (``notebooks/*.py``, percent format) and flags, outside
the paper's quotes (lines starting with ``>``), any literal result:

- an AUROC-like decimal: a number below 1 written with a decimal point, or 1.0, 1.00 ... (``0.934``,
  ``.95``, ``+0.012``); section numbers (``3.2``), version numbers (``0.29.1``) and other numbers are not;
- a percentage, unless it names a setting: a round one (a multiple of 5, or a range of them) after
  PCA/NPCA/ratio(s)/keep/at/from/to (``NPCA 50 %``, ``ratios of 10-50 %``), or before "of the (principal)
  axes/components/dimensions/variance/images/cells/data" (``80 % of the images``) or before
  "(stratified/paired/bootstrap) interval/confidence/CI" (``95 % intervals``); ``93 %`` or ``4.5 %`` always;
- a rank: an ordinal number (``74th``, ``3rd``), "rank(s/ed) N", ``#N``, or "N of M" / "N out of M"
  (``3 of 15``).

Not read: code spans and fenced code, inline and display math (``$...$``, ``$$...$$``), link targets, URLs,
HTML comments, MyST roles and directives (their targets are code spans or fences). Integers are never
flagged on their own (``layer 7``, ``2021``, ``15 classes``).

    python scripts/check_prose.py [notebooks/*.py]   # exit 1 and one line per finding if any
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_DECIMAL = r"(?<![\w.])[+\-−±]?(?:0?\.\d+|1\.0+)(?![\w]|\.\d)"
_ORDINAL = r"\b\d+(?:st|nd|rd|th)\b"
_RANK = r"\brank(?:s|ed)?\s+(?:#\s*)?\d+\b|(?<![\w&])#\d+\b"
_N_OF_M = r"\b\d+\s+(?:out\s+)?of\s+(?:the\s+)?\d+\b"
_PERCENT = r"(?<![\w.])\d+(?:\.\d+)?(?:\s*[-–]\s*\d+(?:\.\d+)?)?\s?%"
_ROUND = re.compile(r"^\d*[05](?:\s*[-–]\s*\d*[05])?\s?%$")  # 50 %, 10-50 %: how settings are written
_SETTING_BEFORE = re.compile(r"\b(?:N?PCA|ratios?(?:\s+of)?|keeps?(?:\s+the)?|keeping|kept|at|from|to)\s*(?:=\s*)?$",
                             re.IGNORECASE)
_SETTING_AFTER = re.compile(
    r"^\s*(?:of\s+(?:the\s+|its\s+|their\s+)?(?:smallest[-\s]variance\s+|largest[-\s]variance\s+)?"
    r"(?:principal\s+)?(?:axes|components|dimensions|directions|variance|images|cells|data|training|test)\b"
    r"|(?:(?:stratified|paired|bootstrap|confidence)\s+)*(?:intervals?|confidence|bootstrap|CIs?)\b)",
    re.IGNORECASE,
)
RULES = {"decimal": re.compile(_DECIMAL), "rank": re.compile("|".join((_ORDINAL, _RANK, _N_OF_M)), re.IGNORECASE),
         "percent": re.compile(_PERCENT)}

# Removed before matching (replaced by spaces so columns stay put): these carry code, maths or addresses.
_BLOCKS = re.compile(r"```.*?```|~~~.*?~~~|\$\$.*?\$\$|<!--.*?-->", re.DOTALL)
_INLINE = re.compile(r"`+[^`]*`+|(?<!\\)\$[^$\n]+\$|\]\([^)]*\)|https?://\S+")


@dataclass(frozen=True)
class Finding:
    """One literal result figure in prose: where it is and what it says."""

    path: Path
    cell: int  # 1-based, counting every cell of the notebook
    line: int  # 1-based line of the source file
    kind: str  # "decimal", "percent" or "rank"
    text: str  # the figure as written
    context: str  # the line it stands on

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: cell {self.cell}: {self.kind} {self.text!r} in "
                f"{self.context.strip()!r}")


def markdown_cells(source: str) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """The Markdown cells of a jupytext percent-format source: (cell number, [(file line, text line), ...]).

    Cells start at lines ``# %%``; a Markdown cell's header carries ``[markdown]`` or ``[md]``, and its lines
    are comments (``# text`` or ``#``), read without the leading ``# ``.
    """
    cell, is_md, lines = 0, False, []
    for number, line in enumerate(source.splitlines(), start=1):
        if line.startswith("# %%"):
            if is_md:
                yield cell, lines
            cell, is_md, lines = cell + 1, bool(re.search(r"\[(?:markdown|md)\]", line)), []
        elif is_md and line.startswith("#"):
            lines.append((number, line[2:] if line.startswith("# ") else line[1:]))
    if is_md:
        yield cell, lines


def find_figures(text: str) -> list[tuple[int, str, str]]:
    """The literal result figures in one Markdown text (a cell): (offset in ``text``, kind, figure as written).

    Lines of a blockquote (``>`` first) are the paper's and are skipped.
    """
    masked = _mask(text)
    found = []
    for kind, rule in RULES.items():
        for m in rule.finditer(masked):
            if not (kind == "percent" and _is_setting(masked, m)):
                found.append((m.start(), kind, " ".join(m.group().split())))
    return sorted(found)


def check_file(path: Path) -> list[Finding]:
    """Every finding of `find_figures` in the Markdown cells of one notebook source."""
    findings = []
    for cell, lines in markdown_cells(path.read_text()):
        text = "\n".join(t for _, t in lines)
        starts = [0]
        for _, t in lines:
            starts.append(starts[-1] + len(t) + 1)
        for offset, kind, figure in find_figures(text):
            i = max(k for k, s in enumerate(starts[:-1]) if s <= offset)
            findings.append(Finding(path, cell, lines[i][0], kind, figure, lines[i][1]))
    return findings


def main(argv: list[str] | None = None) -> int:
    paths = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or sorted((ROOT / "notebooks").glob("*.py"))
    findings = [f for p in paths for f in check_file(p)]
    for f in findings:
        print(f)
    if findings:
        print(f"check_prose: {len(findings)} literal result figure(s) in prose; glue them from the run "
              f"(tad.book.glue.glue_value) or quote the paper in a '>' blockquote", file=sys.stderr)
        return 1
    print(f"check_prose: {len(paths)} notebook(s), no literal result figure in prose")
    return 0


def _is_setting(text: str, m: re.Match) -> bool:
    """A round percentage that names a setting by the words around it."""
    before = text[max(0, m.start() - 16):m.start()]
    return bool(_ROUND.match(m.group())) and bool(_SETTING_BEFORE.search(before)
                                                   or _SETTING_AFTER.match(text[m.end():]))


def _mask(text: str) -> str:
    """``text`` with blockquote lines, code, maths, link targets, URLs, comments and emphasis marks blanked
    (same length, so offsets still point into ``text``)."""
    text = "\n".join(" " * len(line) if line.lstrip().startswith(">") else line for line in text.split("\n"))
    text = _BLOCKS.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    return _INLINE.sub(lambda m: " " * len(m.group()), text).replace("*", " ")


if __name__ == "__main__":
    sys.exit(main())
