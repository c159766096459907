"""Flow trials: seconds per `tad.estimators.Flow` fit + score, and the flow share of a full grid.

Default Flow settings (2 MAF transforms, hidden 128, 150 full-batch Adam epochs). Training cost does not
depend on the feature values, so the features are seeded Gaussian draws of the sizes a grid meets:
n_train 209 (bottle) and 440, d = half of Lite0's layer 7 (320) and of its "all" layers (784), scored on
83 test rows (bottle's test set). The projection interpolates seconds per trial linearly in d (measured
at n_train 209) over every d a Lite0 grid fits: 8 layers x 11 reductions, times the number of classes.

Run: ``python -m benchmarks.bench_flow [--device cuda]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import add_common_args, cuda_or_skip, finish, sync
from tad.estimators import Flow
from tad.sweep import REDUCTIONS

LITE0_CHANNELS = (16, 24, 40, 80, 112, 192, 320)  # tf_efficientnet_lite0 layers 1..7; "all" is their sum, 784


def trial_seconds(n_train: int, d: int, n_test: int, device: str) -> float:
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(n_train, d)), rng.normal(size=(n_test, d))
    t0 = time.perf_counter()
    Flow(device=device).fit(X).score_samples(Y)
    sync(device)
    return time.perf_counter() - t0


def grid_dims(channels: tuple[int, ...] = LITE0_CHANNELS) -> list[int]:
    """Feature dimension of each (layer, reduction) flow trial of a one-pooling grid."""
    return [d if method == "none" else max(round(ratio * d), 1)
            for d in (*channels, sum(channels)) for method, ratio in REDUCTIONS]


def run(args: argparse.Namespace) -> dict:
    Flow(epochs=2, device=args.device).fit(np.random.default_rng(0).normal(size=(50, 8)))  # warm-up
    sizes = sorted({(args.n_train[0], d) for d in args.fit_dims} | {(n, d) for n in args.n_train for d in args.dims})
    seconds = {f"n={n} d={d}": trial_seconds(n, d, args.n_test, args.device) for n, d in sizes}
    base = sorted((d, seconds[f"n={n} d={d}"]) for n, d in sizes if n == args.n_train[0])
    per_class = float(sum(np.interp(grid_dims(), [d for d, _ in base], [s for _, s in base])))
    return {"benchmark": "flow", "device": args.device, "n_test": args.n_test, "seconds_per_trial": seconds,
            "grid_trials_per_class": len(grid_dims()), "projected_s_per_class": per_class,
            "n_classes": args.n_classes, "projected_s_all_classes": per_class * args.n_classes,
            "projection_n_train": args.n_train[0]}


def report(r: dict) -> None:
    print(f"\nFlow trials (fit + score {r['n_test']} rows, default Flow, {r['device']})")
    for name, s in r["seconds_per_trial"].items():
        print(f"  {name:14s} {s:7.2f} s/trial")
    print(f"  projected flow share of a Lite0 grid (8 layers x 11 reductions = {r['grid_trials_per_class']} trials, "
          f"n_train {r['projection_n_train']}): {r['projected_s_per_class'] / 60:.1f} min per class, "
          f"{r['projected_s_all_classes'] / 3600:.2f} h for {r['n_classes']} classes")
    print(f"  peak RSS (whole benchmark process): {r['peak_memory']['self_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "flow")
    parser.add_argument("--n-train", type=int, nargs="+", default=[209, 440],
                        help="training sizes; the first is the one the projection uses")
    parser.add_argument("--dims", type=int, nargs="+", default=[160, 392], help="d timed at every n_train")
    parser.add_argument("--fit-dims", type=int, nargs="+", default=[8, 784],
                        help="extra d timed at the first n_train, so the projection spans every grid d")
    parser.add_argument("--n-test", type=int, default=83)
    parser.add_argument("--n-classes", type=int, default=15, help="classes in the projection (MVTec AD: 15)")
    args = parser.parse_args(argv)
    if not cuda_or_skip(args.device, "flow benchmark"):
        return None
    result = finish(run(args), args.out)
    report(result)
    return result


if __name__ == "__main__":
    main()
