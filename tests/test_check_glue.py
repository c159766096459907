"""scripts/check_glue.py: glued sentences of a built page against the results CSV it offers."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

spec = importlib.util.spec_from_file_location("check_glue", Path(__file__).parents[1] / "scripts" / "check_glue.py")
check_glue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_glue)


def glued_notebook(path: Path, values: dict[str, str]) -> None:
    prefix = "application/papermill.record/"
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k, "mime_prefix": prefix}},
                "data": {f"{prefix}text/plain": repr(v)}} for k, v in values.items()]
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}]}))


@pytest.fixture
def built(tmp_path):
    (tmp_path / "data").mkdir()
    rows = [("a", "1", 0.6), ("b", "1", 0.5), ("a", "7", 0.9), ("b", "7", 1.0), ("a", "all", 0.95), ("b", "all", 0.9)]
    pd.DataFrame(rows, columns=["dataset", "layer", "auroc"]).to_csv(tmp_path / "data" / "02_layers.csv", index=False)
    return tmp_path


def test_sentences_that_restate_the_table_pass(built):
    # by hand: layer means 1 -> 0.55, 7 -> 0.95, all -> 0.925; best layer 7, gain 0.40
    glued_notebook(built / "02_layers.ipynb", {"n_sets": "2", "best_layer": "layer 7", "best_mean": "0.950",
                                               "layer1_mean": "0.550", "deep_gain": "+0.400"})
    assert check_glue.main(built) == 0


@pytest.mark.parametrize(("name", "wrong"), [("best_layer", "all layers"), ("best_mean", "0.925"),
                                             ("layer1_mean", "0.600"), ("deep_gain", "+0.375"), ("n_sets", "3")])
def test_a_sentence_that_disagrees_with_the_table_fails(built, name, wrong, capsys):
    values = {"n_sets": "2", "best_layer": "layer 7", "best_mean": "0.950", "layer1_mean": "0.550",
              "deep_gain": "+0.400", name: wrong}
    glued_notebook(built / "02_layers.ipynb", values)
    assert check_glue.main(built) == 1
    assert f"glued {name} = {wrong!r}" in capsys.readouterr().out
