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
# the paper's. Every page is a notebook executed when the book is built, calling the small library `tad`, and
# starts by saying which data and weights it found. This page is executed last: what follows is read from the
# other pages of this very build, so it holds for whatever data and parameters the build ran.
#
# ## Words you need first
#
# Each word links to the {doc}`glossary <../glossary>`. The data are {term}`MVTec AD` (photographs of objects
# with and without defects) and, where it is missing, {term}`ELPV` (solar cells). A *configuration* is one
# choice of network {term}`layer`, {term}`pooling`, reduction ({term}`PCA` keeps the principal axes of largest
# variance, {term}`NPCA` those of smallest) and estimator ({term}`MVG`, a Gaussian scored by the
# {term}`Mahalanobis distance`, or {term}`k-NN`). A configuration is judged by its {term}`AUROC`: the chance
# that a defective image scores above a good one, 1 a perfect ranking, one half chance. Every AUROC comes with
# its 95 % interval, a {term}`score interval`. Two configurations on the same images are compared by a
# {term}`paired comparison` ({term}`DeLong` test, {term}`MOVER` interval) with the {term}`Holm correction`;
# a difference the data do not resolve is called {term}`within noise`.

# %% tags=["parameters", "remove-cell"]
generated = "../book/generated"  # folder of the executed pages whose glued values this page restates

# %% tags=["remove-cell"]
from pathlib import Path

from tad.page import glue_text, read_glued
from tad.teach import restate_list, takeaway_items

pages = sorted(p.stem for p in Path(generated).glob("*.ipynb") if p.stem != "intro" and not p.stem.startswith("."))
glued = {name: read_glued(Path(generated) / f"{name}.ipynb") for name in pages}
for values in glued.values():  # each page's takeaways, one sentence each, as takeaway_1, takeaway_2, ...
    values |= {f"takeaway_{i}": item for i, item in enumerate(takeaway_items(values.get("takeaways", "")), 1)}

BOTTOM_LINE = [  # (page, lead, template): five lines of {page/name} references to this build's glued values
    ("02_layers", "**Which layer.**", "On {02_layers/n_sets} data set(s) the best mean AUROC of table 3's recipe "
                                      "is at {02_layers/best_layer} ({02_layers/best_mean}), against "
                                      "{02_layers/layer1_mean} at layer 1."),
    ("03_reduction", "**Which axes.**", "{03_reduction/takeaway_1}"),
    ("08_grid", "**The paper's configuration**", "({08_grid/paper_config}) ranks {08_grid/paper_rank} of "
                                                 "{08_grid/n_models} distinct models at {08_grid/paper_auroc} and "
                                                 "{08_grid/paper_ties}; {08_grid/n_tied} distinct models in all "
                                                 "tie with the best."),
    ("07b_baselines", "**Against simple baselines.**", "{07b_baselines/takeaway_1}"),
    ("13_uncertainty", "**How much is noise.**", "{13_uncertainty/takeaway_1}"),
]
QUESTIONS = {  # page: its question, as its title asks it (the answer is that page's first takeaway)
    "00_start": "How does one image become a score?",
    "01_data": "What data does this run have?",
    "02_layers": "Which layer carries the anomaly signal?",
    "03_reduction": "Which principal axes should the features keep?",
    "04_pooling": "How should an activation map be pooled?",
    "05_estimators": "Which estimator scores the features best?",
    "06_augmentation": "Does noise augmentation help?",
    "07_backbones": "Does the backbone matter?",
    "07b_baselines": "How much do pretrained features add over simple baselines?",
    "08_grid": "Where does the paper's configuration stand in the whole grid?",
    "08b_selection": "Can the configuration be chosen without the test set?",
    "09_maps": "Where is the defect?",
    "10_datasets": "Does the recipe transfer to solar cells?",
    "11_why_npca": "Why do the smallest-variance axes work?",
    "12_resolution": "Does reading the images larger help?",
    "13_uncertainty": "How much of a difference in AUROC is noise?",
    "14_line": "How do I fit a detector once and score my line's images?",
}
ANSWERS = {"01_data": "{01_data/mvtec_found}"}  # pages without a takeaways box: the sentence that answers

glue_text("bottom_line", restate_list(BOTTOM_LINE, glued))
glue_text("findings", restate_list([(page, f"{{doc}}`{question} <{page}>`", ANSWERS.get(page, f"{{{page}/takeaway_1}}"))
                                    for page, question in QUESTIONS.items()], glued))

# %% [markdown]
# ## The bottom line
#
# ```{glue:md} bottom_line
# :format: myst
# ```
#
# ## What each page found
#
# Each line asks one page's question and answers it with that page's first key takeaway, in this build's
# numbers; follow the link for its tables, intervals and the paper's figures beside ours.
#
# ```{glue:md} findings
# :format: myst
# ```
#
# ## A reading path
#
# | If you want to ... | read | first know |
# |---|---|---|
# | see the idea work on one image | {doc}`00_start` | Python; what an image classifier is |
# | understand each step and its maths | {doc}`00_method`, then {doc}`01_data` | means, covariances, eigenvectors |
# | check the paper's claims | {doc}`02_layers` to {doc}`08b_selection`, in order | the method page; the words above |
# | judge how sure any number is | {doc}`13_uncertainty`, then {doc}`08_grid` | the AUROC and its interval |
# | run it on your own images | {doc}`00_start`, the section "Your own images" of {doc}`10_datasets`, {doc}`../rerun` | a folder in MVTec AD's layout |
#
# Reading time per page, our estimate (code cells skimmed, tables read): the start page and the data page
# about 10 minutes each; the method page about 30; each of the paper's pages (layers to selection) 10 to 15;
# each page beyond the paper 15 to 20. Running a page yourself is described in {doc}`../rerun`.

# %% [markdown]
# ```{tableofcontents}
# ```
