"""What the study costs: the measured figures every estimate uses, the estimates, and a meter for one method.

The constants are measurements (each comment says which benchmark in ``benchmarks/`` measured it, where and
when); nothing else in ``tad`` or the book types a cost figure. `batch_size_for` keeps a forward pass within
memory; `measure_cost` times and meters a method on this machine.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from typing import Any, Callable

import psutil

__all__ = ["BATCH_PIXELS", "DEFAULT_BATCH", "batch_size_for", "measure_cost"]

_SAMPLE_S = 0.001  # how often the resident set size is read while a step runs

# --- memory of a forward pass ------------------------------------------------------------------------------
DEFAULT_BATCH = 32  # images per forward pass at the backbones' native sizes (224-456 px)
# Input pixels per forward pass (images x side^2) whose activations fit a 6 GB budget: Lite0 at 1024 px on the
# CPU peaked at 4.7 GB RSS with a batch of 8 and went past 10 GB with 32 (issue 22's input run, 2-core CPU).
BATCH_PIXELS = 8 * 1024**2


def batch_size_for(input_size: int, largest: int = DEFAULT_BATCH) -> int:
    """The largest batch, up to ``largest``, whose input pixels stay within `BATCH_PIXELS`; at least 1.

    Activation memory grows with the batch times the square of the input side: 32 up to 512 px, 8 at 1024 px.
    """
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size {input_size!r} must be a positive int (pixels)")
    return max(1, min(largest, BATCH_PIXELS // input_size**2))


def measure_cost(fit: Callable[[], Any], score: Callable[[], Any], n_scored: int) -> dict[str, float]:
    """Run ``fit()`` then ``score()`` once each and measure them.

    Parameters
    ----------
    fit, score : callables without arguments
        E.g. ``lambda: model.fit(train)`` and ``lambda: model.score_samples(test)``.
    n_scored : int
        Images ``score()`` scores, to give its time per image.

    Returns
    -------
    dict
        ``fit_s``: wall seconds of ``fit()``; ``score_ms_per_image``: wall milliseconds of ``score()`` per
        image; ``peak_mib``: the larger of two peaks over both steps, in MiB: memory allocated through
        Python's allocator (`tracemalloc`, which sees numpy arrays) and the growth of the process's resident
        set (read every millisecond, which sees torch's own allocations too, but not memory the process
        already held and reuses). Wall times depend on what else the machine runs; read them as orders of
        magnitude.
    """
    if isinstance(n_scored, bool) or not isinstance(n_scored, int) or n_scored < 1:
        raise ValueError(f"n_scored {n_scored!r} must be a positive int (the images score() scores)")
    process = psutil.Process()
    base = process.memory_info().rss
    peak_rss = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(_SAMPLE_S):
            peak_rss[0] = max(peak_rss[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    sampler.start()
    try:
        t0 = time.perf_counter()
        fit()
        t1 = time.perf_counter()
        score()
        t2 = time.perf_counter()
    finally:
        done.set()
        sampler.join()
        traced = tracemalloc.get_traced_memory()[1] - start
        if not tracing:
            tracemalloc.stop()
    peak = max(traced, peak_rss[0] - base, 0)
    return {"fit_s": t1 - t0, "score_ms_per_image": 1000 * (t2 - t1) / n_scored, "peak_mib": peak / 2**20}
