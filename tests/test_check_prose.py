"""scripts/check_prose.py: literal result figures in a notebook's prose are found; settings, quotes, code are not."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "check_prose.py"
_SPEC = importlib.util.spec_from_file_location("check_prose", _PATH)
check_prose = importlib.util.module_from_spec(_SPEC)
sys.modules["check_prose"] = check_prose
_SPEC.loader.exec_module(check_prose)


def figures(text):
    return [(kind, figure) for _, kind, figure in check_prose.find_figures(text)]


@pytest.mark.parametrize("text, want", [
    ("our 0.945 against 0.934 in table 3", [("decimal", "0.945"), ("decimal", "0.934")]),
    ("bottle ranks 74th of the grid", [("rank", "74th")]),
    ("here 3 of 15, downscaled", [("rank", "3 of 15")]),
    ("here 3 of\n15 classes", [("rank", "3 of 15")]),  # a line break inside the phrase
    ("mean .95 on screw", [("decimal", ".95")]),
    ("a difference of +0.012 or -0.009", [("decimal", "+0.012"), ("decimal", "-0.009")]),
    ("a perfect 1.00 on bottle", [("decimal", "1.00")]),
    ("it ranks 3 and is #2 in MVG", [("rank", "ranks 3"), ("rank", "#2")]),
    ("it flags 93 % of defects, a gain of 4.5 %", [("percent", "93 %"), ("percent", "4.5 %")]),
    ("its share rose to 37 %", [("percent", "37 %")]),  # not round: a result even after a setting word
    ("a **0.93** AUROC", [("decimal", "0.93")]),
])
def test_find_figures_flags_typed_results(text, want):
    assert figures(text) == want


@pytest.mark.parametrize("text", [
    "> the paper reports 0.972 (table 2)",
    "  > quoted too: ranks 74th, 3 of 15",
    "layer 7 of EfficientNet-B5",
    "`ratio=0.5` and `0.934`",
    "$d = 784$ and $\\alpha = 0.05$",
    "$$\nz = 0.5\\,x\n$$",
    "```python\nauroc = 0.934\n```",
    "NPCA 50 % keeps the smallest-variance axes; PCA 10-50 %; ratios of 20-50 %",
    "keep the 50 % of principal axes with the smallest variance",
    "95 % bootstrap intervals; a 95 % stratified interval; the 95 % paired bootstrap interval",
    "80 % of the images with 5 folds",
    "section 3.2 of the paper, published in 2021, timm 1.0.31 and torch 0.29.1",
    "15 MVTec AD classes, 209 training images",
    "[the paper](https://arxiv.org/abs/2101.00012) and <!-- 0.5 -->",
    "our mean is {glue:text}`mean_auroc` against the paper's",
])
def test_find_figures_leaves_quotes_settings_code_maths_and_integers_alone(text):
    assert figures(text) == []


NOTEBOOK = '''# ---
# jupyter:
#   kernelspec:
#     name: python3
# ---

# %% [markdown]
# # A page
#
# > Table 3: layer 7 reaches 0.97.
#
# Ours reaches 0.95 here.

# %%
x = 0.934  # code is not prose

# %% [markdown]
# It ranks 2nd.
'''


def test_check_file_names_cell_line_and_text(tmp_path):
    path = tmp_path / "page.py"
    path.write_text(NOTEBOOK)
    found = check_prose.check_file(path)
    assert [(f.cell, f.line, f.kind, f.text) for f in found] == [(1, 12, "decimal", "0.95"), (3, 18, "rank", "2nd")]
    assert found[0].context == "Ours reaches 0.95 here."
    assert str(found[0]).startswith(f"{path}:12: cell 1: decimal '0.95'")


def test_main_exits_1_on_findings_and_0_on_clean_prose(tmp_path, capsys):
    bad, good = tmp_path / "bad.py", tmp_path / "good.py"
    bad.write_text(NOTEBOOK)
    good.write_text(NOTEBOOK.replace("Ours reaches 0.95 here.", "Ours: {glue:text}`ours`.").replace("2nd", "well"))
    assert check_prose.main([str(good)]) == 0
    capsys.readouterr()
    assert check_prose.main([str(good), str(bad)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": cell")[0] for line in lines] == [f"{bad}:12", f"{bad}:18"]
