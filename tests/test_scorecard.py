"""The replication scorecard: the three-way rule on constructed intervals, the detectable difference by
simulation, and the rows a page writes read back in claim order."""

import numpy as np
import pandas as pd
import pytest

from tad import scorecard
from tad.scorecard import NEGLIGIBLE, Claim, claim_row, detectable_difference, outcome, read_claims, save_claims
from tad.stats import HEADLINE_COMPARISONS, compare

GAIN = Claim("NPCA 50 % vs no reduction", "a gain", "effect", 0.08, "constructed", "03_reduction")
LOSS = Claim("PCA 50 % vs no reduction", "a loss", "effect", -0.05, "constructed", "03_reduction")
ALIKE = Claim("MVG vs 1-NN", "alike", "alike", 0.002, "constructed", "05_estimators")
DIRECTION = Claim("EfficientNet-B5 vs the reference backbone", "a better", "direction", np.nan, "text", "07")


@pytest.mark.parametrize("c, low, high, expected", [
    (GAIN, 0.01, 0.03, "replicated"),     # direction established, smaller than the paper's: still replicated
    (GAIN, 0.05, 0.12, "replicated"),
    (GAIN, -0.02, 0.05, "contradicted"),  # 0 plausible, the paper's +0.08 excluded
    (GAIN, -0.09, -0.01, "contradicted"),  # the other direction established
    (GAIN, -0.02, 0.10, "unresolved"),    # both 0 and +0.08 inside
    (LOSS, -0.08, -0.01, "replicated"),
    (LOSS, -0.03, 0.02, "contradicted"),
    (LOSS, -0.06, 0.02, "unresolved"),
    (ALIKE, -NEGLIGIBLE / 2, NEGLIGIBLE / 2, "replicated"),
    (ALIKE, 0.02, 0.05, "contradicted"),
    (ALIKE, -0.05, -0.02, "contradicted"),
    (ALIKE, 0.005, 0.05, "unresolved"),   # a difference is established, but not one beyond the margin
    (ALIKE, -0.04, 0.04, "unresolved"),
    (DIRECTION, 0.01, 0.2, "replicated"),
    (DIRECTION, -0.2, -0.01, "contradicted"),
    (DIRECTION, -0.01, 0.2, "unresolved"),
])
def test_three_way_rule_on_constructed_intervals(c, low, high, expected):
    assert outcome(c, low, high) == expected


@pytest.mark.parametrize("c, low, high, verdict, expected", [
    (GAIN, -0.01, 0.2, "higher", "replicated"),     # a permutation verdict where the interval stays conservative
    (GAIN, -0.2, 0.01, "lower", "contradicted"),    # the opposite direction, established by the verdict
    (GAIN, -0.01, 0.2, "within noise", "unresolved"),
    (LOSS, -0.2, 0.01, "lower", "replicated"),
    (DIRECTION, -0.2, 0.01, "lower", "contradicted"),
    (ALIKE, -0.005, 0.005, "higher", "replicated"),  # alike is read on the interval alone
])
def test_a_verdict_establishes_a_direction_as_the_interval_does(c, low, high, verdict, expected):
    assert outcome(c, low, high, verdict) == expected


def test_outcome_refuses_a_reversed_interval():
    with pytest.raises(ValueError, match="low <= high"):
        outcome(GAIN, 0.1, 0.0)


def test_every_claim_is_a_headline_comparison_and_effects_come_from_the_paper_tables():
    assert {c.name for c in scorecard.CLAIMS} <= set(HEADLINE_COMPARISONS)
    npca = scorecard.claim("NPCA 50 % vs no reduction")
    assert npca.paper_effect == pytest.approx(0.972 - 0.889)  # table 2 as printed in the paper's text
    depth = scorecard.claim("last layer vs layer 1")
    assert depth.paper_effect == pytest.approx(0.97 - 0.64, abs=0.006)  # table 3's mean row (rounded there)


def test_detectable_difference_is_detected_with_the_stated_power():
    rng = np.random.default_rng(0)
    level, se = 0.995, 0.01
    z = 2.807033768343811  # norm.ppf(0.9975), typed independently
    mdd = detectable_difference(-z * se, z * se, level)
    estimates = rng.normal(mdd, se, 200_000)
    power = np.mean(estimates - z * se > 0)
    assert power == pytest.approx(0.8, abs=0.005)


def test_claim_rows_round_trip_in_claim_order(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(30), np.ones(40)].astype(bool)
    a, b = rng.normal(labels * 1.5), rng.normal(labels * 0.5)
    c = compare(labels, a, b)
    from tad.evaluate import auroc
    rows = [claim_row(name, ds, c, auroc_a=auroc(labels, a), auroc_b=auroc(labels, b), config="x", page="p")
            for name in ("NPCA 50 % vs PCA 50 %", "last layer vs layer 1") for ds in ("screw", "bottle")]
    save_claims(rows, tmp_path, "p")
    back = read_claims(tmp_path)
    assert list(back.claim) == ["last layer vs layer 1"] * 2 + ["NPCA 50 % vs PCA 50 %"] * 2
    assert list(back.dataset) == ["bottle", "screw"] * 2
    assert set(back.outcome) == {"replicated"}  # a clear gain in each claim's direction
    table = scorecard.scorecard_table(back)
    assert table.loc["NPCA 50 % vs PCA 50 %", "bottle"].startswith("replicated: +")
    assert "not tested" not in table.to_string()  # every claim ran on both data sets here
    lines = scorecard.synthesis(back)
    assert lines[-1].startswith("Not tested in this build:") and "MVG vs 1-NN" in lines[-1]


def test_claim_row_refuses_aurocs_that_do_not_match_the_comparison():
    labels = np.r_[np.zeros(10), np.ones(10)].astype(bool)
    c = compare(labels, np.arange(20.0), np.arange(20.0)[::-1])
    with pytest.raises(ValueError, match="comparison.diff"):
        claim_row("MVG vs 1-NN", "bottle", c, auroc_a=0.5, auroc_b=0.5, config="x", page="p")


def test_read_claims_of_an_empty_build_is_empty(tmp_path):
    assert read_claims(tmp_path).empty
    pd.DataFrame({"claim": ["made up"], "dataset": ["x"]}).to_csv(tmp_path / "p_claims.csv", index=False)
    with pytest.raises(ValueError, match="unknown claims"):
        read_claims(tmp_path)


def _rows(spec):
    """Claim rows from (claim, dataset, outcome, effect, low, high, detectable) tuples."""
    cols = ["claim", "dataset", "outcome", "effect", "ci_low", "ci_high", "detectable"]
    return pd.DataFrame(spec, columns=cols)


def test_synthesis_counts_claims_by_outcome_across_data_sets_and_names_the_untested():
    rows = _rows([("last layer vs layer 1", "a", "replicated", 0.3, 0.1, 0.5, 0.2),
                  ("last layer vs layer 1", "b", "replicated", 0.4, 0.2, 0.6, 0.2),
                  ("NPCA 50 % vs no reduction", "a", "contradicted", -0.02, -0.1, 0.05, 0.1),
                  ("NPCA 50 % vs no reduction", "b", "unresolved", 0.0, -0.1, 0.1, 0.1),
                  ("PCA 50 % vs no reduction", "a", "replicated", -0.1, -0.2, -0.01, 0.1),
                  ("PCA 50 % vs no reduction", "b", "unresolved", 0.0, -0.1, 0.1, 0.1),
                  ("NPCA 50 % vs PCA 50 %", "a", "unresolved", 0.0, -0.1, 0.1, 0.1),
                  ("NPCA 50 % vs PCA 50 %", "b", "unresolved", 0.0, -0.1, 0.1, 0.1)])
    lines = scorecard.synthesis(rows)
    assert lines[0] == ("Of the 4 claims of the paper tested in this build, on 2 data sets (a and b): "
                        "1 replicated wherever tested (last layer vs layer 1), "
                        "1 replicated on some data sets and unresolved on the others (PCA 50 % vs no reduction), "
                        "1 contradicted on at least one data set (NPCA 50 % vs no reduction) and "
                        "1 unresolved wherever tested (NPCA 50 % vs PCA 50 %).")
    npca = next(line for line in lines[1:] if "(NPCA 50 % vs no reduction)" in line)
    assert "contradicted on a; unresolved on b." in npca and "from −0.020 to +0.000" in npca
    both = next(line for line in lines[1:] if "(NPCA 50 % vs PCA 50 %)" in line)
    assert "each interval holds both 0 and the paper's effect" in both
    # the paper's +0.092 is below the detectable 0.100; depth's +0.331 is above 0.2
    assert "less than 80 % power" in both and "less than" not in lines[1]
    assert lines[-1] == ("Not tested in this build: last layer vs all layers, average vs max pooling, MVG vs 1-NN, "
                         "augmentation vs none and EfficientNet-B5 vs the reference backbone.")


def test_synthesis_of_an_empty_build_names_every_claim_as_not_tested():
    lines = scorecard.synthesis(pd.DataFrame(columns=["claim", "dataset", "outcome"]))
    assert len(lines) == 1 and lines[0].startswith("Not tested in this build:")
    assert all(c.name in lines[0] for c in scorecard.CLAIMS)


def test_synthesis_of_one_data_set_says_the_outcome_without_every_or_some():
    rows = _rows([("last layer vs layer 1", "bottle", "replicated", 0.3, 0.1, 0.5, 0.2),
                  ("NPCA 50 % vs no reduction", "bottle", "unresolved", 0.0, -0.1, 0.1, 0.1)])
    assert scorecard.synthesis(rows)[0] == ("Of the 2 claims of the paper tested in this build, on 1 data set "
                                            "(bottle): 1 replicated (last layer vs layer 1) and 1 unresolved "
                                            "(NPCA 50 % vs no reduction).")


def test_a_claim_a_data_set_did_not_test_reads_not_tested(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(30), np.ones(40)].astype(bool)
    a, b = rng.normal(labels * 1.5), rng.normal(labels * 0.5)
    c = compare(labels, a, b)
    from tad.evaluate import auroc
    rows = [claim_row("MVG vs 1-NN", "bottle", c, auroc_a=auroc(labels, a), auroc_b=auroc(labels, b), config="x",
                      page="p"),
            claim_row("augmentation vs none", "screw", c, auroc_a=auroc(labels, a), auroc_b=auroc(labels, b),
                      config="x", page="p")]
    table = scorecard.scorecard_table(pd.DataFrame(rows))
    assert table.loc["MVG vs 1-NN", "screw"] == "not tested"
    assert table.loc["augmentation vs none", "bottle"] == "not tested"
