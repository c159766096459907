"""Command line: `tad layers`, `tad evaluate`, `tad grid`, `tad data`, `tad download`.

Data root from ``--data`` or the ``TAD_DATA`` environment variable; features cached in ``--cache``
(default ``$TAD_CACHE`` or ``.cache/tad``).
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from tad.backbones import BACKBONES, load_backbone
from tad.data import count_report, download_mvtec, load_split
from tad.estimators import ESTIMATORS
from tad.features import POOLING_CHOICES
from tad.sweep import REDUCTIONS, evaluate_config, run_grid


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    pd.set_option("display.width", 160)
    try:
        return args.run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:  # clear message, no traceback
        print(f"tad: error: {err}", file=sys.stderr)
        return 2


def _layers(args: argparse.Namespace) -> int:
    bb = load_backbone(args.backbone)
    rows = [evaluate_config(args.category, root=args.data, backbone=bb, layer=layer, pooling=args.pooling,
                            reduction=args.reduction, ratio=_ratio(args), estimator=args.estimator,
                            input_size=args.input_size, cache_dir=args.cache, device=args.device)
            for layer in [*range(1, bb.n_layers + 1), "all"]]
    table = pd.DataFrame(rows).set_index("layer")[["auroc", "ci_low", "ci_high"]]
    print(f"{args.category}: {rows[0]['data']}\nweights: {rows[0]['weights']}, input {rows[0]['input_size']} px; "
          f"{args.pooling} pooling, {args.reduction} {_ratio(args) or ''}, {args.estimator}")
    print(table.round(3).to_string())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    r = evaluate_config(args.category, root=args.data, backbone=args.backbone, layer=args.layer,
                        pooling=args.pooling, reduction=args.reduction, ratio=_ratio(args),
                        estimator=args.estimator, input_size=args.input_size, cache_dir=args.cache,
                        device=args.device)
    for k, v in r.items():
        print(f"{k:>10}: {round(v, 4) if isinstance(v, float) else v}")
    return 0


def _grid(args: argparse.Namespace) -> int:
    bb = load_backbone(args.backbone)
    splits = [load_split(c, args.data) for c in args.categories]
    df = run_grid(splits, bb, args.results, estimators=args.estimators, cache_dir=args.cache,
                  input_size=args.input_size, device=args.device)
    best = df.sort_values("auroc", ascending=False).groupby("dataset").head(3)
    print(f"{len(df)} trials in {args.results}; best per data set:")
    print(best[["dataset", "layer", "pooling", "reduction", "ratio", "estimator", "auroc"]].to_string(index=False))
    return 0


def _data(args: argparse.Namespace) -> int:
    print(count_report(args.data).to_string())
    return 0


def _download(args: argparse.Namespace) -> int:
    print(f"MVTec AD ready under {download_mvtec(args.data)}")
    return 0


def _ratio(args: argparse.Namespace) -> float | None:
    return None if args.reduction == "none" else args.ratio


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tad", description="Transfer anomaly detection (Ono & Mori) on image folders.")
    sub = p.add_subparsers(required=True, metavar="command")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data", default=os.environ.get("TAD_DATA"),
                        help="MVTec-layout root (default $TAD_DATA)")
        sp.add_argument("--backbone", default="tf_efficientnet_lite0", choices=sorted(BACKBONES))
        sp.add_argument("--input-size", type=int, default=None, help="square input side (default: native)")
        sp.add_argument("--cache", default=os.environ.get("TAD_CACHE", ".cache/tad"), help="feature cache dir")
        sp.add_argument("--device", default="cpu")

    def config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--category", required=True, help="MVTec category folder, or elpv_mono / elpv_poly")
        sp.add_argument("--pooling", default="avg", choices=POOLING_CHOICES)
        sp.add_argument("--reduction", default="npca", choices=("none", "pca", "npca"))
        sp.add_argument("--ratio", type=float, default=0.5, help="share of dimensions kept, in (0, 1]")
        sp.add_argument("--estimator", default="mvg", choices=ESTIMATORS)

    sp = sub.add_parser("layers", help="image AUROC of every layer of a backbone on one category")
    common(sp), config(sp)
    sp.set_defaults(run=_layers)
    sp = sub.add_parser("evaluate", help="image AUROC of one configuration")
    common(sp), config(sp)
    sp.add_argument("--layer", default="7", help="layer number or 'all'")
    sp.set_defaults(run=_evaluate)
    sp = sub.add_parser("grid", help=f"layers x {len(REDUCTIONS)} reductions x estimators, resumable")
    common(sp)
    sp.add_argument("--categories", nargs="+", required=True)
    sp.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), choices=ESTIMATORS)
    sp.add_argument("--results", required=True, help="JSON-lines results file (appended, resumable)")
    sp.set_defaults(run=_grid)
    sp = sub.add_parser("data", help="counts per category under the data root vs the official ones")
    sp.add_argument("--data", default=os.environ.get("TAD_DATA"))
    sp.set_defaults(run=_data)
    sp = sub.add_parser("download", help="download and verify the official MVTec AD archive")
    sp.add_argument("--data", default=os.environ.get("TAD_DATA"), required=os.environ.get("TAD_DATA") is None)
    sp.set_defaults(run=_download)
    return p


if __name__ == "__main__":
    sys.exit(main())
