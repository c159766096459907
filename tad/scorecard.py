"""The replication scorecard: each claim of the paper, on each data set of a build, replicated or not.

A page that tests one of the paper's claims (`CLAIMS`) writes one row per data set with `claim_row`: the
paired comparison (`tad.stats.compare`, the book's family) of the two configurations the claim contrasts, the
paper's effect for it, the smallest effect the test images could have resolved (`detectable_difference`),
and the outcome of the three-way rule (`outcome`). `save_claims` writes a page's rows beside its CSV
download; the introduction reads every page's rows (`read_claims`) and states the scorecard and a synthesis.

The three-way rule, for a claim that the paper reports as an effect ``e`` (a difference of AUROCs):

- **replicated**: the interval of our difference lies wholly on ``e``'s side of 0, or the comparison's verdict
  (`tad.stats.compare`) says so (the direction holds);
- **contradicted**: otherwise, if the opposite direction is established, or the interval excludes ``e`` (the
  paper's effect is ruled out: no effect in its direction is established, and one as large is excluded);
- **unresolved**: the interval holds both 0 and ``e``: these images cannot tell the paper's effect from none.

A claim that two choices perform alike ("no difference", e.g. MVG against 1-NN) is read against
`NEGLIGIBLE`: replicated when the interval lies within +-NEGLIGIBLE, contradicted when it lies wholly outside
(a difference at least that large is established), unresolved otherwise. A claim the paper states without
a figure (the backbone) keeps only its direction: replicated / contradicted when the direction established
is the paper's / the other one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from tad.paper import paper_table
from tad.stats import VERDICTS, Comparison

__all__ = ["OUTCOMES", "NEGLIGIBLE", "POWER", "Claim", "CLAIMS", "claim", "outcome", "detectable_difference",
           "claim_row", "save_claims", "read_claims", "scorecard_table", "synthesis", "CLAIMS_SUFFIX"]

OUTCOMES = ("replicated", "contradicted", "unresolved")
NEGLIGIBLE = 0.01  # AUROC: the paper's tables give 2-3 decimals of means over 15 classes; a claim of "alike"
# is read as "within 0.01" (a book convention, stated wherever it is used)
POWER = 0.8  # the power at which `detectable_difference` is computed
CLAIMS_SUFFIX = "_claims"  # a page's claim rows: data/<page>_claims.csv beside its download


@dataclass(frozen=True)
class Claim:
    """One claim of the paper that the book tests, as a paired comparison ``AUROC(a) - AUROC(b)``.

    Attributes
    ----------
    name : str
        The comparison, as in `tad.stats.HEADLINE_COMPARISONS` (e.g. "NPCA 50 % vs no reduction").
    says : str
        The claim in words, as the paper makes it.
    kind : str
        "effect" (the paper reports a difference ``paper_effect``), "alike" (no practical difference) or
        "direction" (a = better, no figure given).
    paper_effect : float
        The paper's ``a - b`` (NaN for "direction"; for "alike", the paper's figure if it gives one).
    source : str
        Where the paper's figure comes from.
    page : str
        The book page that tests it.
    """

    name: str
    says: str
    kind: str
    paper_effect: float
    source: str
    page: str

    def __post_init__(self) -> None:
        if self.kind not in ("effect", "alike", "direction"):
            raise ValueError(f"claim kind {self.kind!r} must be 'effect', 'alike' or 'direction'")
        if self.kind == "effect" and not (np.isfinite(self.paper_effect) and self.paper_effect != 0):
            raise ValueError(f"an 'effect' claim needs a nonzero paper_effect; got {self.paper_effect!r}")


def _claims() -> tuple[Claim, ...]:
    t2, t3, t4 = paper_table(2), paper_table(3), paper_table(4)
    layers = t3.mean()  # the paper's mean over its 15 classes, per layer
    none = float(t2.xs("none", level="reduction")["auc"].iloc[0])
    npca, pca = float(t2.loc[("npca", 0.5), "auc"]), float(t2.loc[("pca", 0.5), "auc"])
    return (
        Claim("last layer vs layer 1", "deep layers carry the anomaly signal: layer 7 beats layer 1", "effect",
              float(layers["7"] - layers["1"]), "table 3, mean of 15 classes, layer 7 - layer 1", "02_layers"),
        Claim("last layer vs all layers", "concatenating all layers adds nothing over layer 7", "alike",
              float(layers["7"] - layers["all"]), "table 3, mean of 15 classes, layer 7 - all", "02_layers"),
        Claim("NPCA 50 % vs no reduction", "keeping the 50 % smallest-variance axes beats no reduction", "effect",
              npca - none, "table 2, NPCA 50 % - no reduction", "03_reduction"),
        Claim("PCA 50 % vs no reduction", "keeping the 50 % largest-variance axes loses to no reduction", "effect",
              pca - none, "table 2, PCA 50 % - no reduction", "03_reduction"),
        Claim("NPCA 50 % vs PCA 50 %", "the smallest-variance half beats the largest-variance half", "effect",
              npca - pca, "table 2, NPCA 50 % - PCA 50 %", "03_reduction"),
        Claim("average vs max pooling", "average pooling beats max pooling", "effect",
              float(t4.loc["mvg", "avg"] - t4.loc["mvg", "max"]), "table 4, MVG row, avg - max", "04_pooling"),
        Claim("MVG vs 1-NN", "simple estimators suffice: MVG and 1-NN perform alike", "alike",
              float(t4.loc["mvg", "avg"] - t4.loc["knn1", "avg"]), "table 4, avg column, MVG - 1-NN",
              "05_estimators"),
        Claim("augmentation vs none", "noise augmentation changes the AUROC by less than 0.1 point", "alike",
              np.nan, "section 4 (text), no figure per class", "06_augmentation"),
        Claim("EfficientNet-B5 vs the reference backbone", "EfficientNet-B5 beats ResNet-18", "direction", np.nan,
              "section 3 (text), no figure", "07_backbones"),
    )


CLAIMS = _claims()


def claim(name: str) -> Claim:
    """The claim called ``name`` (one of `CLAIMS`' names)."""
    for c in CLAIMS:
        if c.name == name:
            return c
    raise ValueError(f"claim {name!r} not in {[c.name for c in CLAIMS]}")


def outcome(c: Claim, low: float, high: float, verdict: str | None = None) -> str:
    """The three-way rule (module docstring) for our interval ``[low, high]`` of ``a - b``: one of `OUTCOMES`.

    ``verdict`` (`tad.stats.Comparison.verdict`), when given, establishes a direction as the interval does:
    where an AUROC is 0 or 1 `tad.stats.compare` decides by a permutation test while its interval stays
    conservative, so "higher" / "lower" count as a direction established even if the interval holds 0.
    """
    if not low <= high:
        raise ValueError(f"interval ({low!r}, {high!r}) must have low <= high")
    if verdict not in (None, *VERDICTS):
        raise ValueError(f"verdict {verdict!r} not in {VERDICTS}")
    if c.kind == "alike":
        if -NEGLIGIBLE <= low and high <= NEGLIGIBLE:
            return "replicated"
        return "contradicted" if low > NEGLIGIBLE or high < -NEGLIGIBLE else "unresolved"
    sign = 1.0 if c.kind == "direction" else np.sign(c.paper_effect)
    up, down = low > 0 or verdict == "higher", high < 0 or verdict == "lower"
    if (up and sign > 0) or (down and sign < 0):
        return "replicated"
    if (down and sign > 0) or (up and sign < 0):
        return "contradicted"  # the opposite direction established
    if c.kind == "direction":
        return "unresolved"
    return "contradicted" if not low <= c.paper_effect <= high else "unresolved"


def detectable_difference(low: float, high: float, level: float, *, power: float = POWER) -> float:
    """The smallest true difference these images detect with probability ``power`` at the interval's level.

    Normal approximation: the interval's half-width is ``z_level * se``, and a true difference ``delta`` is
    detected (the interval excludes 0) with probability ``power`` when ``delta = (z_level + z_power) * se``.
    For an interval that is not symmetric (MOVER near AUROC 1) the mean half-width stands for ``z * se``.
    """
    if not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"level {level!r} and power {power!r} must lie in (0, 1)")
    z = norm.ppf((1 + level) / 2)
    return float((high - low) / 2 * (1 + norm.ppf(power) / z))


def claim_row(name: str, dataset: str, comparison: Comparison, *, auroc_a: float, auroc_b: float,
              config: str, page: str) -> dict:
    """One row of the scorecard: claim ``name`` tested on ``dataset`` by ``comparison`` (a - b).

    ``config`` says what was compared, e.g. "layer 7 vs layer 1; avg pooling, NPCA 50 %, 1-NN".
    """
    c = claim(name)
    if not np.isclose(comparison.diff, auroc_a - auroc_b, atol=1e-9):
        raise ValueError(f"comparison.diff {comparison.diff!r} is not auroc_a - auroc_b "
                         f"({auroc_a!r} - {auroc_b!r}) for claim {name!r} on {dataset!r}")
    return {"claim": name, "dataset": dataset, "page": page, "config": config, "auroc_a": auroc_a,
            "auroc_b": auroc_b, "effect": comparison.diff, "ci_low": comparison.ci_low, "ci_high": comparison.ci_high,
            "level": comparison.level, "p": comparison.p, "verdict": comparison.verdict,
            "method": getattr(comparison, "method", "DeLong + MOVER"), "paper_effect": c.paper_effect,
            "detectable": detectable_difference(comparison.ci_low, comparison.ci_high, comparison.level),
            "outcome": outcome(c, comparison.ci_low, comparison.ci_high, comparison.verdict)}


def save_claims(rows: Sequence[dict], folder: str | Path, page: str) -> Path:
    """Write a page's claim rows to ``folder/<page>_claims.csv`` (atomically) and return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{page}{CLAIMS_SUFFIX}.csv"
    tmp = path.with_suffix(".csv.tmp")
    pd.DataFrame(list(rows), columns=_COLUMNS).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


_COLUMNS = ["claim", "dataset", "page", "config", "auroc_a", "auroc_b", "effect", "ci_low", "ci_high", "level", "p",
            "verdict", "method", "paper_effect", "detectable", "outcome"]


def read_claims(folder: str | Path) -> pd.DataFrame:
    """Every page's claim rows under ``folder`` (a build's ``data/``), in `CLAIMS` order, then data set."""
    files = sorted(Path(folder).glob(f"*{CLAIMS_SUFFIX}.csv"))
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    unknown = sorted(set(df.claim) - {c.name for c in CLAIMS})
    if unknown:
        raise ValueError(f"claim rows under {folder} name unknown claims {unknown}")
    order = {c.name: i for i, c in enumerate(CLAIMS)}
    return df.sort_values(["claim", "dataset"], key=lambda s: s.map(order) if s.name == "claim" else s,
                          kind="stable").reset_index(drop=True)


def scorecard_table(rows: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Claims x data sets: each cell "outcome: +0.031 [0.012, 0.050]", beside the paper's effect.

    Narrow enough for a page's text column: each claim's words are in `synthesis`. Claims no page of the build
    tested are left out (the synthesis says so); a data set a claim was not tested on reads "not tested".
    """
    if rows.empty:
        return pd.DataFrame()
    cell = [f"{o}: {_signed(e, digits)} [{lo:.{digits}f}, {hi:.{digits}f}]".replace("-", "−")
            for o, e, lo, hi in zip(rows.outcome, rows.effect, rows.ci_low, rows.ci_high)]
    table = rows.assign(cell=cell).pivot(index="claim", columns="dataset", values="cell")
    table = table.reindex([c.name for c in CLAIMS if c.name in table.index]).fillna("not tested")
    paper = {c.name: (_signed(c.paper_effect, digits) if np.isfinite(c.paper_effect) else "no figure")
             for c in CLAIMS}
    table.insert(0, "paper's effect", [paper[n] for n in table.index])
    detect = rows.groupby("claim").detectable.median()
    table["smallest detectable (median)"] = [f"{detect[n]:.{digits}f}" for n in table.index]
    return table.rename_axis(None, axis=1)


def synthesis(rows: pd.DataFrame, digits: int = 3) -> list[str]:
    """The scorecard in sentences: an overall count of claims by outcome, then one sentence per claim.

    The overall sentence counts claims (each a comparison of two different configurations on the same test
    images), never comparisons of a configuration with itself: replicated wherever tested, replicated on some
    data sets and unresolved on the others, contradicted on at least one data set, unresolved wherever tested
    (with one data set in the build: replicated, contradicted, unresolved). Each claim's sentence says where
    it replicated, was contradicted or stayed unresolved (and why, for unresolved), the range of our effects
    against the paper's, and the smallest difference the test images resolve
    (`detectable_difference`, median over data sets), noting when the paper's effect is smaller than that.
    Claims no page of the build tested are named once at the end ("Not tested in this build: ...").
    """
    lines = []
    tested = [c for c in CLAIMS if (rows.claim == c.name).any()] if len(rows) else []
    if tested:
        sets = list(dict.fromkeys(rows.dataset))
        groups = {"replicated wherever tested": [], "replicated on some data sets and unresolved on the others": [],
                  "contradicted on at least one data set": [], "unresolved wherever tested": []}
        for c in tested:
            found = set(rows.outcome[rows.claim == c.name])
            key = ("contradicted on at least one data set" if "contradicted" in found else
                   "replicated wherever tested" if found == {"replicated"} else
                   "unresolved wherever tested" if found == {"unresolved"} else
                   "replicated on some data sets and unresolved on the others")
            groups[key].append(c.name)
        if len(sets) == 1:  # "wherever tested" and "on at least one" say the same of one data set
            groups = {word.split(" ")[0]: names for word, names in groups.items() if names}
        parts = [f"{len(names)} {word} ({_listing(names)})" for word, names in groups.items() if names]
        lines.append(f"Of the {len(tested)} claim{'s' * (len(tested) != 1)} of the paper tested in this build, on "
                     f"{len(sets)} data set{'s' * (len(sets) != 1)} ({_listing(sets)}): {_listing(parts)}.")
    for c in tested:
        mine = rows[rows.claim == c.name]
        found = [f"{word} on {_listing(list(mine.dataset[mine.outcome == word]))}" for word in OUTCOMES
                 if (mine.outcome == word).any()]
        if set(mine.outcome) == {"unresolved"}:
            found[-1] += f": {'the interval holds' if len(mine) == 1 else 'each interval holds'} " + _UNRESOLVED[c.kind]
        paper = (f"the paper's {_signed(c.paper_effect, digits)}" if np.isfinite(c.paper_effect)
                 else "no figure in the paper")
        low, high = mine.effect.min(), mine.effect.max()
        ours = (f"Our effect is {_signed(low, digits)}" if len(mine) == 1 else
                f"Our effects range from {_signed(low, digits)} to {_signed(high, digits)}")
        small = float(mine.detectable.median())
        note = ""
        if c.kind == "effect" and abs(c.paper_effect) < small:
            note = (f", more than the paper's effect: one that large is found nonzero with less than "
                    f"{100 * POWER:g} % power here")
        elif c.kind == "alike" and float(((mine.ci_high - mine.ci_low) / 2).median()) > NEGLIGIBLE:
            note = f"; intervals wider than ±{NEGLIGIBLE:g} cannot show two choices alike"
        lines.append(f"*{c.says[0].upper()}{c.says[1:]}* ({c.name}): {'; '.join(found)}. {ours}, against "
                     f"{paper}; the test images resolve a difference of about {small:.{digits}f} or more "
                     f"({100 * POWER:g} % power){note}.")
    untested = [c.name for c in CLAIMS if c not in tested]
    if untested:
        lines.append(f"Not tested in this build: {_listing(untested)}.")
    return lines


_UNRESOLVED = {"effect": "both 0 and the paper's effect",
               "alike": f"differences beyond ±{NEGLIGIBLE:g} as well as none, so these images can show the two "
                        f"neither alike nor different",
               "direction": "0"}


def _signed(x: float, digits: int) -> str:
    return f"{'−' if x < 0 else '+'}{abs(x):.{digits}f}"


def _listing(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
