"""run_grid on Dask (issue 12): a 2-worker LocalCluster gives the serial run's table, survives a worker killed
mid-grid, and a client killed mid-grid resumes; nothing lost, nothing twice."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dask.distributed import Client, LocalCluster

from reliability_worker import FLOW_GRID as GRID
from conftest import make_synthetic_mvtec
from tad.data import load_split
from tad.results import trial_key
from tad.sweep import REDUCTIONS, local_cluster, run_grid

SIZE = 64
WORKER = Path(__file__).with_name("reliability_worker.py")
N_TRIALS = 2 * len(REDUCTIONS) * 3
COLUMNS = ["auroc", "ci_low", "ci_high", "n_train", "n_test", "d"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvtec")
    make_synthetic_mvtec(root, n_train=8, n_test_good=4, n_test_defective=4, size=SIZE, seed=3)
    return root, tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def split(data):
    return load_split("synthetic", data[0])


@pytest.fixture(scope="module")
def serial(lite0, data, split, tmp_path_factory):
    """The grid run in this process, one trial after another (also fills the feature cache)."""
    return run_grid([split], lite0, tmp_path_factory.mktemp("serial") / "r.jsonl", cache_dir=data[1], workers=1,
                    **GRID)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes (processes: a worker can be killed; flows seed torch globally)."""
    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client


def file_keys(results: Path) -> list[tuple]:
    return [trial_key(json.loads(line)) for line in results.read_text().splitlines()]


def assert_same_table(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    on = ["layer", "pooling", "reduction", "ratio", "estimator"]
    merged = expected[on + COLUMNS].merge(got[on + COLUMNS], on=on, suffixes=("_serial", "_dask"))
    assert len(merged) == len(expected) == len(got) == N_TRIALS
    for col in COLUMNS:
        np.testing.assert_allclose(merged[f"{col}_dask"], merged[f"{col}_serial"], rtol=0, atol=1e-12)


def test_dask_grid_equals_serial_grid(lite0, data, split, serial, client, tmp_path):
    assert serial.auroc.nunique() > 5  # the trials differ: a table of equal numbers would prove little
    results = tmp_path / "r.jsonl"
    table = run_grid([split], lite0, results, cache_dir=data[1], scheduler=client, **GRID)
    assert_same_table(table, serial)
    keys = file_keys(results)
    assert len(keys) == len(set(keys)) == N_TRIALS


def test_worker_killed_mid_grid_loses_and_repeats_no_trial(lite0, data, split, serial, client, tmp_path):
    results = tmp_path / "r.jsonl"
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("table", run_grid(
        [split], lite0, results, cache_dir=data[1], scheduler=client, **GRID)))
    thread.start()
    deadline = time.monotonic() + 120
    busy = None
    while busy is None and time.monotonic() < deadline:
        written = len(results.read_text().splitlines()) if results.exists() else 0
        if written >= 2 * len(REDUCTIONS):  # the non-flow units are in; flow units are running
            busy = next((w for w, tasks in client.processing().items() if tasks), None)
        time.sleep(0.01)
    assert busy is not None and written < N_TRIALS, "the kill must land mid-grid"
    pids = client.run(os.getpid, workers=[busy])
    os.kill(pids[busy], signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive()
    keys = file_keys(results)
    assert len(keys) == len(set(keys)) == N_TRIALS
    assert out["table"].attrs["failures"] == []
    assert_same_table(out["table"], serial)


def test_client_killed_mid_grid_resumes(lite0, data, split, serial, tmp_path):
    root, cache = data
    results = tmp_path / "r.jsonl"
    worker = subprocess.Popen([sys.executable, str(WORKER), "grid", root, cache, results, "0", "2", "flow"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while (not results.exists() or len(results.read_text().splitlines()) < 2 * len(REDUCTIONS) + 2) \
            and time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()[0]
        time.sleep(0.01)
    os.killpg(worker.pid, signal.SIGKILL)  # the client, its cluster and workers: all gone at once
    worker.wait(timeout=30)
    kept = file_keys(results)
    assert len(kept) < N_TRIALS, "the kill must land mid-grid"
    resumed = run_grid([split], lite0, results, cache_dir=cache, workers=1, **GRID)
    keys = file_keys(results)
    assert len(keys) == len(set(keys)) == N_TRIALS
    assert keys[: len(kept)] == kept
    assert_same_table(resumed, serial)


def _page_faults_of_allocations() -> int:
    """Minor page faults of 50 allocations of 2 MiB (as a flow's tensors come and go), in this process."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        np.ones(1 << 18).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_worker_plugin_keeps_freed_memory_for_reuse():
    """Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, so each 2 MiB array is a fresh mmap (512 page
    faults); the plugin run_grid registers lets glibc reuse freed memory, as in a plain process."""
    from tad.sweep import _worker_plugin

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        (before,) = client.run(_page_faults_of_allocations).values()
        client.register_plugin(_worker_plugin(), name="tad-trial-worker")
        client.run(_page_faults_of_allocations)  # the first allocation may fault its pages in once
        (after,) = client.run(_page_faults_of_allocations).values()
    assert before > 50 * 400, before
    assert after < 50 * 20, after


@pytest.mark.skipif("forkserver" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="no fork server on this platform")
def test_local_cluster_workers_start_with_tad_imported():
    """Workers are forked from a fork server that imported tad.sweep (torch included) once: a fresh worker
    has it before any task asks for it, and is not a child of this process (spawned ones are)."""
    with local_cluster(2) as cluster, Client(cluster) as client:
        ready = client.run(lambda: ("tad.sweep" in sys.modules, "torch" in sys.modules, os.getppid()))
    assert len(ready) == 2
    for has_tad, has_torch, parent in ready.values():
        assert has_tad and has_torch
        assert parent != os.getpid()
