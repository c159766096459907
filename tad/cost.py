"""What the study costs: the measured figures every estimate uses, the estimates, and a meter for one method.

The constants are measurements (each comment says which benchmark in ``benchmarks/`` measured it, where and
when); nothing else in ``tad`` or the book types a cost figure. `estimate_seconds` turns them into the time
of a run (the CLI's and the presets' plans, the grid's choice of workers); `extrapolate_cost` scales the
seconds a results table measured to a larger grid; `format_duration` writes any of these for people.
`batch_size_for` keeps a forward pass within memory; `measure_cost` times and meters a method here.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import pandas as pd
import psutil

from tad.paper import PAPER_TRIALS

__all__ = ["BATCH_PIXELS", "CPU_IMAGES_PER_S", "DECODE_S", "DEFAULT_BATCH", "FLOW_S", "GPU_IMAGES_PER_S",
           "GRID_TRIALS_PER_S", "batch_size_for", "estimate_seconds", "extraction_seconds", "extrapolate_cost",
           "flow_seconds", "format_duration", "measure_cost", "trial_dim"]

_SAMPLE_S = 0.001  # how often the resident set size is read while a step runs

# --- measured figures ---------------------------------------------------------------------------------------
# benchmarks.bench_extract, 2026-11-26, 2-core Intel Xeon without GPU, torch with 2 threads, load average 1.5:
CPU_IMAGES_PER_S = 25.4  # Lite0 at 224 px, batch 32: tad.features.extract from PNG files (decode to numpy)
DECODE_S = 0.0082  # decoding (6.0 ms) and bicubic resizing (2.2 ms) one 512 px PNG, one core
# Not measured by this project (no GPU was lent to it): ENB5 at 456 px, fp32, tensors ready (compute only), one
# H200, measured elsewhere. `python -m benchmarks.run --device cuda` measures it end to end on a GPU machine.
GPU_IMAGES_PER_S = 634.0
# benchmarks.bench_grid, 2026-11-26, same machine: run_grid, Lite0 on bottle, 8 layers x 11 reductions x
# MVG/1/5/10-NN = 352 trials with n_boot 1000, 2 cores:
GRID_TRIALS_PER_S = 210.0
# benchmarks.bench_flow, 2026-11-26, same machine: Flow() with its defaults, fit on 209 rows of d dimensions and
# scoring 83, 2 cores, as (d, seconds):
FLOW_S = ((8, 0.38), (160, 0.78), (392, 1.43), (784, 2.66))


def flow_seconds(d: int) -> float:
    """Seconds of one flow trial (fit and score, `Flow` defaults, ~209 training images) at dimension ``d``.

    The least-squares line through `FLOW_S`: training is full-batch for a fixed number of epochs, so its
    cost grows with ``d`` and not with the feature values.
    """
    dims, seconds = np.array(FLOW_S, dtype=float).T
    slope, intercept = np.polyfit(dims, seconds, 1)
    return float(intercept + slope * d)


def extraction_seconds(n_images: int, input_size: int, *, device: str = "cpu") -> float:
    """Seconds to extract the features of ``n_images`` at ``input_size`` px.

    On the CPU: `CPU_IMAGES_PER_S` scaled by the input pixels (a lower bound for backbones heavier per pixel
    than Lite0, such as ENB5). On CUDA: the slower of `GPU_IMAGES_PER_S` and one core's `DECODE_S`.
    """
    if device == "cuda":
        return n_images * max(1 / GPU_IMAGES_PER_S, DECODE_S)
    return n_images / CPU_IMAGES_PER_S * (input_size / 224) ** 2


def trial_dim(channels: Sequence[int], layer: int | str, method: str, ratio: float | None) -> int:
    """Feature dimension a trial fits: its layer's channels (all layers' for ``"all"``; ``"last"``), reduced to
    ``max(round(ratio * d), 1)`` by PCA/NPCA (the ``"dims"`` reading; the ``"rank"`` one keeps no more)."""
    layer = str(layer)
    d = sum(channels) if layer == "all" else channels[-1] if layer == "last" else channels[int(layer) - 1]
    return d if method == "none" else max(int(round(ratio * d)), 1)


def estimate_seconds(extractions: Sequence[tuple[int, int]], n_other_trials: int, flow_dims: Sequence[int], *,
                     device: str = "cpu") -> dict[str, float]:
    """Seconds a run should take, by part, from the measured figures of this module.

    Parameters
    ----------
    extractions : sequence of (n_images, input_size)
        One entry per backbone pass over the images (all layers and poolings come out of one pass).
    n_other_trials : int
        MVG and k-NN trials, at `GRID_TRIALS_PER_S` (they run on the CPU on either device).
    flow_dims : sequence of int
        The feature dimension of each flow trial (`trial_dim`), each at `flow_seconds`.
    device : {"cpu", "cuda"}
        Where the features are extracted.

    Returns
    -------
    dict
        ``extraction``, ``scoring`` (MVG, k-NN), ``flow`` and ``total`` seconds.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} not in ('cpu', 'cuda')")
    extraction = sum(extraction_seconds(n, size, device=device) for n, size in extractions)
    scoring = n_other_trials / GRID_TRIALS_PER_S
    flow = sum(flow_seconds(d) for d in flow_dims)
    return {"extraction": extraction, "scoring": scoring, "flow": flow, "total": extraction + scoring + flow}


def extrapolate_cost(df: pd.DataFrame, n_trials: int = PAPER_TRIALS) -> pd.DataFrame:
    """Seconds a grid of ``n_trials`` would take on this machine, from the measured seconds of ``df``'s trials.

    The paper's grid gives every estimator the same number of trials, so each estimator of ``df`` gets
    ``n_trials / k`` of them (k estimators), at the mean seconds its trials took here (fit and scoring).
    Larger features (a bigger backbone) cost more, so for the paper's backbones this is a lower bound.

    Parameters
    ----------
    df : DataFrame
        Result rows with columns ``estimator`` and ``seconds``.
    n_trials : int

    Returns
    -------
    DataFrame
        Index estimator; columns trials_here, mean_seconds, trials (its share of ``n_trials``), seconds.
        `DataFrame.seconds.sum()` is the whole grid's.
    """
    if df.empty:
        raise ValueError("df holds no trials to extrapolate from")
    out = df.groupby("estimator").seconds.agg(trials_here="size", mean_seconds="mean")
    out["trials"] = n_trials / len(out)
    out["seconds"] = out.mean_seconds * out.trials
    return out


def format_duration(seconds: float) -> str:
    """A duration for people: whole seconds below 90 s, whole minutes below 90 min, else hours to 0.1 h."""
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# --- memory of a forward pass ------------------------------------------------------------------------------
DEFAULT_BATCH = 32  # images per forward pass at the backbones' native sizes (224-456 px)
# Input pixels per forward pass (images x side^2) whose activations fit a 6 GB budget: Lite0 at 1024 px on the
# CPU went past 10 GB with a batch of 32 (issue 22). With 8, `tad evaluate --category bottle --input-size 1024
# --layer 7` (MVTec AD bottle, cold cache) peaked at 4.70 GiB RSS summed over the process and its DataLoader
# worker (4.0 GiB the larger alone): 2026-12-06, 2-core Intel Xeon, no GPU, shared with other jobs.
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
