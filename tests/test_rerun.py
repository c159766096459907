"""A page rerun the way book/rerun.md documents (papermill CLI) writes only beside its own output notebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tad.book.glue import read_glued
from tests.conftest import make_synthetic_mvtec

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# A page as small as a page can be: open_page on the data it is given, then a CSV download glued as a link.
TINY_PAGE = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
data_root = None
cache_dir = None

# %%
import pandas as pd

from tad.book.page import open_page, save_csv
from tad.book.glue import glue_text

page = open_page("tiny", data_root=data_root, classes=["parts"], cache_dir=cache_dir)
glue_text("csv_link", save_csv(pd.DataFrame({"n_train": [len(page.splits[0].train)]}), page))
'''


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time (empty when the folder is absent)."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_a_papermill_rerun_writes_beside_its_output_notebook_never_into_a_book(tmp_path):
    make_synthetic_mvtec(tmp_path / "data", "parts", n_train=3, n_test_good=1, n_test_defective=1, size=32)
    source = tmp_path / "notebooks" / "tiny.py"
    source.parent.mkdir()
    source.write_text(TINY_PAGE)
    book = tmp_path / "book" / "generated"  # a built book beside the rerun folder, as ../book/generated from it
    (book / "data").mkdir(parents=True)
    (book / "data" / "tiny.csv").write_text("n_train\n99\n")
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    before = {folder: _tree(folder) for folder in (book, ROOT / "book" / "generated", ROOT / "_build")}
    env = {k: v for k, v in os.environ.items() if k != "TAD_PAGE_OUTPUT"} | {"PYTHONPATH": str(ROOT)}
    # book/rerun.md: in the folder that will hold the rerun, convert the page, then papermill it there
    subprocess.run([BIN / "jupytext", "--to", "ipynb", "-o", "tiny.ipynb", source], cwd=rerun, env=env, check=True,
                   capture_output=True)
    subprocess.run([BIN / "papermill", "tiny.ipynb", "tiny.out.ipynb", "-p", "data_root", tmp_path / "data",
                    "-p", "cache_dir", tmp_path / "cache"], cwd=rerun, env=env, check=True, capture_output=True)
    assert {folder: _tree(folder) for folder in before} == before
    assert (rerun / "data" / "tiny.csv").read_text() == "n_train\n3\n"
    link = read_glued(rerun / "tiny.out.ipynb")["csv_link"]
    assert link == "{download}`Download these results (CSV) <data/tiny.csv>`"  # relative to the notebook: found
