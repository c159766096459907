"""Check that a built page's glued sentences agree with the results it offers as CSV.

For each page with a rule below, the glued values are read from the executed notebook
(book/generated/NAME.ipynb) and recomputed independently from the page's CSV download
(book/generated/data/NAME.csv). Exit 1 naming the page, the glued name, its text and the recomputed value
on any disagreement; pages that did not run are skipped, and said.

    python scripts/check_glue.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tad.page import read_glued  # noqa: E402

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


def main(generated: Path = GENERATED) -> int:
    failures = 0
    for page, rules in RULES.items():
        notebook, table = generated / f"{page}.ipynb", generated / "data" / f"{page}.csv"
        if not notebook.exists() or not table.exists():
            print(f"{page}: not built, skipped")
            continue
        glued = read_glued(notebook)
        for name, holds in rules(pd.read_csv(table)).items():
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
