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


def rule(column, how="first", kind="auroc", by=None, **where):
    return json.dumps({"column": column, "how": how, "kind": kind, "by": by, "where": where})


@pytest.fixture
def other_page(tmp_path):
    (tmp_path / "data").mkdir()
    rows = [("a", 1, 0.61, 12.0), ("b", 1, 0.5, 8.0), ("a", 7, 0.9, 12.0), ("b", 7, 1.0, 8.0)]
    pd.DataFrame(rows, columns=["dataset", "layer", "auroc", "n_test"]).to_csv(tmp_path / "data" / "05_x.csv",
                                                                              index=False)
    return tmp_path


def recorded(values):
    # by hand from the rows above: layer 7 mean (0.9 + 1.0) / 2 = 0.95, best layer 7, a's layer 1 0.61,
    # 2 data sets, 20 test images in layer 1's rows
    glued = {"best_mean": "0.950", "best_layer": "7", "a_layer1": "0.610", "n_sets": "2", "n_test": "20"} | values
    rules = {"best_mean": rule("auroc", "mean", layer=7), "best_layer": rule("auroc", "argmax", "text", by="layer"),
             "a_layer1": rule("auroc", dataset="a", layer=1), "n_sets": rule("dataset", "nunique", "count"),
             "n_test": rule("n_test", "sum", "count", layer=1)}
    return glued | {f"{k}.csv_rule": v for k, v in rules.items()}


def test_values_a_page_read_from_its_csv_are_recomputed_and_pass(other_page, capsys):
    glued_notebook(other_page / "05_x.ipynb", recorded({}))
    assert check_glue.main(other_page) == 0
    assert capsys.readouterr().out.count("agrees with its CSV") == 5


@pytest.mark.parametrize(("name", "wrong"), [("best_mean", "0.925"), ("best_layer", "1"), ("a_layer1", "0.500"),
                                             ("n_sets", "3"), ("n_test", "24")])
def test_a_value_that_disagrees_with_the_pages_csv_fails(other_page, name, wrong, capsys):
    glued_notebook(other_page / "05_x.ipynb", recorded({name: wrong}))
    assert check_glue.main(other_page) == 1
    assert f"glued {name} = {wrong!r}" in capsys.readouterr().out


def test_a_page_that_glues_from_a_csv_it_does_not_offer_fails(tmp_path, capsys):
    glued_notebook(tmp_path / "05_x.ipynb", {"n_sets": "2", "n_sets.csv_rule": rule("dataset", "nunique", "count")})
    assert check_glue.main(tmp_path) == 1
    assert "not in" in capsys.readouterr().out
