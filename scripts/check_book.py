"""Check what a reader of the built book sees: every figure drawn is shown, and no MyST or placeholder leaks.

    python scripts/check_book.py [--generated book/generated] [--html _build/html]

Fails (exit 1, one line per fault naming the page) when
- an executed notebook's code cell draws (pyplot, seaborn, a `tad.plots` figure) but holds no image output
  (shown or glued);
- the HTML shows a MyST role or directive as text (``{download}`...``, ``{glue:md}``, ``{doc}`...``), or an
  introduction reference ``{page/name}`` left unfilled;
- the HTML's prose holds placeholder text: "not in this build", "did not run in this build", or a number
  printed as "nan" (a sentence may still explain an empty column as "NaN");
- a glued Markdown list renders as one paragraph ("... - a ... - b ..." inside one ``<p>``);
- a library's log line reaches a cell's output (matplotlib's "findfont: ..." font fallbacks).
Code inputs and code blocks of the HTML are not searched: they may show such text on purpose.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]

_PYPLOT = re.compile(r"\bplt\.(show|subplots?|figure|imshow|plot|hist|bar|scatter)\(|\bsns\.\w+\(|\.plot(\.\w+)?\(")
_RAW_MYST = re.compile(r"\{[a-z][\w:.-]*\}`|```\{[a-z]|\{glue(:\w+)?\}")
_UNFILLED = re.compile(r"\{[\w.-]+/\w+\}")
_LOG_NOISE = re.compile(r"findfont: [^.]*\.")
# "nan" as a formatted number prints it (f"{nan:.3f}"); "NaN" in a sentence explaining an empty column is prose
_PLACEHOLDERS = re.compile(r"(?i:not in this build|did not run in this build)|\bnan\b")
_ITEM_START = re.compile(r"(?:^|[.:;!?)\]])\s*[-*•]\s+\S")  # a list item's start, as it reads run into a paragraph


def figure_functions() -> set[str]:
    """Names of the `tad.plots` functions that return a matplotlib Figure."""
    import tad.plots

    return {name for name, f in inspect.getmembers(tad.plots, inspect.isfunction)
            if f.__module__ == "tad.plots" and not name.startswith("_")
            and inspect.signature(f).return_annotation in ("Figure", "matplotlib.figure.Figure")}


def draws(source: str, figures: set[str]) -> bool:
    """Whether a code cell's source draws a figure: pyplot, seaborn, pandas plotting or a `tad.plots` figure."""
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())  # comments do not draw
    if _PYPLOT.search(code):
        return True
    return any(re.search(rf"(?<![\w]){re.escape(name)}\(", code) for name in figures)


def figureless_cells(notebook: Path, figures: set[str]) -> list[str]:
    """One line per code cell of an executed notebook that draws but has no image among its outputs.

    A cell that draws only when the run has the data for it may instead show (or glue) a Markdown sentence
    saying why there is no figure: the reader then sees the reason, not a silent gap.
    """
    cells = json.loads(notebook.read_text()).get("cells", [])
    faults = []
    for number, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        if not draws(source, figures):
            continue
        mimes = {mime for output in cell.get("outputs", []) for mime in output.get("data", {})}
        if not any("image/" in mime or mime.endswith("text/markdown") for mime in mimes):
            first = next((line for line in source.splitlines() if draws(line, figures)), source)
            faults.append(f"{notebook.stem}: cell {number} draws but shows no figure ({first.strip()[:80]})")
    return faults


def prose(html: str) -> BeautifulSoup:
    """The page's HTML without scripts, styles, code inputs, code blocks and inline code (outputs stay)."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    for tag in soup.select("div.cell_input"):
        tag.decompose()
    for tag in soup.select("div[class*='highlight-']"):
        if "output" not in tag.get("class", []):
            tag.decompose()
    for tag in soup.select("code.literal"):  # inline code in prose, e.g. a page explaining MyST syntax
        tag.decompose()
    return soup


def html_faults(html: str, page: str) -> list[str]:
    """One line per raw MyST role, unfilled reference, placeholder or collapsed list the page shows."""
    soup = prose(html)
    main = soup.select_one("main, article, div.bd-article") or soup
    text = " ".join(main.get_text(" ").split())
    faults = [f"{page}: raw MyST shown as text: {m.group(0)!r} in '...{_around(text, m)}...'"
              for m in _RAW_MYST.finditer(text)]
    faults += [f"{page}: unfilled reference {m.group(0)!r} in '...{_around(text, m)}...'"
               for m in _UNFILLED.finditer(text)]
    faults += [f"{page}: a library's log line in a cell's output: {m.group(0)!r}"
               for m in list(_LOG_NOISE.finditer(text))[:1]]
    for block in main.find_all(["p", "li", "dd", "td", "th", "pre", "figcaption"]):
        words = " ".join(block.get_text(" ").split())
        if block.name in ("td", "th", "pre"):
            hits = [m for m in _PLACEHOLDERS.finditer(words) if m.group(0) != "nan"]  # empty cells are data
        else:
            hits = list(_PLACEHOLDERS.finditer(words))
        faults += [f"{page}: placeholder {m.group(0)!r} in '...{_around(words, m)}...'" for m in hits]
        if block.name == "p" and (len(_ITEM_START.findall(words)) >= 2
                                  or re.match(r"[-*•]\s", words) and re.search(r"\s[-*•]\s", words)):
            faults.append(f"{page}: a list rendered as one paragraph: '{words[:100]}...'")
    return list(dict.fromkeys(faults))  # a list item and the paragraph inside it show the same text


def _around(text: str, match: re.Match, width: int = 40) -> str:
    return text[max(match.start() - width, 0):match.end() + width]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generated", type=Path, default=ROOT / "book" / "generated", help="executed notebooks")
    p.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built HTML")
    args = p.parse_args(argv)
    notebooks = sorted(n for n in args.generated.glob("*.ipynb") if not n.name.startswith("."))
    pages = sorted(h for h in args.html.rglob("*.html") if "_static" not in h.parts
                   and h.name not in ("genindex.html", "search.html"))
    if not notebooks or not pages:
        print(f"FAIL: nothing to check: {len(notebooks)} notebooks in {args.generated}, "
              f"{len(pages)} HTML pages in {args.html}")
        return 1
    figures = figure_functions()
    faults = [f for n in notebooks for f in figureless_cells(n, figures)]
    faults += [f for h in pages for f in html_faults(h.read_text(errors="replace"), str(h.relative_to(args.html)))]
    for fault in faults:
        print(f"FAIL: {fault}")
    print(f"check_book: {len(notebooks)} notebooks, {len(pages)} HTML pages, {len(faults)} fault(s)")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
