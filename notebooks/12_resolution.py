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
# # Does reading the images larger close the gap to ENB5? (beyond the paper)
#
# Ono & Mori feed MVTec AD images to EfficientNet-B5 at its native 456 px; their table 3 gives layer 7
# (NPCA 50 %, k-NN) a mean AUROC of 0.97, 0.95 on screw, whose defects (a chipped thread, a bent tip) are a
# few pixels wide at 1024 px. The offline backbones of this book read 224-260 px, a quarter of ENB5's pixels
# or less. This page separates the two things ENB5 has more of: input resolution (each Lite network at
# sizes from its native one up to the data's 512 px) and network scale (Lite0 < Lite1 < Lite2).
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px, so no size beyond 512 adds detail), and the Lite backbones instead of ENB5. The
# paper's ENB5 figures are its table 3, layer 7.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # the reference backbone (the other pages' default)
input_size = None                   # the reference size; None means the weights' native size
# input sizes per backbone (None: native)
sizes = {"tf_efficientnet_lite0": [None, 320, 448], "tf_efficientnet_lite1": [None], "tf_efficientnet_lite2": [None]}
full_sweep = False                  # True: every backbone above at native, 320, 384, 448 and 512 px
layers = [7, "all"]
estimators = ["mvg", "knn1"]
reduction, ratio = "npca", 0.5
pooling = "avg"
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tad.backbones import load_backbone
from tad.paper import paper_table
from tad.report import setup_run
from tad.sweep import run_grid

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)
if full_sweep:
    sizes = {name: [None, 320, 384, 448, 512] for name in sizes}
nets = {name: bb if name == bb.name else load_backbone(name) for name in sizes}  # fails early on a bad name
print("sizes run:", {name: [s or "native" for s in ss] for name, ss in sizes.items()})

# %% [markdown]
# Every backbone at every size: layer 7 and "all", NPCA 50 %, MVG and 1-NN. Extraction cost grows with
# the square of the input size (and with the network), so the default run keeps to the sizes above; the
# full sweep is `python scripts/build_book.py --only 12_resolution -p full_sweep true` (about an hour on 2
# CPU cores the first time, then cached). The seconds each backbone and size took here (extraction, or
# reading the feature cache when an earlier run or page made them):

# %%
frames, seconds = [], {}
for name, ss in sizes.items():
    net = nets[name]
    for s in ss:
        t0 = time.perf_counter()
        df = run_grid(splits, net, results, layers=layers, poolings=[pooling], reductions=[(reduction, ratio)],
                      estimators=estimators, input_size=s, cache_dir=cache_dir, device=device, n_boot=n_boot,
                      seed=seed, progress=False)
        size = s or net.input_size
        seconds[name, size] = time.perf_counter() - t0
        frames.append(df)
runs = pd.concat(frames, ignore_index=True).drop_duplicates(
    ["dataset", "backbone", "input_size", "layer", "estimator"])
pd.Series(seconds, name="seconds").rename_axis(["backbone", "input_size"]).round(1).to_frame()

# %%
table = runs.pivot_table(index=["dataset", "backbone", "input_size"], columns=["layer", "estimator"],
                         values="auroc")
table.round(3)

# %% [markdown]
# ## The best offline configuration per class, against ENB5
#
# For each class, the backbone, size, layer and estimator with the highest AUROC (with its 95 % bootstrap
# interval), beside the paper's ENB5 (table 3, layer 7, NPCA 50 %, k-NN) and this book's reference
# (`backbone` at `input_size`, layer 7, 1-NN, the setup of the page 02_layers).

# %%
paper = paper_table(3)["7"]
ref_size = input_size or bb.input_size
rows = []
for name, g in runs.groupby("dataset"):
    top = g.loc[g.auroc.idxmax()]
    ref = g[(g.backbone == bb.name) & (g.input_size == ref_size) & (g.layer == "7") & (g.estimator == "knn1")]
    rows.append({"dataset": name, "best": f"{top.backbone.removeprefix('tf_efficientnet_')} {top.input_size} px, "
                                          f"layer {top.layer}, {top.estimator}",
                 "auroc": top.auroc, "ci": f"{top.ci_low:.3f} - {top.ci_high:.3f}",
                 "reference": ref.auroc.iloc[0] if len(ref) else float("nan"),
                 "paper ENB5": paper.get(name, float("nan"))})
best = pd.DataFrame(rows).set_index("dataset")
best["best - paper"] = best.auroc - best["paper ENB5"]
best["best - reference"] = best.auroc - best.reference
best.round(3)

# %% [markdown]
# Does size or scale help more? For each class and layer 7 with 1-NN, the gain from the native size to
# the largest size run, per backbone, and from Lite0 to the largest network at native size:

# %%
l7 = runs[(runs.layer == "7") & (runs.estimator == "knn1")].set_index(["dataset", "backbone", "input_size"]).auroc
gains = {}
for (d, name), g in l7.groupby(level=["dataset", "backbone"]):
    g = g.droplevel([0, 1]).sort_index()
    if len(g) > 1:
        gains[d, f"{name.removeprefix('tf_efficientnet_')}: {g.index[0]} -> {g.index[-1]} px"] = g.iloc[-1] - g.iloc[0]
natives = {name: net.input_size for name, net in nets.items()}
for d in l7.index.get_level_values(0).unique():
    small, large = list(natives)[0], list(natives)[-1]
    if small != large and {(d, small, natives[small]), (d, large, natives[large])} <= set(l7.index):
        gains[d, f"{small.removeprefix('tf_efficientnet_')} -> {large.removeprefix('tf_efficientnet_')}, native"] = (
            l7[d, large, natives[large]] - l7[d, small, natives[small]])
gains = pd.Series(gains, name="AUROC gain", dtype=float).rename_axis(["dataset", "change"])
gains.round(3).unstack(0)

# %%
for d in best.index:
    g = gains[d] if d in gains.index.get_level_values(0) else pd.Series(dtype=float)
    size_g = g[g.index.str.contains("px")]
    scale_g = g[g.index.str.contains("native")]
    size_txt = f"{size_g.max():+.3f} ({size_g.idxmax()})" if len(size_g) else "none run"
    scale_txt = f"{scale_g.max():+.3f}" if len(scale_g) else "none run"
    print(f"{d}: largest size gain {size_txt}; scale gain (native sizes) {scale_txt}; best offline {best.auroc[d]:.3f} vs paper ENB5 "
          f"{best['paper ENB5'][d]:.3f} ({best['best - paper'][d]:+.3f})")

# %%
classes_run = sorted(runs.dataset.unique())
fig, axes = plt.subplots(1, len(classes_run), figsize=(3.4 * len(classes_run), 3.2), sharey=True, squeeze=False)
for ax, d in zip(axes[0], classes_run):
    for name, g in runs[(runs.dataset == d) & (runs.layer == "7") & (runs.estimator == "knn1")].groupby("backbone"):
        g = g.sort_values("input_size")
        ax.errorbar(g.input_size, g.auroc, yerr=[g.auroc - g.ci_low, g.ci_high - g.auroc], marker="o", capsize=2,
                    label=name.removeprefix("tf_efficientnet_"))
    if d in paper.index:
        ax.axhline(paper[d], color="k", ls="--", lw=0.8, label="paper ENB5 456 px")
    ax.set(title=d, xlabel="input size (px)")
axes[0, 0].set_ylabel("image AUROC (layer 7, 1-NN)")
axes[0, -1].legend(fontsize=7)
plt.show()

# %% [markdown]
# ## What this shows
#
# The printed lines answer per class whether the offline backbones close the gap to ENB5, and whether
# resolution or network scale moves the AUROC more. Classes whose defects are large relative to the object
# (bottle) are saturated at any size and backbone, so neither can help there. For small defects (screw)
# the hypothesis is that more input pixels let the last stage resolve them, and the printed size gain on
# screw is its test; where a gain is smaller than the error bars above (the
# 95 % bootstrap intervals), this sample cannot tell it from noise, as the page 13_uncertainty explains.
# Two limits hold for any run of this page: the data are downscaled to 512 px, so sizes beyond that add no
# detail, whereas ENB5 read its 456 px from the 1024 px originals; and no Lite network reaches ENB5's scale,
# so a gap that remains at the largest size is the network's and its higher-resolution source's.
