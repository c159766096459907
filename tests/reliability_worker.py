"""Subprocess half of tests/test_reliability.py: a grid to kill, or an extraction racing another one.

Usage:
    python reliability_worker.py grid ROOT CACHE RESULTS SECONDS_PER_TRIAL [WORKERS [plain|flow]]
    python reliability_worker.py race ROOT CACHE RESULTS SECONDS_PER_TRIAL READY_FILE
    python reliability_worker.py extract ROOT CACHE OUT_NPZ COMPUTE_LOG
"""

import sys
import time
from pathlib import Path

import numpy as np

import tad.features
import tad.sweep
import tad.trial
from tad.backbones import load_backbone
from tad.data import load_split

GRID = dict(layers=[1], poolings=["avg"], reductions=tad.sweep.REDUCTIONS, estimators=["mvg", "knn1"],
            input_size=64, progress=False)
# Layer 1 (d 16), avg and max, 11 reductions, mvg, knn1 and a small flow: 2 non-flow units and 22 flow units.
FLOW_GRID = dict(GRID, poolings=["avg", "max"], estimators=["mvg", "knn1", "flow"],
                 flow_params={"epochs": 40, "hidden": 8})


def grid(root: str, cache: str, results: str, seconds: str, workers: str = "1", which: str = "plain") -> None:
    """run_grid with every estimator fit slowed down (in this process), so the parent can kill it between rows."""
    make = tad.trial.make_estimator

    def slow_make(*args, **kwargs):
        time.sleep(float(seconds))
        return make(*args, **kwargs)

    tad.trial.make_estimator = slow_make
    split = load_split("synthetic", root)
    tad.sweep.run_grid([split], load_backbone("tf_efficientnet_lite0"), results, cache_dir=cache,
                       workers=int(workers), **{"plain": GRID, "flow": FLOW_GRID}[which])


def race(root: str, cache: str, results: str, seconds: str, ready: str) -> None:
    """The slowed grid, started together with another process on the same results file."""
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(ready).parent.glob("*.ready"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    grid(root, cache, results, seconds)


def extract(root: str, cache: str, out: str, log: str) -> None:
    """Extract into a shared cache once the other worker is ready; log each real computation, held 1 s."""
    compute = tad.features.backbone_outputs

    def logged_compute(*args, **kwargs):
        with open(log, "a") as f:
            f.write("compute\n")
        time.sleep(1.0)
        return compute(*args, **kwargs)

    tad.features.backbone_outputs = logged_compute
    bb = load_backbone("tf_efficientnet_lite0")
    Path(out).with_suffix(".ready").touch()  # barrier: start extracting together with the other worker
    deadline = time.monotonic() + 120
    while len(list(Path(out).parent.glob("*.ready"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    feats = tad.features.extract(bb, load_split("synthetic", root).train_paths, input_size=64, cache_dir=cache,
                                 num_workers=0, progress=False)
    np.savez(out, **{f"layer{k}": v for k, v in feats.items()})


if __name__ == "__main__":
    {"grid": grid, "race": race, "extract": extract}[sys.argv[1]](*sys.argv[2:])
