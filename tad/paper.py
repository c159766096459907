"""The paper's published figures (Ono & Mori, tables 2-4, transcribed as CSV) and side-by-side comparison.

`paper_table(n)` returns one table; `beside_paper(ours, paper)` aligns our numbers with the paper's and
adds the difference, so every reproduced table in the book is read against the original.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["PAPER_TRIALS", "paper_table", "beside_paper", "side_by_side"]

# Trials of the paper's grid: 15 classes x (6 ResNet-18 + 8 ENB5 layer choices) x 11 reductions x 5 estimators.
PAPER_TRIALS = 15 * (6 + 8) * 11 * 5

_TABLES = {2: "table2_reduction.csv", 3: "table3_layers.csv", 4: "table4_pooling.csv"}
_DIR = Path(__file__).parent / "paper_tables"


def paper_table(number: int) -> pd.DataFrame:
    """Table 2 (mean AUC by reduction and ratio), 3 (AUC by class and layer) or 4 (by pooling and estimator).

    Table 2 is indexed by (reduction, ratio) with ratio NaN for "none"; table 3 by class with layer
    columns "1".."7", "all"; table 4 by estimator ("mvg", "knn1") with pooling columns.
    """
    if number not in _TABLES:
        raise ValueError(f"table {number!r} not in {sorted(_TABLES)}")
    df = pd.read_csv(_DIR / _TABLES[number])
    return df.set_index({2: ["reduction", "ratio"], 3: "class", 4: "estimator"}[number])


def beside_paper(ours: pd.Series, paper: pd.Series, *, name: str = "auroc") -> pd.DataFrame:
    """Our values next to the paper's, with ``diff = ours - paper``, on the union of their index.

    Rows only one side has keep a NaN on the other, so a missing class or layer stays visible.
    """
    out = pd.concat({"ours": ours, "paper": paper}, axis=1)
    out["diff"] = out["ours"] - out["paper"]
    return out.rename_axis(ours.index.name or paper.index.name).rename(columns={"ours": name})


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Wide tables aligned row by row: for each row of ``ours``, its values, the paper's and the difference.

    Rows of ``ours`` the paper lacks get NaN for the paper; columns are those of ``ours``.

    Returns
    -------
    DataFrame indexed by (row, "ours" | "paper" | "diff")
    """
    paper = paper.reindex(index=ours.index, columns=ours.columns)
    parts = {"ours": ours, "paper": paper, "diff": ours - paper}
    out = pd.concat(parts, names=["source"]).swaplevel(0, 1).sort_index(level=0, sort_remaining=False)
    return out.reindex(pd.MultiIndex.from_product([ours.index, list(parts)]))
