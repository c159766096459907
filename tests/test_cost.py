"""Tests for tad.cost against steps of known duration and known allocation size."""

import time

import numpy as np
import pytest
import torch

from tad.cost import measure_cost


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
