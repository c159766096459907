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
# # How should an activation map be pooled into a vector? (table 4)
#
# Each activation layer is a C x H x W map; the paper pools it over the H x W positions by average, maximum
# or minimum, or concatenates two or three of these (a 2C or 3C vector). Table 4 (EfficientNet-B5 layer 7,
# NPCA 50 %) gives the mean AUROC over the 15 MVTec AD classes for MVG and 1-NN: average pooling is best
# for both (0.975 and 0.973), and no concatenation beats it.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px), and the offline stand-in backbone EfficientNet-Lite0 (same 7-stage layout, real
# ImageNet weights) instead of ENB5, whose weights need the Hugging Face Hub. The setup cell prints exactly
# which data and weights made these numbers.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
layer = 7                           # table 4: layer 7
reduction = "npca"                  # table 4: NPCA 50 %
ratio = 0.5
estimators = ["mvg", "knn1"]        # table 4's two estimators
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
from pathlib import Path

from tad.features import POOLING_CHOICES
from tad.paper import paper_table, side_by_side
from tad.report import setup_run
from tad.sweep import run_grid

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)

# %% [markdown]
# The three poolings and their four concatenations, for each estimator and class, one trial each; rows
# already in the shared results table are reused.

# %%
df = run_grid(splits, bb, results, layers=[layer], poolings=POOLING_CHOICES, reductions=[(reduction, ratio)],
              estimators=estimators, input_size=input_size, cache_dir=cache_dir, device=device,
              n_boot=n_boot, seed=seed, progress=False)
table = df.pivot_table(index="estimator", columns="pooling", values="auroc")[list(POOLING_CHOICES)].loc[estimators]

# %% [markdown]
# Mean AUROC over the classes present beside table 4 (the paper's mean is over all 15 classes; it gives no
# per-class numbers for this table):

# %%
side_by_side(table, paper_table(4)).round(3)

# %%
paper = paper_table(4).reindex(index=table.index)
for name, t in (("ours", table), ("paper", paper)):
    for est in t.index[t.notna().all(axis=1)]:
        row = t.loc[est]
        others = row.drop("avg")
        print(f"{name:>5} {est:>5}: best {row.idxmax()} ({row.max():.3f}); avg {row['avg']:.3f}, "
              f"avg minus best other {row['avg'] - others.max():+.3f}, range over poolings {row.max() - row.min():.3f}")

# %% [markdown]
# The best pooling per class, and how much it gains over average pooling:

# %%
per_class = df.pivot_table(index=["dataset", "estimator"], columns="pooling", values="auroc")[list(POOLING_CHOICES)]
best = per_class.assign(best=per_class.idxmax(axis=1), gain_over_avg=per_class.max(axis=1) - per_class["avg"])
best[["best", "gain_over_avg"]].rename_axis(columns=None).round(3)

# %% [markdown]
# Per class, with 95 % bootstrap intervals (stratified resampling of the test images):

# %%
ci = df.assign(auroc_ci=[f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in zip(df.auroc, df.ci_low, df.ci_high)])
ci.pivot(index=["dataset", "estimator"], columns="pooling", values="auroc_ci")[list(POOLING_CHOICES)]

# %% [markdown]
# ## What this shows
#
# The printed lines give, for each estimator, the best pooling on the classes present next to the paper's,
# and how far average pooling lies from the best other choice (in table 4 average pooling wins every
# comparison, by a few thousandths to two hundredths). Where our best pooling differs from the paper's, read
# the gap against the bootstrap intervals of the per-class table: with tens of good test images per class an
# AUROC moves by a few hundredths between resamples, so on three classes a gap of that size is weak
# evidence either way. The per-class lines show where the pooling matters at all: bottle is near 1 whatever
# the pooling, so the mean is decided by screw and transistor, whose defects are small (a scratch, a bent
# lead) and can change the extreme (min or max) value of a channel more than its average over the map. The
# backbone (Lite0 at 224 px instead of ENB5 at 456 px) and the three classes against 15 are the likely
# reasons for the difference from the paper.
