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
# # Does the MVTec recipe transfer to solar cells? (beyond the paper)
#
# Ono & Mori study MVTec AD only and name other data sets as future work. On MVTec their recipe is: the
# deepest layer (table 3: layer 7, mean AUROC 0.97), the smallest-variance principal axes (table 2: NPCA
# 50 % at 0.972 beats no reduction at 0.889 and PCA at 0.880), and either estimator. This page runs the same
# three tables on ELPV, electroluminescence images of mono- and polycrystalline solar cells (Buerhop-Lutz
# et al. 2018; defective = defect probability 1, good = 0, the uncertain cells left out), beside the MVTec
# classes at hand, and asks whether the recipe carries over.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px), and the offline backbone EfficientNet-Lite0 instead of ENB5. The ELPV split (good
# cells into train and test, seeded) is this book's, see `tad.data.load_elpv`.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
elpv_classes = ["elpv_mono", "elpv_poly"]  # ELPV cell types (tad.data.ELPV_CATEGORIES); [] for none
layer = 7                           # layer of the reduction and estimator tables (table 2's setup)
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tad.paper import paper_table, side_by_side
from tad.report import resolve_classes, setup_run
from tad.sweep import REDUCTIONS, run_grid

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, [*resolve_classes(data_root, classes), *elpv_classes], backbone,
                       input_size, seed)
size = input_size or bb.input_size
elpv = [s.name for s in splits if s.name.startswith("elpv_")]
mvtec = [s.name for s in splits if s.name not in elpv]


def pick(df: pd.DataFrame, **eq) -> pd.DataFrame:
    """Rows of this page's backbone and input size with the given column values."""
    keep = ((df.input_size == size) & (df.pooling == "avg") & (df.basis == "dims") & (df.noise_std == 0)
            & (df.n_augment == 0) & (df.seed == seed))
    for col, val in eq.items():
        keep &= df[col] == val
    return df[keep]


def with_means(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a mean row per data set family (MVTec classes here, ELPV cell types)."""
    for label, names in [("mean MVTec (these classes)", mvtec), ("mean ELPV", elpv)]:
        if names:
            table.loc[label] = table.loc[names].mean()
    return table


# %% [markdown]
# ## Which layer? (table 3's setup: average pooling, NPCA 50 %, 1-NN)

# %%
grid = run_grid(splits, bb, results, poolings=["avg"], reductions=[("npca", 0.5)], estimators=["knn1"],
                input_size=input_size, cache_dir=cache_dir, device=device, n_boot=n_boot, seed=seed,
                progress=False)
by_layer = pick(grid, reduction="npca", ratio=0.5, estimator="knn1")
layers = [str(i) for i in range(1, bb.n_layers + 1)] + ["all"]
table3 = with_means(by_layer.pivot_table(index="dataset", columns="layer", values="auroc")[layers])
paper3 = paper_table(3)
side_by_side(table3.loc[mvtec + elpv], paper3).round(3)

# %% [markdown]
# The paper has no ELPV figures (its rows are NaN). The best layer per data set, and the 95 % bootstrap
# interval there:

# %%
ci = by_layer.set_index(["dataset", "layer"])
best = table3.loc[mvtec + elpv].idxmax(axis=1)
pd.DataFrame({"best layer": best, "auroc": [table3.loc[d, lay] for d, lay in best.items()],
              "ci": [f"{ci.loc[(d, lay), 'ci_low']:.3f} - {ci.loc[(d, lay), 'ci_high']:.3f}" for d, lay in best.items()],
              f"auroc layer {layer}": table3.loc[mvtec + elpv, str(layer)],
              "auroc layer 1": table3.loc[mvtec + elpv, "1"]}).round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in mvtec + elpv:
    ax.plot(layers, table3.loc[name, layers], marker="o", ls="--" if name in elpv else "-", label=name)
ax.axhline(0.5, color="grey", lw=0.8)
ax.set(xlabel="layer", ylabel="image AUROC", title=f"{bb.name} {size} px, avg, NPCA 50 %, 1-NN (ELPV dashed)")
ax.legend(fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# ## Which reduction? (table 2's setup: layer 7, average pooling, MVG)
#
# The paper's table 2 is the mean over its 15 classes; it is set beside our mean over the MVTec classes
# here. MVG and 1-NN are both run, for the estimator comparison below.

# %%
grid = run_grid(splits, bb, results, layers=[layer], poolings=["avg"], reductions=REDUCTIONS,
                estimators=["mvg", "knn1"], input_size=input_size, cache_dir=cache_dir, device=device,
                n_boot=n_boot, seed=seed, progress=False)
at_layer = pick(grid, layer=str(layer))
at_layer = at_layer[at_layer.estimator.isin(["mvg", "knn1"])].assign(
    config=lambda d: [m if m == "none" else f"{m} {r:.0%}" for m, r in zip(d.reduction, d.ratio)])
configs = ["none"] + [f"{m} {r:.0%}" for m in ("pca", "npca") for r in (0.1, 0.2, 0.3, 0.4, 0.5)]
table2 = with_means(at_layer[at_layer.estimator == "mvg"].pivot_table(index="dataset", columns="config",
                                                                      values="auroc")[configs])
paper2 = paper_table(2).reset_index()
paper2 = pd.Series(paper2.auc.values, index=[m if m == "none" else f"{m} {r:.0%}"
                                             for m, r in zip(paper2.reduction, paper2.ratio)])
table2.loc["paper (mean of 15 classes)"] = paper2[configs]
table2.round(3)

# %% [markdown]
# What NPCA 50 % gains over no reduction and over PCA 50 % (MVG, layer 7), per data set:

# %%
gain = pd.DataFrame({"npca 50% - none": table2["npca 50%"] - table2["none"],
                     "npca 50% - pca 50%": table2["npca 50%"] - table2["pca 50%"],
                     "best reduction": table2[configs].idxmax(axis=1)})
gain.round(3)

# %% [markdown]
# ## MVG or 1-NN? (layer 7, average pooling)

# %%
est = at_layer[at_layer.config.isin(["none", "pca 50%", "npca 50%"])]
table_est = est.pivot_table(index="dataset", columns=["config", "estimator"], values="auroc")
table_est = with_means(table_est)
for c in ["none", "pca 50%", "npca 50%"]:
    table_est[(c, "mvg - knn1")] = table_est[(c, "mvg")] - table_est[(c, "knn1")]
table_est.sort_index(axis=1).round(3)

# %% [markdown]
# Bootstrap intervals of these rows (95 %, stratified resampling of the test images):

# %%
est.assign(ci=est.ci_low.round(3).astype(str) + " - " + est.ci_high.round(3).astype(str)).pivot(
    index="dataset", columns=["config", "estimator"], values="ci").sort_index(axis=1)

# %% [markdown]
# ## Does the recipe transfer? The three findings, checked per data set
#
# Each column is a difference of AUROCs from the tables above: how much the best deep layer (6, 7 or
# "all") beats the best shallow one (1-5); what NPCA 50 % gains over no reduction and over PCA 50 % (layer
# 7, MVG); and MVG over 1-NN (layer 7, NPCA 50 %). A positive value agrees with the paper.

# %%
shallow, deep = [str(i) for i in range(1, 6)], ["6", "7", "all"]
verdict = pd.DataFrame({
    "deep - shallow (best layers)": table3[deep].max(axis=1) - table3[shallow].max(axis=1),
    "npca 50% - none": gain["npca 50% - none"],
    "npca 50% - pca 50%": gain["npca 50% - pca 50%"],
    "mvg - knn1": table_est[("npca 50%", "mvg - knn1")],
}).loc[[i for i in table3.index if i in gain.index]]
verdict.loc["paper (mean of 15 classes)"] = [
    paper3.loc["mean", deep].max() - paper3.loc["mean", shallow].max(),
    gain.loc["paper (mean of 15 classes)", "npca 50% - none"],
    gain.loc["paper (mean of 15 classes)", "npca 50% - pca 50%"], float("nan")]
verdict.round(3)

# %%
for fam, names in [("MVTec", mvtec), ("ELPV", elpv)]:
    if names:
        v = verdict.loc[names]
        print(f"{fam}: deep - shallow {v.iloc[:, 0].min():+.3f} to {v.iloc[:, 0].max():+.3f}; "
              f"npca 50% - none {v.iloc[:, 1].min():+.3f} to {v.iloc[:, 1].max():+.3f}; "
              f"npca 50% - pca 50% {v.iloc[:, 2].min():+.3f} to {v.iloc[:, 2].max():+.3f}; "
              f"mvg - knn1 {v.iloc[:, 3].min():+.3f} to {v.iloc[:, 3].max():+.3f}")
widths = est.ci_high - est.ci_low
print(f"95 % bootstrap interval widths of single AUROCs above: {widths.min():.3f} to {widths.max():.3f}")

# %% [markdown]
# ## What this shows
#
# **Depth transfers.** On the solar cells, as on the MVTec classes, the AUROC rises with depth and the best
# layer is a deep one or tied with one (first table, and the printed "deep - shallow" range). The shape of
# the curve differs: on ELPV even layer 1 is well above chance and the curve is nearly flat from layer 5 on,
# so depth matters less than on screw, where the shallow layers are at or below chance. Cracks and inactive
# areas change the local texture of a cell, which mid-level features already see; the
# object-level ImageNet features of layer 7 add little there.
#
# **NPCA does not matter here, on either family.** With MVG at layer 7, NPCA 50 %, PCA 50 % and no
# reduction lie within a few hundredths of each other on every data set (the printed ranges), far inside
# the bootstrap intervals of the single AUROCs; the paper's table 2 gain of NPCA over no reduction (last row
# of the verdict) is not reproduced on these MVTec classes either, so there is no NPCA effect to transfer.
# The likely reason is the estimator: our MVG uses Ledoit-Wolf shrinkage, whose Mahalanobis distance already
# weighs each principal axis by the inverse of its variance, so the quiet axes dominate the score with or
# without NPCA (the page 11_why_npca shows why those axes carry the signal), while an MVG on ENB5's 512
# layer-7 dimensions with fewer training images than dimensions is ill-conditioned without a reduction.
# The page 03_reduction treats table 2 itself.
#
# **The estimator does not matter** within these intervals either: MVG and 1-NN agree to about a hundredth
# or two on every data set. ELPV's AUROCs stay below MVTec's best classes (about 0.89-0.93 at the deep
# layers), and its intervals are narrower than those of screw and transistor at similar AUROCs because its
# test sets hold hundreds of cells. Whether any single
# difference on this page exceeds the noise is tested with paired resampling on the page 13_uncertainty.
#
# ## Your own images
#
# Everything on this page runs on any folder in the MVTec AD layout:
#
# ```
# DIR/NAME/train/good/*.png            good images only (any size, colour or grey)
# DIR/NAME/test/good/*.png             good test images
# DIR/NAME/test/<defect type>/*.png    anomalous test images, one folder per defect type
# DIR/NAME/ground_truth/<defect type>/*_mask.png   optional, for the pixel maps of 09_maps
# ```
#
# - On the command line: `tad layers --data DIR --category NAME` prints this page's first table (AUROC per
#   layer with bootstrap intervals) for one class; `tad evaluate --data DIR --category NAME --layer 7
#   --reduction npca --ratio 0.5 --estimator mvg` one configuration; `tad grid --data DIR --categories NAME
#   --results my.jsonl` the whole grid.
# - This notebook: `python scripts/build_book.py --only 10_datasets -p data_root DIR -p classes "[NAME]"`
#   (or papermill with `parameters=dict(data_root="DIR", classes=["NAME"], elpv_classes=[])`). A class name
#   that is not under `data_root` fails at once with the list of valid names.
# - In Python: `tad.sweep.evaluate_config("NAME", root="DIR", layer=7, reduction="npca", ratio=0.5,
#   estimator="mvg", cache_dir=".cache/tad")`.
