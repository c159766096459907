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
# # Does noise augmentation help?
#
# Ono & Mori also trained the estimators on the good images plus noisy copies of them. They give no table
# for it, only a sentence next to table 4: with EfficientNet-B5 layer 7 and NPCA 50 %, simple noise
# augmentation *lowered* the AUC, by "less than 0.1 point" for both MVG and k-NN, so augmentation matters
# little when the features come from a pretrained network. They do not say which noise, how strong, or how
# many copies.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px), and the offline stand-in backbone EfficientNet-Lite0 (same 7-stage layout, real
# ImageNet weights) instead of ENB5, whose weights need the Hugging Face Hub. The noise is our choice:
# Gaussian, added to the [0, 1] image before normalisation, at a few standard deviations, with
# `n_augment` noisy copies of every training image added to the clean ones (test images are never
# augmented). The setup cell prints exactly which data and weights made these numbers.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
layer = 7
reduction, ratio = "npca", 0.5
pooling = "avg"
estimators = ["mvg", "knn1"]        # the two estimators the paper's sentence is about
noise_stds = [0.02, 0.05, 0.1]      # std of the Gaussian noise on the [0, 1] image; 0 (no augmentation) is always run
n_augment = 1                       # noisy copies per training image, added to the clean images
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from tad.features import select
from tad.reduce import Reducer
from tad.report import setup_run
from tad.sweep import run_grid, split_features

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)
if not (isinstance(n_augment, int) and n_augment >= 1):
    raise ValueError(f"n_augment {n_augment!r} must be an int >= 1 (the number of noisy copies per image)")
if not noise_stds or any(not s > 0 for s in noise_stds):
    raise ValueError(f"noise_stds {noise_stds!r} must be a non-empty list of values > 0")

# %% [markdown]
# One trial per class, estimator and noise level (no noise, and each `noise_stds` with `n_augment` copies).
# The features of every noisy copy are one more extraction of the training images, cached like the clean
# ones; each trial is a row of the shared results table.

# %%
levels = [(0.0, 0)] + [(float(s), n_augment) for s in noise_stds]
df = pd.concat([run_grid(splits, bb, results, layers=[layer], poolings=[pooling], reductions=[(reduction, ratio)],
                         estimators=estimators, input_size=input_size, noise_std=std, n_augment=n_aug,
                         cache_dir=cache_dir, device=device, n_boot=n_boot, seed=seed, progress=False)
                for std, n_aug in levels], ignore_index=True)
table = df.pivot_table(index=["estimator", "noise_std"], columns="dataset", values="auroc")
table["mean"] = table.mean(axis=1)
table = table.loc[estimators]
table.round(3)

# %% [markdown]
# Training set sizes, to confirm the augmented runs did see the noisy copies (clean + `n_augment` x clean):

# %%
df.pivot_table(index=["estimator", "noise_std"], columns="dataset", values="n_train").loc[estimators]

# %% [markdown]
# The difference from no augmentation (augmented minus clean AUROC), per class and for the mean. The
# paper reports only that the mean over its 15 classes fell by less than 0.1 point for both estimators.

# %%
diff = table - table.xs(0.0, level="noise_std").reindex(table.index, level="estimator")
diff = diff.drop(index=0.0, level="noise_std")
diff.round(4)

# %%
lo, hi = diff["mean"].idxmin(), diff["mean"].idxmax()
print(f"mean AUROC change: largest drop {-diff['mean'].min():.4f} ({lo[0]}, noise {lo[1]}), "
      f"largest gain {diff['mean'].max():+.4f} ({hi[0]}, noise {hi[1]})")
for est in estimators:
    d = diff.loc[est, "mean"]
    print(f"{est}: mean change {', '.join(f'{v:+.4f} at {s}' for s, v in d.items())}; "
          f"{(d < 0).sum()} of {len(d)} noise levels lower the mean")
per_class = diff.drop(columns="mean")
print(f"per class, the changes range from {per_class.min().min():+.4f} to {per_class.max().max():+.4f}")

# %% [markdown]
# 95 % bootstrap intervals of each AUROC (stratified resampling of the test images). Their half-width,
# beside the largest per-class change, shows whether any change is larger than the test-set noise:

# %%
ci = df.assign(ci=df.auroc.round(3).astype(str) + " [" + df.ci_low.round(3).astype(str) + ", "
               + df.ci_high.round(3).astype(str) + "]")
display(ci.pivot(index=["estimator", "noise_std"], columns="dataset", values="ci").loc[estimators])
half = ((df.ci_high - df.ci_low) / 2).groupby(df.dataset).median()
print("median CI half-width per class:", half.round(3).to_dict())
print("largest |change| per class:     ", diff.drop(columns="mean").abs().max().round(3).to_dict())

# %% [markdown]
# How far does the noise move an image in the space the estimators see? For each class and strength: the
# median distance between a training image's noisy copy and its clean original, divided by the median
# distance from a clean training image to its nearest other clean image. Measured in the layer's pooled
# features, after NPCA fitted on the clean images only, and after NPCA fitted on clean + noisy images (what
# the trials above do). Below 1, the copies are near-duplicates of the clean images.

# %%
shift = {}
for split in splits:
    for std in noise_stds:
        train, _ = split_features(split, bb, input_size=input_size, noise_std=std, n_augment=1,
                                  cache_dir=cache_dir, device=device, progress=False)
        X = select(train, layer, pooling, bb)
        n = len(split.train)
        spaces = {"features": X, f"{reduction} fit on clean": Reducer(reduction, ratio).fit(X[:n]).transform(X),
                  f"{reduction} fit on clean+noisy": Reducer(reduction, ratio).fit(X).transform(X)}
        for space, Z in spaces.items():
            spacing = NearestNeighbors(n_neighbors=2).fit(Z[:n]).kneighbors(Z[:n])[0][:, 1]
            shift[(split.name, space, std)] = np.median(np.linalg.norm(Z[n:] - Z[:n], axis=1)) / np.median(spacing)
shift = pd.Series(shift).unstack([1, 2]).rename_axis(index="dataset", columns=["space", "noise_std"])
shift[list(spaces)].round(2)

# %%
fig, axes = plt.subplots(1, len(estimators), figsize=(4.5 * len(estimators), 3.6), sharey=True, squeeze=False)
for ax, est in zip(axes[0], estimators):
    rows = df[df.estimator == est].sort_values("noise_std")
    for name, g in rows.groupby("dataset"):
        ax.errorbar(g.noise_std, g.auroc, yerr=[g.auroc - g.ci_low, g.ci_high - g.auroc], marker="o",
                    capsize=3, label=name)
    ax.plot(table.loc[est].index, table.loc[est, "mean"], "k--", marker="s", label="mean")
    ax.set(title=est, xlabel="noise std (on [0, 1] image)", xticks=[s for s, _ in levels])
axes[0, 0].set_ylabel("image AUROC (95 % CI)")
axes[0, -1].legend(fontsize=8, loc="lower left")
fig.suptitle(f"{bb.name}, layer {layer}, {pooling}, {reduction} {ratio:.0%}, clean + {n_augment} noisy copy(ies)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What this shows
#
# Noise augmentation changes little, as the paper says, but not in the direction it says. In the default run
# (noise std 0.02, 0.05, 0.1, one noisy copy per image) the mean AUROC moves by less than 0.01 either way
# for both MVG and 1-NN: std 0.05 lowers it, 0.02 and 0.1 raise it, so there is neither a consistent drop
# nor a trend with the noise strength. The per-class changes on screw and transistor are well inside their
# bootstrap half-widths, and bottle sits at the ceiling (AUROC of at least 0.998 throughout), so none of these
# changes is distinguishable from test-set noise. The paper's "less than 0.1 point" is ambiguous (0.1 AUROC,
# or 0.1 percentage point = 0.001): our largest drop of the mean (printed above) is far below the first and
# above the second, but the paper's ENB5 means over 15 classes have much smaller sampling error than ours
# over three. Why so little? Not because the noise leaves the features alone: in the pooled features a
# noisy copy lies a few nearest-neighbour spacings from its original, and many more in an NPCA space fitted
# on clean images only, since the noise lands largely in the small-variance directions NPCA keeps (the
# last table). But the trials fit NPCA on the augmented set, whose smallest-variance axes are those the
# noise moves least; there the copies sit only slightly more than one spacing from their originals, a mild
# widening of the training distribution that barely changes how the test images rank. To try more copies
# or stronger noise:
# `python scripts/build_book.py --only 06_augmentation -p n_augment 3 -p noise_stds "[0.05, 0.2]"`.
