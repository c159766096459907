"""tad.book.words: the sentences a page builds follow its numbers."""

import numpy as np
import pandas as pd
import pytest

from tad.book.words import (bullets, data_sentence, deviation_sentence, layer_name, listing, pairwise_summary,
                            reduction_key, spread_cell, verdict_list, verdict_sentence, versus_chance)


@pytest.mark.parametrize(("items", "text"), [([], "none"), (["a"], "a"), (["a", "b"], "a and b"),
                                             (["a", "b", "c"], "a, b and c")])
def test_listing_joins_items_as_prose(items, text):
    assert listing(items) == text


def test_listing_says_the_given_word_when_empty():
    assert listing(iter([]), empty="no layer") == "no layer"


def test_bullets_make_one_markdown_item_per_line():
    assert bullets(["x", "y"]).splitlines() == ["- x", "- y"]


def test_names_of_layers_and_reductions():
    assert [layer_name(7), layer_name("7"), layer_name("all")] == ["layer 7", "layer 7", "all layers"]
    assert [reduction_key("none", None), reduction_key("npca", 0.5)] == ["none", "npca 50%"]


def test_spread_cell_marks_only_marked_cells():
    assert spread_cell(0.9344, 0.9, 0.95, True) == "0.934 * [0.900, 0.950]"
    assert spread_cell(0.9344, np.nan, np.nan, False) == "0.934"


@pytest.mark.parametrize(("low", "high", "word"), [(0.55, 0.9, "above chance"), (0.1, 0.45, "below chance"),
                                                    (0.4, 0.6, "not distinguishable from chance")])
def test_versus_chance_follows_the_interval(low, high, word):
    assert versus_chance(low, high) == word


def test_versus_chance_refuses_a_reversed_interval():
    with pytest.raises(ValueError, match="low <= high"):
        versus_chance(0.6, 0.4)


def test_verdict_list_writes_signed_differences():
    text = verdict_list([("bottle", "higher", 0.0123), ("screw", "within noise", -0.004)])
    assert text == "bottle: higher (+0.012); screw: within noise (\u22120.004)"
    assert verdict_list([], empty="none were run") == "none were run"


def test_pairwise_summary_names_only_differences_beyond_noise():
    rows = [("MVG", "1-NN", "bottle", "higher"), ("MVG", "1-NN", "screw", "within noise"),
            ("flow", "MVG", "bottle", "within noise")]
    assert pairwise_summary([("MVG", "1-NN"), ("flow", "MVG")], rows) == [
        "MVG against 1-NN: higher on bottle.", "flow against MVG: within noise on every data set."]


def test_deviation_sentence_says_above_or_below_by_the_count():
    variance = np.ones(10)
    assert "stands above the grey one on 8 of the 10" in deviation_sentence(np.r_[np.full(8, 4.0), 0, 0], variance)
    below = deviation_sentence(np.full(10, 0.2), variance)
    assert "lies below the grey one" in below and "only on 0 of the 10" in below
    assert "crosses" in deviation_sentence(np.r_[np.full(3, 4.0), np.zeros(7)], variance)


def test_data_sentence_tells_own_classes_from_none():
    own = data_sentence([], ["mything"], 0, 0)
    assert "no official MVTec AD class" in own and "your own class mything" in own and "ELPV" not in own
    nothing = data_sentence([], [], 0, 0)
    assert "no MVTec AD class and no class of your own" in nothing and "ELPV" in nothing
    both = data_sentence(["bottle", "screw"], ["a", "b"], 2, 1)
    assert "2 of the 15 MVTec AD classes; 1 of 2 have the official split counts" in both
    assert "your own classes a and b" in both


def test_verdict_sentence_groups_by_name_with_details():
    rows = pd.DataFrame({"estimator": ["a", "a", "b", "c", "c"], "layer": ["6", "all", "7", "6", "7"],
                         "verdict": ["higher", "higher", "lower", "within noise", "higher"]})
    assert verdict_sentence(rows, detail="layer") == ("higher for a (6, all) and c (7); lower for b (7); "
                                                      "within noise on the other 1")
    assert verdict_sentence(rows.iloc[2:4]) == "lower for b; within noise on the other 1"
    assert verdict_sentence(rows.iloc[3:4]) == "within noise on all 1"
    assert verdict_sentence(rows.iloc[:2]) == "higher for a"
