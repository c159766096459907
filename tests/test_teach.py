"""The teaching sentences say what the numbers say: chance, extremes, tallies and the paper's figure."""

import pytest

from tad.book import teach


def test_takeaways_is_one_list_item_per_sentence_and_rejects_multiline_items():
    text = teach.takeaways(["First finding", "Second one."])
    assert text.splitlines() == ["- First finding.", "- Second one."]
    with pytest.raises(ValueError, match="one non-empty line"):
        teach.takeaways(["a\nb"])
    with pytest.raises(ValueError, match="1 to 4"):
        teach.takeaways([])


@pytest.mark.parametrize("low, high, words", [(0.6, 0.9, "above chance"), (0.1, 0.4, "below chance"),
                                              (0.45, 0.7, "not distinguishable from chance"),
                                              (0.2, 0.5, "not distinguishable from chance")])
def test_chance_phrase_follows_where_the_interval_lies(low, high, words):
    assert teach.chance_phrase(low, high) == words


def test_auroc_sentence_says_below_chance_for_a_reversed_ranking():
    text = teach.auroc_sentence("Screw, layer 1", 0.295, 0.18, 0.42)
    assert "0.295 [0.18, 0.42]" in text and text.endswith("below chance.")


def test_extremes_sentence_names_the_max_and_min_and_their_spread():
    text = teach.extremes_sentence({"layer 1": 0.6, "layer 7": 0.9, "layer 4": float("nan")}, what="mean AUROC")
    assert text == "Mean AUROC is highest for layer 7 (0.900) and lowest for layer 1 (0.600), a spread of 0.300."
    assert teach.extremes_sentence({"only": 0.7}, what="x") == "X is 0.700 for only."
    assert teach.extremes_sentence({"a": 0.1, "b": -0.2}, what="gain", kind="diff").endswith(
        "lowest for b (−0.200), a spread of 0.300.")


def test_tally_sentence_counts_each_verdict_word():
    text = teach.tally_sentence(["higher", "within noise", "within noise", "lower", "within noise"], what="w")
    assert text == "Of 5 comparisons (w), 1 higher beyond noise, 1 lower, and 3 within noise."
    assert "none is resolved" in teach.tally_sentence(["within noise"] * 2, what="w")
    assert teach.tally_sentence(["within noise"], what="w").startswith("The one comparison (w) is within noise")
    with pytest.raises(ValueError):
        teach.tally_sentence(["better"], what="w")


def test_paper_sentence_says_whether_the_papers_figure_is_inside_our_interval():
    inside = teach.paper_sentence("layer 7", 0.95, 0.97, ours_ci=(0.9, 0.99))
    outside = teach.paper_sentence("layer 7", 0.80, 0.97, ours_ci=(0.7, 0.9))
    assert "(−0.020)" in inside and "lies inside" in inside
    assert "lies outside" in outside and "[0.70, 0.90]" in outside


def test_resolution_sentence_uses_the_median_half_width():
    assert "median 0.050 (largest 0.200)" in teach.resolution_sentence([0.04, 0.2, 0.06, 0.05, float("nan")][:4] + [0.01])


def test_comparison_sentence_words_follow_the_verdict():
    assert teach.comparison_sentence("MVG", "1-NN", 0.05, 0.01, 0.09, "higher").startswith("MVG scores higher than 1-NN")
    assert "within noise" in teach.comparison_sentence("MVG", "1-NN", 0.01, -0.03, 0.05, "within noise")


def test_gap_sentence_compares_the_gap_with_the_half_width_on_either_sign():
    assert teach.gap_sentence("the gain", -0.3, 0.04).endswith("so it is resolved.")
    assert "smaller than the typical half-width 0.040" in teach.gap_sentence("the gain", 0.01, 0.04)
    with pytest.raises(ValueError):
        teach.gap_sentence("x", 0.1, float("nan"))


@pytest.mark.parametrize("fp, n, words", [(1, 100, "holds the promise"), (10, 100, "lies above the promise"),
                                           (0, 2000, "lies below the promise")])
def test_promise_sentence_says_where_the_realised_rates_interval_lies_against_the_promise(fp, n, words):
    from scipy.stats import beta

    low = beta.ppf(0.025, fp, n - fp + 1) if fp else 0.0  # Clopper-Pearson, computed here from its definition
    high = beta.ppf(0.975, fp + 1, n - fp) if fp < n else 1.0
    text = teach.promise_sentence(0.01, 0.0099, fp, n, low, high)
    assert text.endswith(f"an interval that {words}.")
    assert f"{fp} false alarm" in text and f"{100 * fp / n:.1f} %" in text and "0.99 %" in text
    with pytest.raises(ValueError):
        teach.promise_sentence(0.01, 0.0099, 5, 4, 0.1, 0.9)


def test_takeaway_items_reads_back_what_takeaways_wrote():
    sentences = ["One thing.", "Another, with - a dash."]
    assert teach.takeaway_items(teach.takeaways(sentences)) == sentences
    assert teach.takeaway_items("") == []
    with pytest.raises(ValueError):
        teach.takeaway_items("a paragraph, not a list")


def test_restate_list_fills_templates_and_leaves_out_what_was_not_computed():
    glued = {"a": {"x": "0.9"}, "b": {}}
    text = teach.restate_list([("a", "**A.**", "x is {a/x}."), ("b", "**B.**", "y is {b/y}."),
                               ("c", "**C.**", "{c/z}")], glued)
    assert text.splitlines() == ["- **A.** x is 0.9."]


RESULT_PAGES = ["00_start", "02_layers", "03_reduction", "04_pooling", "05_estimators", "06_augmentation",
                "07_backbones", "07b_baselines", "08_grid", "08b_selection", "09_maps", "10_datasets",
                "11_why_npca", "12_resolution", "13_uncertainty", "14_line"]


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_every_result_page_has_a_computed_takeaways_box_and_two_to_four_exercises_with_solutions(page):
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "notebooks" / f"{page}.py").read_text()
    box = source.index("{admonition} Key takeaways")
    assert box < source.index('tags=["parameters"]'), "the box stands at the top, before the parameters"
    assert "```{glue:md} takeaways" in source and 'glue_text("takeaways", teach.takeaways(' in source
    exercises = source[source.index("# ## Exercises"):]
    assert 2 <= exercises.count("```{dropdown} Solution") <= 4


def _glossary_terms() -> set[str]:
    """The terms book/glossary.md defines: the unindented lines of its glossary directive."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "book" / "glossary.md").read_text()
    body = text[text.index("```{glossary}"):].splitlines()[1:]
    return {line.strip() for line in body if line.strip() and not line.startswith((" ", "`"))}


def test_glossary_defines_every_term_the_issue_lists_and_every_term_a_page_links():
    import re
    from pathlib import Path

    terms = _glossary_terms()
    required = {"DeLong", "Holm correction", "family-wise error", "score interval", "within noise", "ELPV",
                "pooling", "block", "rank", "dims", "pseudo-anomaly", "DFM", "SEM", "MOVER", "PRO", "AUROC",
                "Mahalanobis distance", "Ledoit-Wolf", "k-NN", "normalizing flow", "null space", "NPCA", "PCA",
                "paired comparison"}
    assert required <= terms, sorted(required - terms)
    root = Path(__file__).resolve().parents[1]
    linked = set()
    for path in [*root.glob("notebooks/*.py"), root / "book" / "glossary.md"]:
        text = re.sub(r"\n#? ?", " ", path.read_text())  # a role may wrap over a line of a Markdown cell
        for target in re.findall(r"\{term\}`([^`]+)`", text):
            linked.add(" ".join((target.split("<")[-1].rstrip(">") if "<" in target else target).split()))
    assert linked <= terms, sorted(linked - terms)


def test_claim_sentence_states_each_data_sets_interval_verdict_and_the_scorecard_outcome():
    import pandas as pd

    rows = pd.DataFrame({"claim": ["last layer vs layer 1"] * 2, "dataset": ["bottle", "screw"],
                         "effect": [0.3, -0.02], "ci_low": [0.1, -0.11], "ci_high": [0.5, 0.07],
                         "level": [0.995, 0.995], "verdict": ["higher", "within noise"],
                         "outcome": ["replicated", "contradicted"]})
    text = teach.claim_sentence(rows, a="layer 7", b="layer 1")
    assert text.startswith("Layer 7 against layer 1, paired on the same test images (99.5 % intervals): ")
    assert "bottle +0.300 [0.100, 0.500], higher; screw −0.020 [−0.110, 0.070], within noise." in text
    assert text.endswith("replicated on bottle; contradicted on screw.")
    with pytest.raises(ValueError, match="one claim"):
        teach.claim_sentence(rows.assign(claim=["last layer vs layer 1", "MVG vs 1-NN"]), a="a", b="b")
