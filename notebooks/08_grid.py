# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which configuration is best over the whole grid?
#
# Ono & Mori crossed every choice of table 1: backbone layer (ResNet-18 layers 1-5 and all, EfficientNet-B5
# layers 1-7 and all), 11 reductions (PCA or NPCA keeping 10-50 % of the dimensions, or none) and 5
# estimators (MVG, k-NN with k = 1, 5, 10, a normalizing flow), on the 15 MVTec AD classes: 11,550 trials.
# From that grid they single out ENB5 layer 7, NPCA 50 % and MVG (mean AUROC 0.975, table 4) as best.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px; ELPV can be added through `classes`), and the backbones: the offline
# EfficientNet-Lite0/1/2 (same 7-stage layout, real ImageNet weights) instead of ENB5 and ResNet-18, whose
# weights need the Hugging Face Hub. The normalizing flow is by far the slowest estimator; it runs on every
# backbone and layer by default, and parameters `flow_backbones`, `flow_layers` bound it where time is short;
# the page states the count actually run. The setup cells print exactly which data and weights made these numbers.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # the reference backbone, printed with the data
backbones = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]  # without weights: skipped
input_size = None                   # None means each backbone's native size
layers = None                       # None means every layer of each backbone and "all"
reductions = None                   # None means the paper's 11 (tad.sweep.REDUCTIONS), else [[method, ratio], ...]
estimators = ["mvg", "knn1", "knn5", "knn10", "flow"]
pooling = "avg"
flow_params = {"epochs": 100, "hidden": 64}        # tad.estimators.Flow settings
flow_backbones = None                              # None means every backbone
flow_layers = None                                 # None means every layer
top_n = 10
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from tad.backbones import BACKBONES
from tad.paper import paper_table
from tad.report import load_backbones, setup_run
from tad.sweep import REDUCTIONS, run_grid

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)
reductions = REDUCTIONS if reductions is None else [tuple(r) for r in reductions]
flow_backbones = backbones if flow_backbones is None else flow_backbones
for name in [*backbones, *flow_backbones]:
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} in backbones/flow_backbones not in {sorted(BACKBONES)}")

loaded = load_backbones(backbones, have=bb)

# %% [markdown]
# The grid, backbone by backbone: every layer x reduction x estimator except the flow, then the flow on its
# subset. Each trial is one row of the shared results table, written as it finishes, so a killed run
# resumes where it stopped and trials other pages ran are reused.

# %%
t0 = time.perf_counter()
frames, planned = [], 0
common = dict(poolings=[pooling], reductions=reductions, input_size=input_size, cache_dir=cache_dir,
              device=device, n_boot=n_boot, seed=seed, progress=False)
for name, b in loaded.items():
    lays = [str(x) for x in (layers or [*range(1, b.n_layers + 1), "all"])]
    plan = [(lays, [e for e in estimators if e != "flow"])]
    if "flow" in estimators and name in flow_backbones:
        plan.append(([str(x) for x in (flow_layers or lays)], ["flow"]))
    for lay, ests in plan:
        if not ests:
            continue
        df = run_grid(splits, b, results, layers=lay, estimators=ests, flow_params=flow_params, **common)
        frames.append(df)
        planned += len(splits) * len(lay) * len(reductions) * len(ests)
df = pd.concat(frames, ignore_index=True)
print(f"grid cell: {time.perf_counter() - t0:.0f} s (trials already in {results} are read, not rerun)")

# %% [markdown]
# How much of the paper's grid this is. The paper: 15 classes x (6 ResNet-18 + 8 ENB5 layer choices) x 11
# reductions x 5 estimators = 11,550 trials.

# %%
paper_trials = 15 * (6 + 8) * 11 * 5
print(f"trials here: {len(df)} of {planned} planned ({df.dataset.nunique()} classes x {df.backbone.nunique()} "
      f"backbones); the paper: {paper_trials}")
print(df.groupby(["backbone", "estimator"]).size().unstack().to_string())
full_flow = sum(len(splits) * len(layers or [*range(1, b.n_layers + 1), "all"]) * len(reductions)
                for b in loaded.values())
print(f"flow trials run: {(df.estimator == 'flow').sum()} of {full_flow} in the full grid of these backbones")

# %% [markdown]
# Time on this machine. Each row records the seconds its fit and scoring took (not the bootstrap or the
# feature extraction). For the flow trials not run, the time is predicted from the ones that were, by a
# straight line in the feature dimension `d` (the flow's cost grows with it).

# %%
secs = df.groupby("estimator").seconds.sum()
print("fit + score time of the trials here, by estimator (s):", secs.round(0).to_dict())
flow = df[df.estimator == "flow"]
if "flow" in estimators and len(flow) >= 2 and flow.d.nunique() >= 2:
    slope, icept = np.polyfit(flow.d, flow.seconds, 1)
    same = ["dataset", "backbone", "layer", "reduction", "ratio"]
    dims = df[df.estimator == "mvg"].drop_duplicates(same)  # d of every grid cell, from the cheap estimator
    missing = dims.merge(flow[same], on=same, how="left", indicator=True).query("_merge == 'left_only'")
    predicted = np.clip(icept + slope * missing.d, flow.seconds.min(), None).sum()
    total = secs.sum() + predicted
    print(f"flow: {slope * 1000:.1f} ms per feature dimension + {icept:.1f} s per trial; "
          f"the {len(missing)} flow trials not run would take about {predicted / 60:.0f} min")
    print(f"full grid of these backbones and classes: about {total / 60:.0f} min of fit + score on this machine "
          f"(flow_params={flow_params})")

# %% [markdown]
# Mean AUROC over the classes, layer x reduction, one panel per estimator (columns) and backbone (rows).
# Blank cells are trials not run (the flow outside its subset).

# %%
df["red"] = np.where(df.reduction == "none", "none", df.reduction + " " + (df.ratio * 100).round().astype("Int64")
                     .astype(str) + "%")
red_order = ["none"] + [f"{m} {round(r * 100)}%" for m, r in reductions if m != "none"]
red_order = [r for r in red_order if r in set(df.red)]
names = list(loaded)
fig, axes = plt.subplots(len(names), len(estimators), figsize=(3.2 * len(estimators), 2.9 * len(names)),
                         sharex=True, sharey=True, squeeze=False)
for i, name in enumerate(names):
    lay_order = [str(x) for x in (layers or [*range(1, loaded[name].n_layers + 1), "all"])]
    for j, est in enumerate(estimators):
        g = df[(df.backbone == name) & (df.estimator == est)]
        heat = g.pivot_table(index="layer", columns="red", values="auroc").reindex(index=lay_order,
                                                                                   columns=red_order)
        sns.heatmap(heat, vmin=0.5, vmax=1, cmap="viridis", ax=axes[i, j], cbar=j == len(estimators) - 1,
                    cbar_kws={"label": "mean AUROC"})
        axes[i, j].set(title=f"{name.replace('tf_efficientnet_', '')} / {est}", xlabel="", ylabel="layer" if j == 0 else "")
fig.tight_layout()
plt.show()

# %% [markdown]
# The top configurations by mean AUROC over the classes (only configurations run on every class), and
# where the paper's choice, layer 7, NPCA 50 %, MVG, ranks for each backbone. The paper's numbers for that
# choice (table 4: MVG 0.975, 1-NN 0.973) are means over its 15 classes.

# %%
config = ["backbone", "layer", "reduction", "ratio", "estimator"]
n_cls = df.dataset.nunique()
ranked = (df.groupby(config, dropna=False).agg(auroc=("auroc", "mean"), worst_class=("auroc", "min"),
                                               n=("auroc", "size"))
          .query("n == @n_cls").drop(columns="n").sort_values("auroc", ascending=False).reset_index())
ranked.index = pd.RangeIndex(1, len(ranked) + 1, name="rank")
print(f"{len(ranked)} configurations; the top {top_n}:")
display(ranked.head(top_n).round(3))
paper_choice = ranked[(ranked.layer == "7") & (ranked.reduction == "npca") & (ranked.ratio == 0.5)
                      & ranked.estimator.isin(["mvg", "knn1"])]
t4 = paper_table(4)["avg"]
paper_choice = paper_choice.assign(paper=paper_choice.estimator.map(t4), diff=lambda t: t.auroc - t.paper)
print("the paper's choice (layer 7, NPCA 50 %; MVG and 1-NN), rank among all configurations here:")
paper_choice.round(3)

# %% [markdown]
# Per class, with 95 % bootstrap intervals (stratified resampling of the test images): the best
# configuration here and the paper's choice with MVG on each backbone.

# %%
best = ranked.iloc[0]
pick = (df[config].astype(str) == best[config].astype(str).values).all(axis=1)
pick |= (df.layer == "7") & (df.reduction == "npca") & (df.ratio == 0.5) & (df.estimator == "mvg")
sel = df[pick].assign(config=lambda t: t.backbone.str.replace("tf_efficientnet_", "") + " L" + t.layer + " "
                      + t.red + " " + t.estimator,
                      ci=lambda t: t.auroc.round(3).astype(str) + " [" + t.ci_low.round(3).astype(str) + ", "
                      + t.ci_high.round(3).astype(str) + "]")
sel.pivot(index="config", columns="dataset", values="ci")

# %%
slice_csv = Path(results).with_name("grid_08.csv")
tmp = slice_csv.with_suffix(".csv.tmp")
df.drop(columns="red").to_csv(tmp, index=False)
os.replace(tmp, slice_csv)  # atomic: a reader never sees a half-written file
print(f"this page's {len(df)} rows also written to {slice_csv}")

# %% [markdown]
# ## What this shows
#
# The printed ranking: on these three classes every one of the top configurations reads the concatenation of
# all layers ("all"), with MVG or k-NN and NPCA 40-50 % or PCA 30-50 %, at a mean AUROC about 0.02 above the
# paper's choice (layer 7, NPCA 50 %, MVG), which ranks several dozen places down for Lite0 and lower for
# Lite1/Lite2; the paper's 15-class values for that choice (0.975 MVG, 0.973 1-NN) are 0.04-0.07 above ours
# (the "diff" column). The gap between the top and the paper's choice is spread over screw and transistor and
# is smaller than their bootstrap half-widths, so the ranking near the top is not a finding on three classes: many
# configurations tie within the intervals (bottle has 20 good test images). The heat maps show where the
# grid is weak: layers 1-2, worst with PCA, which NPCA lifts on every backbone. This grid is smaller than the paper's: three classes instead of 15, the Lite
# backbones instead of ENB5 and ResNet-18. To bound the flow where time is short, e.g. to Lite0's layer 7:
# `python scripts/build_book.py --only 08_grid -p flow_backbones "[tf_efficientnet_lite0]" -p flow_layers "[7]"`
# (resumable: interrupt and rerun).
