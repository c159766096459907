"""Trials of a results table selected by their choices, and configurations ranked as distinct models
with ties counted by the book's interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tad.book.format import config_label

__all__ = ["select_trials", "CONFIG_COLUMNS", "rank_configs"]

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
