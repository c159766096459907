"""Resumable grids of trials: the orchestration around `tad.trial`.

`run_grid` runs many trials (`tad.trial.score_group`: one principal-axis decomposition per feature matrix,
sliced for every PCA/NPCA ratio) on cached features, on every core or a Dask cluster; its rows are appended
to a results table (`tad.results`) as they finish, so a killed grid resumes where it stopped. The trial
functions (`score`, `fold_scores`, `score_group`, `evaluate_config`) live in `tad.trial` and are
re-exported here.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from tad import cost
from tad.backbones import Backbone
from tad.data import Split
from tad.estimators import ESTIMATORS
from tad.features import select, split_features
from tad.reduce import DEFAULT_BASIS
from tad.results import KEY, Appender, data_key, read_rows, trial_key  # noqa: F401 - KEY re-exported
from tad.stats import score_interval
from tad.trial import (CI_METHOD, Trial, evaluate_config, fold_scores, layer_names,  # noqa: F401 - re-exported
                       resolve_layer, score, score_group, with_model_columns)

__all__ = ["RATIOS", "REDUCTIONS", "run_grid", "local_cluster",
           # re-exported: where pages and scripts have always found them
           "KEY", "score", "fold_scores", "score_group", "evaluate_config", "split_features"]

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)
# The paper's 11 reductions: PCA and NPCA at 10-50 %, and none.
REDUCTIONS: tuple[tuple[str, float | None], ...] = (
    (("none", None),) + tuple(("pca", r) for r in RATIOS) + tuple(("npca", r) for r in RATIOS)
)


def run_grid(
    splits: Sequence[Split],
    backbone: Backbone,
    results: str | Path,
    *,
    layers: Sequence[int | str] | None = None,
    poolings: Sequence[str] = ("avg",),
    reductions: Sequence[tuple[str, float | None]] = REDUCTIONS,
    estimators: Sequence[str] = ESTIMATORS,
    basis: str = DEFAULT_BASIS,
    input_size: int | None = None,
    noise_std: float = 0.0,
    n_augment: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    seed: int = 0,
    flow_params: dict | None = None,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | object | None = None,
) -> pd.DataFrame:
    """Run every combination of the given choices on every split, in parallel; resumable.

    Trials are keyed by their settings and by the data (`tad.results.data_key`: the images' bytes and
    labels), so rows computed on other or older images are never reused (they stay in the file). Trials
    already in ``results`` are skipped; the others run in units of work: one (data set, layer, pooling)
    group sharing one eigen-decomposition for the non-flow estimators, and one unit per flow trial (each
    takes seconds). Features are extracted (or read from the cache) here and shipped to the workers.

    Parallel runs use `dask.distributed` rather than joblib: its futures hand each finished unit back as it
    completes (so this process, the only writer, appends it at once and a killed grid resumes), it reruns
    units whose worker died (``retries``), and the same code runs on local cores, on a cluster given by a
    scheduler address (Slurm, Kubernetes, cloud via dask-jobqueue and friends), with a live dashboard.

    Rows are appended as units finish, through `tad.results.Appender`: under a file lock, only trials not yet
    in the file, flushed at once and fsynced after each unit. Any number of grids on one machine sharing a
    results file therefore end with exactly one row per trial, and a grid killed at any moment and started
    again ends with exactly one row per trial. Results equal a serial run's (each trial is seeded on its own).

    Parameters
    ----------
    splits : sequence of Split
    backbone : Backbone
    results : path
        JSON-lines file of results; created if missing.
    layers : sequence of int, "all" or "last", optional
        Default every layer of the backbone and ``"all"`` (`tad.trial.layer_names`).
    poolings, reductions, estimators, basis
        The choices to cross; see `POOLING_CHOICES`, `REDUCTIONS`, `ESTIMATORS`, `tad.reduce.BASES`.
    input_size, noise_std, n_augment, cache_dir, device, batch_size
        Feature extraction, see `tad.features.split_features`.
    flow_params : dict, optional
        Passed to `tad.estimators.Flow`.
    progress : bool
        One bar for the whole grid (trials done / total, ETA); the dashboard link when a cluster is used.
    workers : int, optional
        1: every unit in this process, one after another. n > 1: a local cluster of n single-threaded worker
        processes. None (default): one worker per core, but only for grids worth it (an estimated 30 s of
        work or more: flow trials, or many groups); smaller grids run in this process, since starting
        workers takes seconds.
    scheduler : str or dask.distributed.Client, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to run the units on its workers, or a
        Client to use. Default the ``TAD_SCHEDULER`` environment variable, else a local cluster. Its workers
        get a plugin (one BLAS and torch thread each, glibc's malloc reusing freed memory; see
        ``_worker_plugin``) that makes a trial there take as long as in a plain process.

    Returns
    -------
    DataFrame
        One row per trial of this grid on the splits' current data (computed now or found in ``results``),
        in the order of the grid; none of other grids or other data. Rows found in ``results`` from
        before rows stored `tad.stats.auroc_ci` get it here (it depends only on the AUROC and the
        test-set sizes), so every row's ``ci_low``, ``ci_high`` is that interval, and their kept axes
        (`tad.trial.with_model_columns`). A trial that raised has no row: it is
        reported by a `UserWarning` naming its configuration and error, and listed in
        ``DataFrame.attrs["failures"]`` (its configuration plus ``error``); a rerun tries it again.
    """
    layers = [resolve_layer(backbone, lay) for lay in (layer_names(backbone) if layers is None else layers)]
    trials = [Trial(lay, pool, method, ratio, basis, est, flow_params if est == "flow" else None)
              for lay, pool, (method, ratio), est in itertools.product(layers, poolings, reductions, estimators)]
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers {workers!r}: expected a positive int, or None for every core")
    scheduler = scheduler or os.environ.get("TAD_SCHEDULER") or None
    size = input_size or backbone.input_size
    base = {"backbone": backbone.name, "input_size": size, "basis": basis, "noise_std": float(noise_std),
            "n_augment": n_augment, "seed": seed,
            "weights": f"{backbone.weights['tag']} ({backbone.weights['source']})"}
    keys = {id(split): data_key(split) for split in splits}  # once per split: it reads every image file's stat
    grid = [(split, [{**base, "dataset": split.name, "data_key": keys[id(split)], **t.config(backbone)}
                     for t in trials]) for split in splits]
    wanted = [trial_key(c) for _, configs in grid for c in configs]
    kw = dict(seed=seed, flow_params=flow_params)
    failures: list[dict] = []
    with Appender(results) as out:
        todo = [(split, [c for c in configs if trial_key(c) not in out.keys]) for split, configs in grid]
        todo = [(split, configs) for split, configs in todo if configs]
        n_todo = sum(len(configs) for _, configs in todo)
        bar = tqdm(total=len(wanted), initial=len(wanted) - n_todo, desc=f"grid {backbone.name}",
                   disable=not progress, unit="trial", smoothing=0.05)

        def units() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[list[dict]]]]:
            """(X, Y, labels, configs of each unit) per group; features extracted here, split by split."""
            for split, configs in todo:
                train, test = split_features(split, backbone, input_size=input_size, noise_std=noise_std,
                                             n_augment=n_augment, cache_dir=cache_dir, device=device,
                                             batch_size=batch_size, progress=progress)
                for (lay, pool), group in itertools.groupby(configs, key=lambda c: (c["layer"], c["pooling"])):
                    yield (select(train, lay, pool, backbone), select(test, lay, pool, backbone),
                           split.test_labels, _units(list(group)))

        def finished(rows: Iterable[dict]) -> None:
            """Append a unit's rows (the one writer), note its failures, advance the bar."""
            rows = list(rows)
            out.append(r for r in rows if "error" not in r)
            out.sync()
            failures.extend(r for r in rows if "error" in r)
            bar.update(len(rows))

        if _parallel(todo, workers, scheduler, backbone.channels):
            _run_dask(units(), finished, kw, workers=workers, scheduler=scheduler, progress=progress)
        else:
            for X, Y, labels, unit_configs in units():
                for configs in unit_configs:
                    rows = []
                    for row in _unit_rows(X, Y, labels, configs, **kw):  # appended one by one: resume loses none
                        rows.append(row)
                        if "error" not in row:
                            out.append([row])
                        bar.update()
                    out.sync()
                    failures.extend(r for r in rows if "error" in r)
        bar.close()
    if failures:
        warnings.warn(_failure_summary(failures), stacklevel=2)
    found = {trial_key(r): r for r in read_rows(Path(results))}
    table = with_model_columns(_with_score_intervals(pd.DataFrame([found[k] for k in wanted if k in found]), splits))
    table.attrs["failures"] = failures
    return table


def local_cluster(workers: int):
    """A `dask.distributed.LocalCluster` of ``workers`` single-threaded processes, as `run_grid` starts one.

    Where the platform has it (Linux, macOS), its workers are forked from a fork server (Python's
    ``forkserver`` start method) that has imported `tad.sweep` (with torch, scikit-learn and pandas) once,
    instead of each being spawned and importing them anew: spawned workers spent about 6 s importing before
    their first trial, every time, and 1.6-2.5 s finalising torch at shutdown. The fork server is started by
    the first cluster (which still waits for the imports, on one core) and lives as long as this process,
    so later clusters start in well under a second. It runs nothing between forks, so forking it is safe,
    unlike forking this process with its Dask and torch threads. Its workers run the `tad` code imported
    when it started: restart the process after editing `tad`. A worker Dask restarts (after it died) is
    spawned as usual.

    They do not run Dask's statistical profiler: it samples each running task's Python stack every 10 ms,
    which cost a flow trial (thousands of small torch calls) about 5 % of a core (benchmarks/README.md).
    And their event loops wake about 4 times a second instead of about 60 (loop health tick 20 ms -> 1 s,
    memory monitor 100 ms -> 500 ms, system monitor 500 ms -> 1 s): each wake-up takes the GIL from the
    trial's thread, and a flow trial is thousands of short Python-level torch calls. Measured on 11 flow
    trials in one worker: 2,100-2,300 voluntary context switches and 7.1-7.7 s by default, 230 and 6.5 s
    with these settings. Use it as a context manager, with a ``Client`` on it, to run several grids on one
    set of workers.
    """
    import multiprocessing

    import dask
    from dask.distributed import LocalCluster
    from distributed.utils import get_mp_context

    settings = {"distributed.worker.profile.enabled": False,  # read by each worker as it starts
                "distributed.admin.tick.interval": "1s", "distributed.worker.memory.monitor-interval": "500ms",
                "distributed.admin.system-monitor.interval": "1s"}
    if "forkserver" in multiprocessing.get_all_start_methods():
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        if "distributed.worker.multiprocessing-method" in settings:
            # After distributed's own call, which sets its preload list once, ours replaces it (a server
            # already running keeps the list it started with; its workers then import the rest).
            get_mp_context().set_forkserver_preload(["distributed", "tad.sweep"])
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")


# --- helpers -----------------------------------------------------------------------------------

def _with_score_intervals(table: pd.DataFrame, splits: Sequence[Split]) -> pd.DataFrame:
    """``table`` with `tad.stats.auroc_ci` in ``ci_low``, ``ci_high`` of rows written before rows stored it."""
    if table.empty:
        return table
    old = table["ci_method"].ne(CI_METHOD) if "ci_method" in table else pd.Series(True, index=table.index)
    sizes = {s.name: (int((s.test_labels == 0).sum()), int(s.test_labels.sum())) for s in splits}
    for name, rows in table[old].groupby("dataset"):
        low, high = score_interval(rows["auroc"].to_numpy(float), *sizes[name])
        table.loc[rows.index, "ci_low"], table.loc[rows.index, "ci_high"] = low, high
    table.loc[old, "ci_method"] = CI_METHOD
    return table


def _units(configs: list[dict]) -> list[list[dict]]:
    """A group's trials as units of work: the non-flow ones together (one decomposition), each flow alone."""
    rest = [c for c in configs if c["estimator"] != "flow"]
    return ([rest] if rest else []) + [[c] for c in configs if c["estimator"] == "flow"]


def _unit_rows(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, configs: list[dict], **kw) -> Iterator[dict]:
    """`score_group`'s rows; after an error, the remaining trials one by one, a failing one as its config + error."""
    done = 0
    try:
        for row in score_group(X, Y, labels, configs, **kw):
            done += 1
            yield row
        return
    except Exception:  # noqa: BLE001 - which trial failed is found below, one by one
        pass
    for config in configs[done:]:
        try:
            yield from score_group(X, Y, labels, [config], **kw)
        except Exception as err:  # noqa: BLE001 - reported with its configuration, the grid goes on
            yield {**config, "error": f"{type(err).__name__}: {err}"}


def _score_unit(X: np.ndarray, Y: np.ndarray, labels: np.ndarray, configs: list[dict], kw: dict) -> list[dict]:
    """One unit of work on a worker: its rows (and failures), all at once."""
    return list(_unit_rows(X, Y, labels, configs, **kw))


def _parallel(todo: list[tuple[Split, list[dict]]], workers: int | None, scheduler,
              channels: Sequence[int]) -> bool:
    """Whether to run on Dask: asked for, or (workers=None) an estimated 30 s of trials or more (`tad.cost`)."""
    if not todo or workers == 1:
        return False
    if scheduler is not None or workers is not None:
        return True
    configs = [c for _, group in todo for c in group]
    flow_dims = [cost.trial_dim(channels, c["layer"], c["reduction"], c["ratio"])
                 for c in configs if c["estimator"] == "flow"]
    seconds = cost.estimate_seconds([], len(configs) - len(flow_dims), flow_dims)["total"]
    return (os.cpu_count() or 1) > 1 and seconds >= 30


def _run_dask(units: Iterable[tuple], finished, kw: dict, *, workers: int | None, scheduler,
              progress: bool) -> None:
    """Submit every unit to Dask workers and hand each unit's rows to ``finished`` as it completes.

    Each group's X and Y are shipped once and shared by its units. A unit whose worker died is rerun
    (``retries=2``); a unit that still fails counts every trial in it as failed, with the error.
    """
    from dask.distributed import Client, as_completed  # here: importing tad stays fast

    cluster = None
    if scheduler is not None and not isinstance(scheduler, str):
        client, owned = scheduler, False
    elif scheduler is not None:
        client, owned = Client(scheduler), True
    else:
        cluster = local_cluster(workers or os.cpu_count())
        client, owned = Client(cluster), True
    try:
        client.register_plugin(_worker_plugin(), name="tad-trial-worker")  # once per worker, by name
        if progress:
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        pending, ac = {}, as_completed()
        for X, Y, labels, unit_configs in units:
            # Shipped once per group as tasks (scattered data would be lost with its worker; these are rerun)
            Xf, Yf = client.submit(np.asarray, X, pure=False), client.submit(np.asarray, Y, pure=False)
            for configs in unit_configs:
                # Flows on wide features first, so the last trials to finish are short ones on both workers
                priority = X.shape[1] if configs[0]["estimator"] == "flow" else 0
                future = client.submit(_score_unit, Xf, Yf, labels, configs, kw, retries=2, pure=False,
                                       priority=priority)
                pending[future.key] = configs
                ac.add(future)
            while ac.has_ready():  # write what is done while the next data set's features are extracted
                _collect(next(ac), pending, finished)
        for future in ac:
            _collect(future, pending, finished)
    finally:
        if owned:
            client.close()
        if cluster is not None:
            cluster.close()


def _collect(future, pending: dict, finished) -> None:
    """Hand a finished unit's rows to ``finished``; a unit lost for good fails each of its trials."""
    configs = pending.pop(future.key)
    try:
        rows = future.result()
    except Exception as err:  # noqa: BLE001 - e.g. its worker died on every retry
        rows = [{**c, "error": f"{type(err).__name__}: {err}"} for c in configs]
    finished(rows)
    future.release()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)


def _worker_plugin():
    """A Dask worker plugin that makes a worker run trials as fast as a plain process does.

    One BLAS and one torch thread per worker, so workers do not oversubscribe cores. And glibc's malloc
    told to keep its memory: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also
    freezes glibc's (otherwise adaptive) mmap threshold at 128 KiB, so every tensor above that size is a
    fresh ``mmap`` whose pages fault in again, and freed heap is handed back to the system at once. A flow
    trial there took 50 times the page faults of a plain process (about 160,000 against 3,000) and 1.4-1.6x
    its time; with a 4 MiB mmap and a 32 MiB trim threshold, under 100 faults and a plain process's time.
    """
    from distributed import WorkerPlugin

    class TrialWorker(WorkerPlugin):
        def setup(self, worker) -> None:
            import ctypes
            import ctypes.util

            import torch
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
            torch.set_num_threads(1)
            name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name) if name else None
            if libc is not None and hasattr(libc, "mallopt"):  # glibc (Linux); other C libraries keep theirs
                libc.mallopt(_M_MMAP_THRESHOLD, 4 << 20)
                libc.mallopt(_M_TRIM_THRESHOLD, 32 << 20)

    return TrialWorker()


def _failure_summary(failures: list[dict]) -> str:
    """One message for every failed trial: their count, then each distinct error with its first trial and count."""
    by_error: dict[str, list[dict]] = {}
    for f in failures:
        by_error.setdefault(f["error"], []).append(f)
    parts = [_describe(fs[0]) + (f" and {len(fs) - 1} more" if len(fs) > 1 else "") + f": {error}"
             for error, fs in by_error.items()]
    return f"{len(failures)} trial(s) failed, no row written: " + "; ".join(parts)


def _describe(config: dict) -> str:
    return ", ".join(f"{k}={config[k]!r}" for k in ("dataset", "layer", "pooling", "reduction", "ratio",
                                                     "estimator", "estimator_params") if config.get(k) != "")
