"""Tests for tad.cost: the estimates against hand computations, the meter against steps of known duration and size."""

import time

import numpy as np
import pandas as pd
import pytest
import torch

from tad import cost
from tad.cost import measure_cost


def line_through(points):
    """Least-squares line (slope, intercept) in closed form: cov(x, y) / var(x)."""
    x, y = np.array(points, dtype=float).T
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return slope, y.mean() - slope * x.mean()


def test_flow_seconds_is_the_least_squares_line_through_the_measured_points():
    slope, intercept = line_through(cost.FLOW_S)
    for d in (1, 160, 1000):
        assert cost.flow_seconds(d) == pytest.approx(intercept + slope * d)


def test_trial_dim_is_the_layers_channels_times_the_ratio_rounded():
    channels = (16, 24, 40)
    assert cost.trial_dim(channels, 2, "none", None) == 24
    assert cost.trial_dim(channels, "2", "npca", 0.3) == 7  # 7.2
    assert cost.trial_dim(channels, "all", "pca", 0.1) == 8  # 80 x 0.1
    assert cost.trial_dim(channels, "last", "npca", 0.5) == 20
    assert cost.trial_dim(channels, 1, "pca", 0.01) == 1  # at least one axis


def test_estimate_adds_extraction_trials_and_flows_at_the_measured_rates():
    est = cost.estimate_seconds([(100, 448), (50, 224)], 420, [160, 160], device="cpu")
    assert est["extraction"] == pytest.approx(100 / cost.CPU_IMAGES_PER_S * 4 + 50 / cost.CPU_IMAGES_PER_S)
    assert est["scoring"] == pytest.approx(420 / cost.GRID_TRIALS_PER_S)
    assert est["flow"] == pytest.approx(2 * cost.flow_seconds(160))
    assert est["total"] == pytest.approx(est["extraction"] + est["scoring"] + est["flow"])
    on_gpu = cost.estimate_seconds([(100, 456)], 0, [], device="cuda")["extraction"]
    assert on_gpu == pytest.approx(100 * max(1 / cost.GPU_IMAGES_PER_S, cost.DECODE_S))
    with pytest.raises(ValueError, match="device 'mps'"):
        cost.estimate_seconds([], 0, [], device="mps")


def test_extrapolate_cost_gives_each_estimator_an_equal_share_at_its_mean_seconds():
    df = pd.DataFrame({"estimator": ["mvg", "mvg", "flow"], "seconds": [1.0, 3.0, 100.0]})
    table = cost.extrapolate_cost(df, n_trials=10)
    assert table.loc["mvg"].tolist() == [2, 2.0, 5.0, 10.0]
    assert table.loc["flow", "seconds"] == 500.0
    assert cost.PAPER_TRIALS == 15 * 14 * 11 * 5 == 11550
    with pytest.raises(ValueError, match="no trials"):
        cost.extrapolate_cost(df.iloc[:0])


@pytest.mark.parametrize("seconds, text", [(0.2, "1 s"), (42.4, "42 s"), (89, "89 s"), (90, "2 min"),
                                           (3000, "50 min"), (5399, "90 min"), (5400, "1.5 h"), (36000, "10.0 h")])
def test_one_duration_format(seconds, text):
    assert cost.format_duration(seconds) == text


@pytest.mark.parametrize("size, batch", [(224, 32), (512, 32), (513, 31), (1024, 8), (2048, 2), (4096, 1)])
def test_batch_keeps_the_pixels_of_a_forward_pass_within_the_budget(size, batch):
    assert cost.batch_size_for(size) == batch
    assert batch * size**2 <= 8 * 1024**2 or batch == 1


def test_times_are_the_steps_durations_and_per_image():
    cost = measure_cost(lambda: time.sleep(0.2), lambda: time.sleep(0.1), n_scored=10)
    assert 0.19 <= cost["fit_s"] < 0.4
    assert 9.5 <= cost["score_ms_per_image"] < 20  # 100 ms over 10 images


def test_peak_sees_a_numpy_array_that_is_freed_before_the_end():
    def fit():
        a = np.ones(64 * 2**20 // 8)  # 64 MiB, touched, then dropped
        return float(a.sum())

    cost = measure_cost(fit, lambda: None, n_scored=1)
    assert 63 <= cost["peak_mib"] < 200


def test_peak_sees_torch_allocations():
    def fit():
        t = torch.ones(2**25, dtype=torch.float32)  # 128 MiB outside Python's allocator
        time.sleep(0.05)  # long enough for the resident-set sampler to see it
        return float(t.sum())

    assert measure_cost(fit, lambda: None, n_scored=1)["peak_mib"] >= 100


def test_small_steps_report_little_memory():
    assert measure_cost(lambda: np.ones(10), lambda: None, n_scored=1)["peak_mib"] < 50


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_n_scored_must_be_a_positive_int(n):
    with pytest.raises(ValueError, match="n_scored"):
        measure_cost(lambda: None, lambda: None, n_scored=n)
