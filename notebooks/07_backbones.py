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
# # Does the choice of backbone matter?
#
# Ono & Mori ran their whole grid (table 1) with two ImageNet networks, ResNet-18 (layers 1-5) and
# EfficientNet-B5 (layers 1-7). They report that ENB5 was better and show only ENB5 results; table 3 gives
# its AUROC per layer (k-NN, NPCA 50 %), rising to 0.97 at layer 7 on average over the 15 MVTec AD classes.
# There is no ResNet-18 number in the paper.
#
# **This run differs from the paper**: the MVTec AD classes present under the data root (here 3 of 15,
# downscaled to 512 px), and the backbones: ENB5 and ResNet-18 need the Hugging Face Hub for their weights,
# so each is tried and, when its weights cannot be had, skipped with the reason printed (never replaced by
# random weights). The offline EfficientNet-Lite0/1/2 (same 7-stage layout, real ImageNet weights, native
# 224/240/260 px) always run. The setup cells print exactly which data and weights made these numbers.

# %% tags=["parameters"]
data_root = None                    # MVTec-layout root; None means $TAD_DATA
classes = None                      # list of class names; None means every MVTec AD class present
backbone = "tf_efficientnet_lite0"  # the reference backbone, printed with the data
backbones = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2",
             "tf_efficientnet_b5", "resnet18"]  # tried in turn; those without weights here are skipped
input_size = None                   # None means each backbone's native size
estimators = ["knn1", "mvg"]        # table 3 uses k-NN; MVG is the paper's best estimator
reduction, ratio = "npca", 0.5
pooling = "avg"
device = "cpu"
cache_dir = "../.cache/tad"
results = "../.cache/results/grid.jsonl"
n_boot = 1000
seed = 0

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tad.paper import paper_table
from tad.report import load_backbones, setup_run
from tad.sweep import run_grid

Path(results).parent.mkdir(parents=True, exist_ok=True)
splits, bb = setup_run(data_root, classes, backbone, input_size, seed)

# %% [markdown]
# Every backbone asked for, with its weights' provenance, or the reason it is skipped:

# %%
loaded = load_backbones(backbones, have=bb)

# %% [markdown]
# Every layer and their concatenation ("all") of each backbone, one trial per class and estimator; rows go
# to the shared results table (so 02_layers' Lite0 k-NN rows are reused).

# %%
frames = []
for name, b in loaded.items():
    df = run_grid(splits, b, results, poolings=[pooling], reductions=[(reduction, ratio)], estimators=estimators,
                  input_size=input_size, cache_dir=cache_dir, device=device, n_boot=n_boot, seed=seed,
                  progress=False)
    frames.append(df)
df = pd.concat(frames, ignore_index=True)
layers = [str(i) for i in range(1, max(b.n_layers for b in loaded.values()) + 1)] + ["all"]
table = df.pivot_table(index=["estimator", "backbone"], columns="layer", values="auroc")  # mean over classes
table = table.reindex(columns=layers).loc[estimators]
print(f"mean image AUROC over {df.dataset.nunique()} classes ({', '.join(sorted(df.dataset.unique()))})")
table.round(3)

# %% [markdown]
# Beside the paper's table 3 (ENB5, k-NN, NPCA 50 %): its mean over the *same* classes, and each of our
# rows minus it. (The paper's mean over all 15 classes is 0.97 at layer 7.)

# %%
present = sorted(df.dataset.unique())
paper = paper_table(3)
paper_mean = paper.loc[[c for c in present if c in paper.index]].mean().reindex(layers)
compare = pd.concat({"ours": table, "ours - paper": table - paper_mean}, names=["", "estimator", "backbone"])
compare.loc[("paper", "knn1", "tf_efficientnet_b5 (table 3)"), :] = paper_mean
compare.round(3)

# %%
best = table.idxmax(axis=1)
for (est, name), lay in best.items():
    print(f"{est:5s} {name}: best layer {lay} (AUROC {table.loc[(est, name), lay]:.3f}); "
          f"layer 1 {table.loc[(est, name), '1']:.3f}")
last = {name: str(b.n_layers) for name, b in loaded.items()}
at_last = pd.Series({k: table.loc[k, last[k[1]]] for k in table.index})
print("\nlast layer (7 for EfficientNet, 5 for ResNet) by estimator, best backbone first:")
print(at_last.groupby(level=0, group_keys=False).apply(lambda s: s.sort_values(ascending=False)).round(3)
      .to_string())
print(f"\npaper, ENB5 k-NN layer 7 over these classes: {paper_mean['7']:.3f}")
per_class = df[(df.layer == "7") & (df.estimator == "knn1")].pivot(index="backbone", columns="dataset", values="auroc")
print("k-NN, layer 7, ours - paper per class:")
print((per_class - paper.loc[per_class.columns, "7"]).round(3).to_string())

# %% [markdown]
# Per class at each backbone's last layer, with 95 % bootstrap intervals (stratified resampling of the
# test images):

# %%
top = df[df.layer == df.backbone.map(last)]
top = top.assign(ci=top.auroc.round(3).astype(str) + " [" + top.ci_low.round(3).astype(str) + ", "
                 + top.ci_high.round(3).astype(str) + "]")
top.pivot(index=["estimator", "backbone"], columns="dataset", values="ci").loc[estimators]

# %%
fig, axes = plt.subplots(1, len(estimators), figsize=(5 * len(estimators), 3.8), sharey=True, squeeze=False)
for ax, est in zip(axes[0], estimators):
    for name in table.loc[est].index:
        row = table.loc[(est, name)].drop("all").dropna()
        ax.plot(row.index.astype(int), row.values, marker="o", label=name)
    ax.plot(paper_mean.drop("all").index.astype(int), paper_mean.drop("all").values, "k--", marker="s",
            label="paper ENB5, k-NN (table 3)")
    ax.set(title=est, xlabel="layer", xticks=range(1, len(layers)))
axes[0, 0].set_ylabel(f"mean AUROC ({len(present)} classes)")
axes[0, -1].legend(fontsize=8, loc="lower right")
fig.suptitle(f"{pooling} pooling, {reduction} {ratio:.0%}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What this shows
#
# Only the three Lite backbones ran here: the SKIPPED lines say why ENB5 and ResNet-18 did not (their
# weights need the Hugging Face Hub), so the paper's ENB5-versus-ResNet-18 comparison cannot be repeated
# offline. Among the Lite models the picture of table 3 holds: the AUROC rises with depth overall (with
# small dips between layers 2-4), layer 1 is close to chance, and the last layers carry the signal. Two
# differences from the paper, both in the printed tables: every Lite model is a few hundredths below ENB5 at
# layer 7 on these classes (the "ours - paper" rows), the gap coming mostly from screw, and for every Lite
# model the concatenation of all layers beats layer 7, whereas in table 3 they tie. Both fit a smaller
# network read at 224-260 px instead of ENB5's 456 px: its last stage alone is a weaker description of
# small defects such as screw's, and the earlier stages add what it misses. Bigger is not better among the
# Lite models: Lite0, the smallest, is best at layer 7 and Lite1 worst, but the gaps are inside the
# bootstrap intervals above (bottle has 20 good test images), so the three are not distinguishable here.
# With the weights at hand (a local state_dict, see `tad.backbones.load_backbone`), ENB5 and ResNet-18 join
# the table with no change to this page.
