"""Command line: `tad layers`, `tad evaluate`, `tad grid`, `tad data`, `tad download`.

Each command imports the libraries it needs (torch, timm, zuko, scikit-learn) when it runs, so ``tad --help``
answers at once. An expected failure (bad parameter, bad data, missing weights, file-system trouble) ends as one
line on stderr naming the file or parameter, with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

MAX_INPUT_SIZE = 1024  # px; activations grow with its square: 2000 px took 22 GB on one CPU batch of 32
MIN_INPUT_SIZE = 32
FLOW_SECONDS_PER_TRIAL = 6  # one flow fit + score on one MVTec class, 2-core CPU (3-11 s by dimension)
COMMANDS = {
    "layers": "image AUROC of every layer of a backbone on one category",
    "evaluate": "image AUROC of one configuration",
    "grid": "AUROC of every combination of layers, poolings, reductions and estimators (resumable)",
    "data": "image counts per category under the data folder, beside the official MVTec AD ones",
    "download": "download, verify (SHA-256) and extract the official MVTec AD archive",
}


class UsageError(Exception):
    """A command-line value that cannot work; the message names the option and what it expects."""


def main(argv: list[str] | None = None) -> int:
    """Run ``tad`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code (2 for an expected failure)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(command).parse_args(argv)
    if getattr(args, "device", "") is None:
        args.device = _best_device()
    with warnings.catch_warnings():
        warnings.showwarning = _warn_one_line
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print(f"tad {args.command}: interrupted", file=sys.stderr)
            return 130
        except (UsageError, ValueError, RuntimeError, OSError, MemoryError) as err:
            if args.debug:
                raise
            print(f"tad {args.command}: error: {_one_line(err)}", file=sys.stderr)
            return 2


# --- commands ----------------------------------------------------------------------------------

def _layers(args: argparse.Namespace) -> int:
    from tad.features import split_features
    from tad.trial import Trial, layer_names, run_trials

    _check_paths(args)
    split, bb = _split(args, args.category), _backbone(args)
    trials = [Trial(layer, args.pooling, args.reduction, _ratio(args), args.basis, args.estimator)
              for layer in layer_names(bb)]
    _extract(split, bb, args)
    train, test = split_features(split, bb, input_size=args.input_size, cache_dir=args.cache, device=args.device,
                                 batch_size=args.batch_size)
    table, _ = run_trials(train, test, split.test_labels, trials, backbone=bb, dataset=split.name)
    provenance = {"weights": f"{bb.weights['tag']} ({bb.weights['source']})", "data": split.source,
                  "input_size": args.input_size or bb.input_size}
    rows = [{**row, **provenance} for row in table.to_dict("records")]
    _append(args.results, rows)
    import pandas as pd

    table = pd.DataFrame(rows).set_index("layer")[["auroc", "ci_low", "ci_high"]]
    print(f"{args.category}: {rows[0]['data']}\nweights: {rows[0]['weights']}, input {rows[0]['input_size']} px; "
          f"{args.pooling} pooling, {_reduction_label(args)}, {args.estimator}")
    print(table.round(3).to_string())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tad.trial import evaluate_config, resolve_layer

    _check_paths(args)
    split, bb = _split(args, args.category), _backbone(args)
    resolve_layer(bb, args.layer)  # before the extraction, not after
    _extract(split, bb, args)
    row = evaluate_config(args.category, root=args.data, backbone=bb, layer=args.layer,
                          **_config(args))
    _append(args.results, [row])
    for k, v in row.items():
        print(f"{k:>10}: {round(v, 4) if isinstance(v, float) else v}")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from tad.sweep import REDUCTIONS, run_grid
    from tad.trial import layer_names

    if args.preset:
        return _preset(args)
    if not args.categories or args.results is None:
        raise UsageError("--categories and --results are required (or --preset NAME)")
    _check_paths(args)
    splits = [_split(args, c) for c in args.categories]
    bb = _backbone(args)
    layers = args.layers or layer_names(bb)
    reductions = args.reductions or REDUCTIONS
    if "flow" in args.estimators:
        n_flow = len(splits) * len(layers) * len(args.poolings) * len(reductions)
        print(f"flow: {n_flow} trials, about {_duration(n_flow * FLOW_SECONDS_PER_TRIAL)} on a CPU "
              f"(~{FLOW_SECONDS_PER_TRIAL} s each); finished trials in {args.results} are skipped", file=sys.stderr)
    for split in splits:
        _extract(split, bb, args)
    df = run_grid(splits, bb, args.results, layers=layers, poolings=args.poolings, reductions=reductions,
                  estimators=args.estimators, basis=args.basis, input_size=args.input_size, cache_dir=args.cache,
                  device=args.device, batch_size=args.batch_size, scheduler=args.scheduler, workers=args.workers)
    best = df.sort_values("auroc", ascending=False).groupby("dataset").head(3)
    print(f"{len(df)} trials in {args.results}; best per data set:")
    print(best[["dataset", "layer", "pooling", "reduction", "ratio", "estimator", "auroc", "ci_low", "ci_high"]]
          .round(3).to_string(index=False))
    return 0


def _preset(args: argparse.Namespace) -> int:
    """The whole published study: its plan and estimate first, then (unless --dry-run) the run and its tables."""
    from tad.presets import get_preset, paper_tables, plan, run_preset

    preset = get_preset(args.preset)
    print(plan(preset, args.data, device="cpu" if args.device == "cpu" else "cuda"))
    if args.dry_run:
        return 0
    if args.results is None:
        raise UsageError("--results FILE is required to run a preset (or --dry-run)")
    _check_paths(args)
    rows = run_preset(preset, args.data, args.results, cache_dir=args.cache, device=args.device, download=args.download)
    for number, table in paper_tables(rows, preset).items():
        print(f"\ntable {number} beside the paper:\n{table.round(3).to_string()}")
    return 0


def _best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _data(args: argparse.Namespace) -> int:
    from tad.data import count_report

    _check_data_folder(args)
    report = count_report(args.data)
    if report.empty:
        raise UsageError(f"--data {args.data}: no category folder in MVTec layout (<category>/train/good and "
                         "<category>/test) found there")
    official = report[["official_train_good", "official_test_good", "official_test_defective"]]
    report = report[["train_good", "test_good", "test_defective"]].assign(official=[
        "own category" if row.isna().any() else "same counts" if match else "differs: " + "/".join(map(str, row))
        for (_, row), match in zip(official.iterrows(), report["matches"])])
    print(f"data folder {args.data}")
    print(report.to_string())
    return 0


def _download(args: argparse.Namespace) -> int:
    from tad.download import download_mvtec

    print(f"MVTec AD ready under {download_mvtec(args.data)}")
    return 0


# --- helpers -----------------------------------------------------------------------------------

def _split(args: argparse.Namespace, category: str):
    from tad.data import ELPV_CATEGORIES, load_split

    if category not in ELPV_CATEGORIES:
        _check_data_folder(args)
    return load_split(category, args.data)


def _backbone(args: argparse.Namespace):
    from tad.backbones import BACKBONES, WeightsUnavailable, load_backbone

    try:
        return load_backbone(args.backbone, weights=args.weights or "pretrained")
    except WeightsUnavailable as err:  # the library's alternatives are Python arguments; say them as options
        offline = sorted(n for n, s in BACKBONES.items() if s.package)
        reason = str(err).split(" Alternatives:")[0].rstrip(".")
        raise WeightsUnavailable(f"{reason}. From here: --weights PATH to a local {BACKBONES[args.backbone].tag} "
                                 f"state_dict file (timm key names), or --backbone one of {offline}") from err


def _extract(split, bb, args: argparse.Namespace) -> None:
    """Compute (or find) the split's features in the cache, with labelled progress, at ``--batch-size``."""
    from tad.features import extract

    for part, paths in (("train", split.train_paths), ("test", split.test_paths)):
        print(f"{split.name} {part}: {len(paths)} images", file=sys.stderr, flush=True)
        extract(bb, paths, input_size=args.input_size, batch_size=args.batch_size, device=args.device,
                cache_dir=args.cache)


def _config(args: argparse.Namespace) -> dict:
    """The trial settings shared by `layers` and `evaluate`, as keyword arguments of `evaluate_config`."""
    return dict(pooling=args.pooling, reduction=args.reduction, ratio=_ratio(args), estimator=args.estimator,
                basis=args.basis, input_size=args.input_size, cache_dir=args.cache, device=args.device,
                batch_size=args.batch_size)


def _ratio(args: argparse.Namespace) -> float | None:
    return None if args.reduction == "none" else args.ratio


def _reduction_label(args: argparse.Namespace) -> str:
    return "no reduction" if args.reduction == "none" else f"{args.reduction} {args.ratio}"


def _check_data_folder(args: argparse.Namespace) -> None:
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data}: no such folder; pass --data DIR or set TAD_DATA to a folder "
                         "holding MVTec-layout categories (tad download fetches MVTec AD there)")


def _check_paths(args: argparse.Namespace) -> None:
    """Fail on a --cache or --results of the wrong kind before any work is done."""
    if args.cache.exists() and not args.cache.is_dir():
        raise UsageError(f"--cache {args.cache} is a file: expected a folder (created if missing)")
    _check_results(args.results)


def _check_results(path: Path | None) -> None:
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--results {path} is a folder: expected a JSON-lines file (created if missing)")
    if not path.parent.is_dir():
        raise UsageError(f"--results {path}: folder {path.parent} does not exist")


def _append(path: Path | None, rows: list[dict]) -> None:
    """Append ``rows`` to the JSON-lines file ``path`` (one object per line, as `tad grid` writes)."""
    if path is None:
        return
    _check_results(path)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    with open(path, "a") as out:  # one write of whole lines: nothing half-written for a reader to trip on
        out.write(text)
    print(f"{len(rows)} row(s) appended to {path}", file=sys.stderr)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(round(seconds / 60), 1)} min"


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; for an error re-raised by a DataLoader worker, the original one."""
    text = str(err) or type(err).__name__
    if "Original Traceback" in text:  # torch's worker wrapper: the last line is "module.Error: message"
        text = re.sub(r"^[\w.]+: ", "", text.strip().splitlines()[-1])
    return " ".join(text.split())


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tad: warning: {' '.join(str(message).split())}", file=sys.stderr)


# --- argument parsing --------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other failure
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where the help already says what an unset option means."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s options are built, so other commands' imports are never paid for."""
    p = _Parser(prog="tad", description="Transfer anomaly detection (Ono & Mori) on image folders.",
                formatter_class=_Formatter)
    from tad import __version__

    p.add_argument("--version", action="version", version=f"tad {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="command", parser_class=_Parser)
    builders = {"layers": _layers_options, "evaluate": _evaluate_options, "grid": _grid_options,
                "data": _data_options, "download": _download_options}
    for name, text in COMMANDS.items():
        sp = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        if name == command:
            builders[name](sp)
    return p


def _debug_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--debug", action="store_true", help="on an error, show the full traceback")


def _data_option(sp: argparse.ArgumentParser, text: str) -> None:
    from tad.data import default_root

    sp.add_argument("--data", type=Path, default=default_root(), help=f"{text} (env TAD_DATA)")


def _run_options(sp: argparse.ArgumentParser) -> None:
    from tad.backbones import BACKBONES
    from tad.data import default_cache
    from tad.reduce import BASES, DEFAULT_BASIS

    _data_option(sp, "data folder holding MVTec-layout categories")
    sp.add_argument("--backbone", default="tf_efficientnet_lite0", choices=sorted(BACKBONES),
                    help="pretrained CNN whose layers give the features")
    sp.add_argument("--weights", type=Path, default=None, metavar="PATH",
                    help="local weights file (.pth or .safetensors state_dict, timm key names) for --backbone "
                         "(default: its pretrained weights, downloaded or packaged)")
    sp.add_argument("--input-size", type=_input_size, default=None, metavar="PX",
                    help=f"square input side in pixels, {MIN_INPUT_SIZE}..{MAX_INPUT_SIZE} "
                         "(default: the backbone's native size)")
    sp.add_argument("--batch-size", type=_positive("batch size"), default=32,
                    help="images per forward pass; lower it if memory runs out")
    sp.add_argument("--basis", default=DEFAULT_BASIS, choices=BASES,
                    help="how --ratio meets the training null space: block (default, the book's one reading: the null "
                         "space kept or dropped whole), dims (the paper's literal share of all dimensions) or rank "
                         "(a share of the axes with training variance)")
    sp.add_argument("--cache", type=Path, default=default_cache(), help="feature cache folder (env TAD_CACHE)")
    sp.add_argument("--device", default=None,
                    help="torch device for the backbone: cpu, cuda, cuda:1, mps (default: cuda when present, else cpu)")


def _trial_options(sp: argparse.ArgumentParser) -> None:
    from tad.estimators import ESTIMATORS
    from tad.features import POOLING_CHOICES
    from tad.reduce import METHODS

    _run_options(sp)
    sp.add_argument("--category", required=True, help="category folder under --data, or elpv_mono / elpv_poly")
    sp.add_argument("--pooling", default="avg", choices=POOLING_CHOICES, help="spatial pooling of each layer")
    sp.add_argument("--reduction", default="npca", choices=METHODS,
                    help="keep the largest-variance (pca) or smallest-variance (npca) principal axes, or all")
    sp.add_argument("--ratio", type=_fraction, default=0.5, help="share of the axes kept, in (0, 1]")
    sp.add_argument("--estimator", default="mvg", choices=ESTIMATORS, help="density estimator of good features")
    sp.add_argument("--results", type=Path, default=None, metavar="FILE",
                    help="also append the rows to this JSON-lines file (default: print only)")


def _layers_options(sp: argparse.ArgumentParser) -> None:
    _trial_options(sp)
    _debug_option(sp)
    sp.set_defaults(run=_layers)


def _evaluate_options(sp: argparse.ArgumentParser) -> None:
    _trial_options(sp)
    sp.add_argument("--layer", default="7", help="layer number (1 = shallowest), 'last' or 'all'")
    _debug_option(sp)
    sp.set_defaults(run=_evaluate)


def _grid_options(sp: argparse.ArgumentParser) -> None:
    from tad.estimators import ESTIMATORS
    from tad.features import POOLING_CHOICES

    _run_options(sp)
    from tad.presets import PRESETS

    sp.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="run a whole study as published (paper: Ono & Mori's 11,550 trials, ENB5 and ResNet-18, "
                         "15 MVTec AD classes); prints its plan and estimated time first")
    sp.add_argument("--dry-run", action="store_true", help="with --preset: print the plan, run nothing")
    sp.add_argument("--download", action="store_true", help="with --preset: download missing MVTec AD classes")
    sp.add_argument("--categories", nargs="+", default=None, metavar="CATEGORY",
                    help="category folders under --data, or elpv_mono / elpv_poly (required without --preset)")
    sp.add_argument("--results", type=Path, default=None, metavar="FILE",
                    help="JSON-lines results file: appended to; trials already in it are skipped "
                         "(required unless --dry-run)")
    sp.add_argument("--layers", nargs="+", default=None, metavar="LAYER",
                    help="layer numbers, 'last' and/or 'all' (default: every layer of --backbone and 'all')")
    sp.add_argument("--reductions", nargs="+", type=_reduction, default=None, metavar="METHOD[:RATIO]",
                    help="e.g. npca:0.5 pca:0.1 none (default: the paper's 11: none, pca and npca at 0.1..0.5)")
    sp.add_argument("--poolings", nargs="+", default=["avg"], choices=POOLING_CHOICES, metavar="POOLING",
                    help=f"from {', '.join(POOLING_CHOICES)}")
    sp.add_argument("--estimators", nargs="+", default=[e for e in ESTIMATORS if e != "flow"], choices=ESTIMATORS,
                    metavar="ESTIMATOR", help=f"from {', '.join(ESTIMATORS)}; flow is slow, so only on request, "
                                              "with its estimated time printed first")
    sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="Dask scheduler to run the trials on, e.g. tcp://host:8786 (default: env TAD_SCHEDULER, "
                         "else local cores)")
    sp.add_argument("--workers", type=_positive("workers"), default=None,
                    help="local worker processes; 1 runs in this process (default: one per core for grids "
                         "estimated at 30 s or more, else 1)")
    _debug_option(sp)
    sp.set_defaults(run=_grid)


def _data_options(sp: argparse.ArgumentParser) -> None:
    _data_option(sp, "data folder to count")
    _debug_option(sp)
    sp.set_defaults(run=_data)


def _download_options(sp: argparse.ArgumentParser) -> None:
    _data_option(sp, "folder to download MVTec AD into")
    _debug_option(sp)
    sp.set_defaults(run=_download)


# --- value types (argparse reports their ArgumentTypeError in one line) -------------------------

def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"ratio {text} must be a fraction in (0, 1], e.g. 0.5")
    return value


def _input_size(text: str) -> int:
    if not text.isdigit() or not MIN_INPUT_SIZE <= int(text) <= MAX_INPUT_SIZE:
        raise argparse.ArgumentTypeError(
            f"input size {text} must be a whole number of pixels from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE}: "
            "memory for the activations grows with its square (2000 px needed 22 GB)")
    return int(text)


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{name} {text} must be a whole number >= 1")
        return int(text)

    return parse


def _reduction(text: str) -> tuple[str, float | None]:
    from tad.reduce import METHODS

    method, _, ratio = text.partition(":")
    if method not in METHODS or (method == "none") != (ratio == ""):
        raise argparse.ArgumentTypeError(
            f"reduction {text!r}: expected 'none' or METHOD:RATIO with METHOD in "
            f"{[m for m in METHODS if m != 'none']}, e.g. npca:0.5")
    return (method, None) if method == "none" else (method, _fraction(ratio))


if __name__ == "__main__":
    sys.exit(main())
