"""Check that every built page's glued values agree with the results it offers as CSV.

A page glues a value read from its CSV download with `tad.book.glue.glue_csv`, which glues beside it the rule it
followed (column, aggregate, filter, format). For every executed notebook in book/generated/, each such value
is recomputed from the page's CSV (book/generated/data/NAME.csv) by that rule and compared with the glued
text; 02_layers's sentences have their own rules below, written independently of the page. Exit 1 naming
the page, the glued name, its text and the recomputed value on any disagreement; pages that did not run or
offer no CSV are skipped, and said.

    python scripts/check_glue.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tad.book.glue import CSV_SUFFIX, csv_value, read_glued
from tad.book.format import format_value  # noqa: E402

GENERATED = ROOT / "book" / "generated"


def layers_rules(csv: pd.DataFrame) -> dict[str, Callable[[str], bool]]:
    """02_layers: the best layer by mean AUROC over the data sets, its mean, layer 1's mean, the gain."""
    mean = csv.assign(layer=csv.layer.astype(str)).groupby("layer").auroc.mean()
    best = mean.max()
    best_layers = {("all layers" if lay == "all" else f"layer {lay}") for lay in mean.index[mean >= best - 1e-12]}
    return {
        "n_sets": lambda t: int(t) == csv.dataset.nunique(),
        "best_layer": lambda t: t in best_layers,
        "best_mean": lambda t: abs(float(t) - best) <= 5e-4,
        "layer1_mean": lambda t: abs(float(t) - mean["1"]) <= 5e-4,
        "deep_gain": lambda t: abs(float(t.replace("\u2212", "-")) - (best - mean["1"])) <= 1e-3,
    }


RULES = {"02_layers": layers_rules}


def recorded_rules(glued: dict[str, str], csv: pd.DataFrame) -> dict[str, Callable[[str], bool]]:
    """The checks for every value the page glued with `tad.book.glue.glue_csv`: its text must be the recomputed
    value written the same way."""
    checks = {}
    for key, text in glued.items():
        if not key.endswith(CSV_SUFFIX):
            continue
        rule = json.loads(text)
        value = csv_value(csv, rule["column"], rule["how"], rule["by"], rule["where"])
        expected = str(value) if rule["kind"] == "text" else format_value(value, rule["kind"])
        checks[key.removesuffix(CSV_SUFFIX)] = lambda t, expected=expected: t == expected
    return checks


def main(generated: Path = GENERATED) -> int:
    failures = 0
    for notebook in sorted(generated.glob("*.ipynb")):
        page, table = notebook.stem, generated / "data" / f"{notebook.stem}.csv"
        glued = read_glued(notebook)
        if not table.exists():
            if any(k.endswith(CSV_SUFFIX) for k in glued) or page in RULES:
                print(f"FAIL {page}: glues values from a CSV that is not in {table.parent}")
                failures += 1
            continue
        csv = pd.read_csv(table)
        rules = recorded_rules(glued, csv) | (RULES[page](csv) if page in RULES else {})
        if not rules:
            print(f"{page}: glues no value from its CSV, skipped")
        for name, holds in rules.items():
            if name not in glued:
                print(f"FAIL {page}: glued value {name!r} is missing")
                failures += 1
            elif not holds(glued[name]):
                print(f"FAIL {page}: glued {name} = {glued[name]!r} disagrees with {table}")
                failures += 1
            else:
                print(f"{page}: {name} = {glued[name]} agrees with its CSV")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
