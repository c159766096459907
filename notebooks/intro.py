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
# # tad: transfer anomaly detection, a literate study
#
# *Can a network trained to tell cats from cars find a scratch on a screw it has never seen scratched?*
#
# Visual inspection rarely has defective examples to learn from: defects are rare, varied and new. Transfer
# anomaly detection sidesteps the problem. An ImageNet-pretrained CNN turns each image into a feature
# vector; a simple model of the *good* images' vectors (a Gaussian, or the distance to the nearest good
# images) flags anything far from them. Nothing is trained on defects, and nothing of the CNN is trained at
# all.
#
# Takuya Ono and Junichiro Mori (The University of Tokyo) asked which of the many small choices in this
# recipe matter, and tried all of them on MVTec AD:
#
# > "Running every combination on MVTec's 15 classes gives 11,550 trials in all. Performance is evaluated
# > as the mean AUC over the 15 classes." (section 3.1, our translation) "Selecting the features of small
# > variance in the CNN's deep activation layers gives high performance even with simple models such as
# > MVG and k-NN." (section 4, our translation)
#
# This book rebuilds that study from its parts, runs it on the data it finds, and sets every number beside
# the paper's:
#
# - **Start here** follows one image from file to score; **The pipeline** explains each step and shows
#   the data.
# - **Reproducing Ono & Mori** redoes the paper's tables and ablations, each page quoting the claim it
#   tests.
# - **Beyond the paper** takes the authors' own next steps (anomaly maps, another data set, why NPCA works,
#   input resolution) and asks how much of each difference is noise.
#
# Every page is a notebook executed when the book is built, calling the small library `tad`, and starts by
# saying which data and weights it found. This page is executed last: what follows is read from the other
# pages of this very build, so it holds for whatever data and parameters the build ran.

# %% tags=["parameters", "remove-cell"]
generated = "../book/generated"  # folder of the executed pages whose glued values this page restates

# %% tags=["remove-cell"]
from pathlib import Path

import pandas as pd

from tad.page import glue_text, read_glued, restate

pages = sorted(p.stem for p in Path(generated).glob("*.ipynb") if p.stem != "intro" and not p.stem.startswith("."))
glued = {name: read_glued(Path(generated) / f"{name}.ipynb") for name in pages}

FINDINGS = [  # (page, sentence with {page/name} references to that build's glued values)
    ("00_start", "One image's way from file to score: on {00_start/start_data}, one layer's average-pooled "
                 "features, NPCA and a Gaussian reach an AUROC of {00_start/start_auroc}."),
    ("01_data", "{01_data/mvtec_found}"),
    ("01_data", "Screw: {01_data/screw_grey} As stored, screw's layer 1 scores {01_data/screw_layer1}, "
                "{01_data/screw_layer1_vs_chance}; with every image at the same mean grey level it scores "
                "{01_data/screw_layer1_normalised}."),
    ("02_layers", "Which layer: over {02_layers/n_sets} data set(s) the best mean AUROC is at "
                  "{02_layers/best_layer} ({02_layers/best_mean}), against {02_layers/layer1_mean} at layer 1. "
                  "{02_layers/vs_paper}"),
    ("03_reduction", "Which axes: the paper's configuration ({03_reduction/paper_reading}) gives "
                     "{03_reduction/paper_config} Under the {03_reduction/basis} reading "
                     "{03_reduction/n_dependent} of {03_reduction/n_cells} cells depend on an arbitrary basis of "
                     "the training null space; under the book's default, {03_reduction/n_dependent_block}."),
    ("04_pooling", "{04_pooling/summary} {04_pooling/resolved}"),
    ("05_estimators", "{05_estimators/summary}"),
    ("06_augmentation", "Noise augmentation: {06_augmentation/n_lower} of {06_augmentation/n_pairs} comparisons "
                        "with the clean fit are lower beyond noise, {06_augmentation/n_higher} higher."),
    ("07_backbones", "{07_backbones/skipped} {07_backbones/vs_paper}"),
    ("07b_baselines", "Against simple baselines: {07b_baselines/n_higher} of {07b_baselines/n_cmp} comparisons "
                      "favour a baseline beyond noise, {07b_baselines/n_lower} favour the pretrained features."),
    ("08_grid", "Over {08_grid/n_configs} configurations ({08_grid/n_models} distinct models) the best mean AUROC "
                "is {08_grid/best_config} ({08_grid/best_auroc}); {08_grid/n_tied} distinct models tie with it "
                "within noise. The paper's choice ({08_grid/paper_config}) ranks {08_grid/paper_rank} of "
                "{08_grid/n_models} at "
                "{08_grid/paper_auroc} and "
                "{08_grid/paper_ties}."),
    ("08b_selection", "Chosen on training images only, the configuration's mean test AUROC is "
                      "{08b_selection/mean_chosen} against {08b_selection/mean_oracle} for the test-set best "
                      "({08b_selection/mean_gap}). {08b_selection/saturation}"),
    ("09_maps", "{09_maps/summary}"),
    ("10_datasets", "Hardest defect types: {10_datasets/hardest}."),
    ("11_why_npca", "Why NPCA: {11_why_npca/null_adds}; {11_why_npca/residual}."),
    ("13_uncertainty", "{13_uncertainty/perfect} Of {13_uncertainty/n_comparisons} comparisons with the "
                       "family-wise error held at {13_uncertainty/alpha}, {13_uncertainty/n_clear} differ beyond "
                       "noise."),
]
listed = {page for page, _ in FINDINGS}
FINDINGS += [(page, f"{{{page}/finding}}") for page in pages if page not in listed and "finding" in glued[page]]

lines = [(page, restate(template, glued)) for page, template in FINDINGS]  # None: not computed in this build
glue_text("findings", "\n".join(f"- {{doc}}`{page}`: {text}" for page, text in lines if text is not None))

# %% [markdown]
# ## What this build found
#
# Each line restates one page of this build, in that page's own generated words; follow the link for its
# tables, intervals and the paper's figures beside ours.
#
# ```{glue:md} findings
# :format: myst
# ```
#
# The same numbers as a table:

# %% tags=["remove-input"]
NUMBERS = [  # (page, glue name, what it is)
    ("00_start", "start_auroc", "start page: AUROC [95 % interval]"),
    ("00_start", "start_good", "start page: good test images"),
    ("01_data", "mvtec_n", "data: MVTec AD classes present"),
    ("01_data", "elpv_mono_counts", "data: ELPV mono cells, train / test"),
    ("01_data", "elpv_poly_counts", "data: ELPV poly cells, train / test"),
    ("01_data", "grey_train", "screw: median grey level, training images"),
    ("01_data", "grey_good", "screw: median grey level, good test images"),
    ("01_data", "grey_defective", "screw: median grey level, defective test images"),
    ("01_data", "screw_layer1", "screw, layer 1: AUROC as stored"),
    ("01_data", "screw_layer1_normalised", "screw, layer 1: AUROC, grey level normalised"),
    ("02_layers", "n_sets", "layers: data sets"),
    ("02_layers", "layer1_mean", "layers: mean AUROC at layer 1"),
    ("02_layers", "best_mean", "layers: best mean AUROC"),
    ("02_layers", "deep_gain", "layers: best minus layer 1"),
]
pd.DataFrame([{"page": page, "quantity": what, "value": glued[page][name]}
              for page, name, what in NUMBERS if name in glued.get(page, {})],
             columns=["page", "quantity", "value"]).set_index("page")

# %% [markdown]
# ```{tableofcontents}
# ```
