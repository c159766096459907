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
# # Which density estimator scores the features best?
#
# Ono & Mori compare three kinds of estimator fitted on the good training images' features: a multivariate
# Gaussian (MVG, Mahalanobis distance), k nearest neighbours (k = 1, 5, 10) and a normalizing flow. With
# EfficientNet-B5 layer 7 and NPCA 50 % the text reports AUROC 0.975 for MVG (the best) and 0.973 for 1-NN
# (the avg column of table 4), and says that k = 5 or 10 does not improve on k = 1; it gives no number for
# the flow.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px), and the offline stand-in backbone EfficientNet-Lite0 (same 7-stage layout, real
# ImageNet weights) instead of ENB5, whose weights need the Hugging Face Hub. The paper does not describe
# its flow; ours is a small masked autoregressive flow (below). The setup cell prints exactly which data and
# weights made these numbers.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # any of tad.backbones.BACKBONES whose weights are at hand
input_size = None                   # None means the weights' native size
layers = [7]                        # the paper's setting; add "all" for the concatenation of every layer
pooling = "avg"
reduction = "npca"
ratio = 0.5
estimators = ["mvg", "knn1", "knn5", "knn10", "flow"]
flow_params = {"transforms": 2, "hidden": 128, "epochs": 150}  # passed to tad.estimators.Flow
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
from pathlib import Path

import pandas as pd

from tad.estimators import Flow
from tad.features import select
from tad.paper import beside_paper, paper_table
from tad.reduce import Reducer
from tad.report import setup_run
from tad.sweep import run_grid, split_features

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)

# %% [markdown]
# ## The flow
#
# `tad.estimators.Flow`: a masked autoregressive flow (zuko's MAF) on the reduced features, standardised
# with the training mean and standard deviation; each transform is a MADE network with two hidden layers;
# trained by maximum likelihood with full-batch Adam for a fixed number of epochs; the score is -log p(x).
# Its size on the first class, and the training loss it ends at:

# %%
flow = Flow(seed=seed, device=device, **flow_params)
train, _ = split_features(splits[0], bb, input_size=input_size, cache_dir=cache_dir, device=device, progress=False)
Z = Reducer(reduction, ratio).fit_transform(select(train, layers[0], pooling, bb))
flow.fit(Z)
n_params = sum(p.numel() for p in flow.flow_.parameters())
print(f"{splits[0].name}, layer {layers[0]}: {Z.shape[0]} training images x {Z.shape[1]} dims; flow with "
      f"{flow.transforms} transforms, hidden {flow.hidden}x{flow.hidden}: {n_params:,} parameters "
      f"({n_params / Z.shape[0]:,.0f} per training image); {flow.epochs} epochs of full-batch Adam "
      f"(lr {flow.lr}, weight decay {flow.weight_decay}); final mean NLL {flow.final_loss_:.1f}")

# %% [markdown]
# Every estimator on every class, one trial each; rows already in the shared results table are reused.
# The flow's rows are keyed by the estimator name only, so a run with other `flow_params` needs its own
# `results` file.

# %%
df = run_grid(splits, bb, results, layers=layers, poolings=[pooling], reductions=[(reduction, ratio)],
              estimators=estimators, input_size=input_size, cache_dir=cache_dir, device=device,
              n_boot=n_boot, seed=seed, flow_params=flow_params, progress=False)
table = df.pivot_table(index=["layer", "dataset"], columns="estimator", values="auroc")[estimators]
means = df.pivot_table(index="layer", columns="estimator", values="auroc")[estimators]
means.index = [f"mean, layer {x}" for x in means.index]
pd.concat([table.set_axis([f"{d}, layer {x}" for x, d in table.index]), means]).round(3)

# %% [markdown]
# The mean at layer 7 beside the paper's numbers (table 4, avg pooling: MVG and 1-NN; the text gives no
# number for k = 5, 10 or the flow):

# %%
paper = paper_table(4)["avg"].reindex(estimators)
ours = means.loc["mean, layer 7"] if "mean, layer 7" in means.index else means.iloc[0]
beside_paper(ours.rename_axis("estimator"), paper).round(3)

# %%
print(f"best estimator: {ours.idxmax()} ({ours.max():.3f}); paper: mvg (0.975)")
for k in ("knn5", "knn10"):
    if k in ours and "knn1" in ours:
        print(f"{k} - knn1 = {ours[k] - ours['knn1']:+.3f} (paper: no improvement)")
if "flow" in ours and "mvg" in ours:
    print(f"flow - mvg = {ours['flow'] - ours['mvg']:+.3f}; flow - knn1 = {ours['flow'] - ours['knn1']:+.3f}")
print(f"fitting + scoring time per trial, mean over classes (s): "
      + ", ".join(f"{e} {t:.2f}" for e, t in df.groupby("estimator").seconds.mean()[estimators].items()))

# %% [markdown]
# Per class, with 95 % bootstrap intervals (stratified resampling of the test images):

# %%
ci = df.assign(auroc_ci=[f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in zip(df.auroc, df.ci_low, df.ci_high)])
ci.pivot(index=["layer", "dataset"], columns="estimator", values="auroc_ci")[estimators]

# %% [markdown]
# ## What this shows
#
# The printed lines give the verdict on the classes present: the best estimator, whether more neighbours
# help 1-NN, and where the flow stands. MVG and 1-NN are close in the paper (0.002 apart) and both are
# one-line estimators without training; differences of that size are far inside the bootstrap intervals of
# single classes here. The flow has far more parameters than there are good training images (the line
# under "The flow"), so with a few hundred images it can fit the training set closely, and it is the one
# estimator here with training choices (size, epochs, learning rate) that the paper does not give and we did
# not tune; where it falls below MVG and 1-NN (the printed gaps), that, and over-fitting on the hardest class,
# are the likely reasons, not evidence that flows are worse in general. It also costs far more time per trial
# (last printed line). To train it longer:
# `python scripts/build_book.py --only 05_estimators -p flow_params "{epochs: 300}"` (with a separate
# `results` file, see above); to add the all-layer vector: `-p layers "[7, all]"`.
