"""Grid throughput: `tad.sweep.run_grid` against a naive per-trial scikit-learn Pipeline, same AUROCs.

One backbone, pooling avg, layers 1..7 and "all", the 11 reductions, estimators mvg/knn1/knn5/knn10, on the
bottle class's cached features. Both sides load the cached features and compute the same interval per
trial (`tad.stats.auroc_ci`, what every result row stores), so the difference is the grid's sharing of one
eigen-decomposition per layer across its 10 PCA/NPCA ratios (plus the grid's JSON-lines bookkeeping).

Two naive sides, each fitting ``Pipeline([("reduce", tad.reduce.Reducer(method, ratio)), ("estimate", est)])``
afresh per trial: with scikit-learn's own estimators (``LedoitWolf().mahalanobis``, ``NearestNeighbors``),
what a user would write (the target's baseline), and with tad's estimators, which isolates the gain of
sharing the eigen-decomposition from tad's faster MVG. Reducer rather than sklearn's PCA: when n_train <= d
(layer 7 and "all" here), NPCA keeps axes of the training null space, which sklearn's PCA (at most
min(n, d) components) cannot return.

With ``--scale`` it measures instead `run_grid` on Dask (issue 12), side by side in one run: the book's grid
(classes bottle, screw, transistor; Lite0; layers 1-7 and all; 11 reductions; mvg, knn1, knn5, knn10 and the
flow with the grid page's ``flow_params``) on 2 workers of ``tad.sweep.local_cluster`` vs serial
(``workers=1``), and the non-flow grid the same two ways, alternating; wall seconds include starting and
stopping the cluster (the first parallel run, with the flow, also starts the fork server); CPU seconds
include the workers'; each worker's peak RSS.

Run: ``python -m benchmarks.bench_grid`` or ``python -m benchmarks.bench_grid --scale``.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline

from benchmarks.common import CACHE_DIR, add_common_args, finish, interleaved, median, mvtec_root
from tad.backbones import load_backbone
from tad.data import load_split
from tad.estimators import make_estimator
from tad.evaluate import auroc
from tad.stats import auroc_ci
from tad.features import select
from tad.reduce import Reducer
from tad.features import split_features
from tad.sweep import REDUCTIONS, run_grid

ESTIMATORS = ("mvg", "knn1", "knn5", "knn10")
NAIVE = "naive sklearn Pipeline per trial"
NAIVE_TAD = "naive Pipeline, tad estimators"


def sklearn_scores(X: np.ndarray, Y: np.ndarray, method: str, ratio: float | None, est: str) -> np.ndarray:
    """One trial the scikit-learn way: a fresh Pipeline, LedoitWolf's Mahalanobis or NearestNeighbors."""
    last = LedoitWolf() if est == "mvg" else NearestNeighbors(n_neighbors=int(est[3:]), algorithm="brute")
    pipe = Pipeline([("reduce", Reducer(method, ratio or 1.0)), ("estimate", last)]).fit(X)
    W = pipe[:-1].transform(Y)
    return last.mahalanobis(W) if est == "mvg" else last.kneighbors(W)[0].mean(axis=1)


def naive_grid(split, bb, layers, cache_dir: Path, seed: int = 0,
               estimators: str = "sklearn") -> list[dict]:
    """What a user would write: one freshly fitted Pipeline per trial (scikit-learn's or tad's estimators)."""
    train, test = split_features(split, bb, cache_dir=cache_dir, progress=False)
    labels = split.test_labels
    rows = []
    for lay in layers:
        X, Y = select(train, lay, "avg", bb), select(test, lay, "avg", bb)
        for (method, ratio), est in itertools.product(REDUCTIONS, ESTIMATORS):
            if estimators == "sklearn":
                s = sklearn_scores(X, Y, method, ratio, est)
            else:
                pipe = Pipeline([("reduce", Reducer(method, ratio or 1.0)),
                                 ("estimate", make_estimator(est, seed=seed))])
                s = pipe.fit(X).score_samples(Y)
            lo, hi = auroc_ci(labels, s)
            rows.append({"layer": str(lay), "reduction": method, "ratio": ratio, "estimator": est,
                         "auroc": auroc(labels, s), "ci_low": lo, "ci_high": hi})
    return rows


def tad_grid(split, bb, layers, cache_dir: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        df = run_grid([split], bb, Path(tmp) / "grid.jsonl", layers=layers, estimators=ESTIMATORS,
                      cache_dir=cache_dir, progress=False, workers=1)
    return df.to_dict("records")


def run(args: argparse.Namespace) -> dict:
    bb = load_backbone(args.backbone)
    split = load_split(args.category, mvtec_root())
    layers = [*range(1, bb.n_layers + 1), "all"]
    t0 = time.perf_counter()
    split_features(split, bb, cache_dir=args.cache_dir, progress=False)  # extract once, or check the cache
    first_features_s = time.perf_counter() - t0

    rows: dict[str, list[dict]] = {}
    sides = {"tad run_grid": lambda: rows.__setitem__("tad", tad_grid(split, bb, layers, args.cache_dir)),
             NAIVE: lambda: rows.__setitem__("naive", naive_grid(split, bb, layers, args.cache_dir)),
             NAIVE_TAD: lambda: rows.__setitem__(
                 "naive_tad", naive_grid(split, bb, layers, args.cache_dir, estimators="tad"))}
    times = interleaved(sides, args.repeats)
    ours, naive = rows["tad"], rows["naive"]

    key = lambda r: (str(r["layer"]), r["reduction"], None if r["reduction"] == "none" else round(r["ratio"], 6),
                     r["estimator"])
    ours_by = {key(r): r for r in ours}
    assert len(ours_by) == len(naive) == len(layers) * len(REDUCTIONS) * len(ESTIMATORS), (len(ours_by), len(naive))
    diff = {c: max(abs(ours_by[key(r)][c] - r[c]) for r in naive + rows["naive_tad"])
            for c in ("auroc", "ci_low", "ci_high")}
    assert diff["auroc"] < 1e-9, f"AUROCs differ by up to {diff['auroc']}"

    rng = np.random.default_rng(0)
    labels = split.test_labels
    t0 = time.perf_counter()
    for _ in range(len(naive)):
        auroc_ci(labels, rng.normal(size=len(labels)))
    interval_s = time.perf_counter() - t0

    n = len(naive)
    tps = {k: n / median(v["wall"]) for k, v in times.items()}
    cpu = {k: median(v["cpu"]) for k, v in times.items()}
    return {"benchmark": "grid", "backbone": bb.name, "category": split.name, "n_train": len(split.train_paths),
            "n_test": len(split.test_paths), "trials": n, "repeats": args.repeats,
            "seconds": times, "trials_per_s": tps,
            "speedup": tps["tad run_grid"] / tps[NAIVE],
            "speedup_vs_naive_tad_estimators": tps["tad run_grid"] / tps[NAIVE_TAD],
            "cpu_seconds": cpu, "cpu_speedup": cpu[NAIVE] / cpu["tad run_grid"],
            "max_abs_diff": diff, "interval_alone_s": interval_s,
            "trial_seconds_in_grid": float(sum(r["seconds"] for r in ours)),
            "feature_cache_s": first_features_s}


BOOK_FLOW_PARAMS = {"epochs": 100, "hidden": 64}  # notebooks/08_grid.py


def run_scale(args: argparse.Namespace) -> dict:
    """Serial vs `tad.sweep.local_cluster` workers, for the book's grid with and without the flow.

    Serial and parallel alternate (A B A B with ``--repeats 2``) so both meet the same drift in machine
    speed; each parallel run starts its own cluster (as ``run_grid(workers=n)`` does) and that start-up and
    shut-down are in its wall seconds.
    """
    import resource

    from dask.distributed import Client

    from tad.sweep import local_cluster

    bb = load_backbone(args.backbone)
    splits = [load_split(c, mvtec_root()) for c in args.classes]
    layers = args.layers or [*range(1, bb.n_layers + 1), "all"]
    for split in splits:
        split_features(split, bb, cache_dir=args.cache_dir, progress=False)  # extract once, or check the cache
    out: dict = {"benchmark": "grid_scale", "backbone": bb.name, "classes": args.classes, "layers": [str(x) for x in layers],
                 "workers": args.workers, "repeats": args.repeats,
                 "flow_params": BOOK_FLOW_PARAMS, "runs": {}}
    # The flow grid first: its first parallel run starts the fork server (as a fresh process's first grid
    # does, e.g. the book's page or `tad grid`), its second finds it running.
    for name, estimators in (("with flow", [*ESTIMATORS, "flow"]), ("non-flow", list(ESTIMATORS))):
        kw = dict(layers=layers, estimators=estimators, cache_dir=args.cache_dir,
                  flow_params=BOOK_FLOW_PARAMS, progress=False)
        tables, rss, worker_cpu = {}, [], []
        trial_s: dict[str, list[float]] = {"serial": [], "parallel": []}  # the trials' own seconds, summed

        def serial(tmp: Path) -> None:
            tables["serial"] = run_grid(splits, bb, tmp / "serial.jsonl", workers=1, **kw)
            trial_s["serial"].append(float(tables["serial"].seconds.sum()))

        def parallel(tmp: Path) -> None:
            with local_cluster(args.workers) as cluster, Client(cluster) as client:
                tables["parallel"] = run_grid(splits, bb, tmp / "parallel.jsonl", scheduler=client, **kw)
                trial_s["parallel"].append(float(tables["parallel"].seconds.sum()))
                usage = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF)).values()
            rss.extend(u.ru_maxrss / 1024 for u in usage)
            worker_cpu.append(sum(u.ru_utime + u.ru_stime for u in usage))

        with tempfile.TemporaryDirectory() as tmp:
            fresh = lambda fn: lambda: fn(Path(tempfile.mkdtemp(dir=tmp)))  # a new results file every run
            times = interleaved({"serial": fresh(serial), "parallel": fresh(parallel)}, args.repeats)
        # Workers are the fork server's children, not this process's: add their own CPU seconds
        times["parallel"]["cpu"] = [c + w for c, w in zip(times["parallel"]["cpu"], worker_cpu)]
        serial_s, parallel_s = median(times["serial"]["wall"]), median(times["parallel"]["wall"])
        on = ["dataset", "layer", "reduction", "ratio", "estimator"]
        merged = tables["serial"].merge(tables["parallel"], on=on, suffixes=("_s", "_p"))
        assert len(merged) == len(tables["serial"]) == len(tables["parallel"])
        out["runs"][name] = {"trials": len(merged), "serial_s": serial_s, "parallel_s": parallel_s,
                             "seconds": times, "speedup": serial_s / parallel_s,
                             "pair_speedups": [s / p for s, p in zip(times["serial"]["wall"], times["parallel"]["wall"])],
                             # Side by side, a trial takes longer when both cores are busy (shared caches,
                             # the host): the part of the ratio no scheduling can recover, and what is left
                             # (the trials' seconds per worker / wall) is the grid's own efficiency.
                             "trial_seconds": trial_s,
                             "trial_slowdown": [p / s for s, p in zip(trial_s["serial"], trial_s["parallel"])],
                             "parallel_efficiency": [t / args.workers / w for t, w in
                                                     zip(trial_s["parallel"], times["parallel"]["wall"])],
                             "max_abs_auroc_diff": float((merged.auroc_s - merged.auroc_p).abs().max()),
                             "worker_peak_rss_mb": sorted(rss)[-args.workers:]}
    return out


def report_scale(r: dict) -> None:
    print(f"\nGrid on Dask: {r['backbone']} {r['classes']}, {len(r['layers'])} layers, {r['workers']} workers vs serial, "
          f"median of {r['repeats']} alternating runs")
    for name, run in r["runs"].items():
        print(f"  {name:10s} {run['trials']:5d} trials: serial {run['serial_s']:.1f} s, parallel {run['parallel_s']:.1f} s "
              f"-> {run['speedup']:.2f}x; max |AUROC diff| {run['max_abs_auroc_diff']:.2g}; "
              f"worker peak RSS {', '.join(f'{m:.0f}' for m in run['worker_peak_rss_mb'])} MB")
        print(f"  {'':10s} each pair (serial s / parallel s): " + ", ".join(
            f"{s:.1f} / {p:.1f} = {s / p:.2f}x" for s, p in zip(run["seconds"]["serial"]["wall"],
                                                                run["seconds"]["parallel"]["wall"]))
              + "; CPU s serial " + ", ".join(f"{c:.0f}" for c in run["seconds"]["serial"]["cpu"])
              + ", parallel " + ", ".join(f"{c:.0f}" for c in run["seconds"]["parallel"]["cpu"]))
        print(f"  {'':10s} trials' own seconds, serial / parallel: " + ", ".join(
            f"{s:.0f} / {p:.0f} (x{p / s:.2f})" for s, p in zip(run["trial_seconds"]["serial"], run["trial_seconds"]["parallel"]))
              + "; parallel efficiency (trial s / workers / wall) " + ", ".join(f"{e:.2f}" for e in run["parallel_efficiency"]))
    print("  the first parallel run (with flow, pair 1) includes starting the fork server (tad.sweep.local_cluster)")
    print(f"  machine load (1 min) at the end: {r['machine']['load_avg_1min']:.1f} on {r['machine']['cpu_count']} cores")


def report(r: dict) -> None:
    print(f"\nGrid  {r['backbone']} {r['category']} (n_train {r['n_train']}, n_test {r['n_test']}), {r['trials']} "
          f"trials (8 layers x 11 reductions x mvg/knn1/knn5/knn10), auroc_ci on both sides, "
          f"median of {r['repeats']}")
    for name, tps in r["trials_per_s"].items():
        print(f"  {name:26s} {tps:8.1f} trials/s   ({median(r['seconds'][name]['wall']):.1f} s wall, "
              f"{r['cpu_seconds'][name]:.1f} s CPU)")
    print(f"  speedup vs the scikit-learn pipeline {r['speedup']:.2f}x wall, {r['cpu_speedup']:.2f}x CPU "
          f"(vs the same pipeline with tad's estimators {r['speedup_vs_naive_tad_estimators']:.2f}x); max |AUROC diff| {r['max_abs_diff']['auroc']:.3g}, "
          f"CI bounds {max(r['max_abs_diff']['ci_low'], r['max_abs_diff']['ci_high']):.3g}")
    print(f"  of which the intervals alone ({r['trials']} x auroc_ci): {r['interval_alone_s']:.1f} s; "
          f"features from cache {r['feature_cache_s']:.1f} s")
    print(f"  peak RSS (whole benchmark process): {r['peak_memory']['self_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "grid", device=False)  # numpy/scikit-learn only
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, alternating")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--scale", action="store_true", help="serial vs Dask workers instead (issue 12)")
    parser.add_argument("--classes", nargs="+", default=["bottle", "screw", "transistor"], help="with --scale")
    parser.add_argument("--layers", nargs="+", default=None, help="with --scale; default every layer and all")
    parser.add_argument("--workers", type=int, default=2, help="with --scale")
    args = parser.parse_args(argv)
    if args.scale:
        result = finish(run_scale(args), args.out.with_name("grid_scale.json"))
        report_scale(result)
        return result
    result = finish(run(args), args.out)
    report(result)
    return result


if __name__ == "__main__":
    main()
