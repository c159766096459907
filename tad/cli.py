"""Command line: `tad layers`, `tad evaluate`, `tad grid`, `tad fit`, `tad score`, `tad data`, `tad download`.

Each command imports the libraries it needs (torch, timm, zuko, scikit-learn) when it runs, so ``tad --help``
answers at once. An expected failure (bad parameter, bad data, missing weights, file-system trouble) ends as one
line on stderr naming the file or parameter, with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["main", "COMMANDS", "MAX_INPUT_SIZE", "MIN_INPUT_SIZE", "SCORE_COLUMNS", "UsageError"]

MAX_INPUT_SIZE = 1024  # px; activations grow with its square: 2000 px took 22 GB on one CPU batch of 32
MIN_INPUT_SIZE = 32
COMMANDS = {
    "layers": "image AUROC of every layer of a backbone on one category",
    "evaluate": "image AUROC of one configuration",
    "grid": "AUROC of every combination of layers, poolings, reductions and estimators (resumable)",
    "fit": "fit a detector on a category's good training images, calibrate its threshold, save it",
    "score": "score new images (files or folders) with a saved detector: score, percentile, pass/fail",
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
    with warnings.catch_warnings():
        warnings.showwarning = _warn_one_line
        try:
            if hasattr(args, "device"):
                args.device = _device(args.device)
            if hasattr(args, "batch_size") and args.batch_size is None:
                args.batch_size = _batch_size(args.input_size)
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
    _append(args.results, rows, split)
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
    _append(args.results, [row], split)
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
        from tad import cost

        dims = [cost.trial_dim(bb.channels, layer, method, ratio) for layer in layers for method, ratio in reductions]
        seconds = cost.estimate_seconds([], 0, dims * len(splits) * len(args.poolings))["flow"]
        print(f"flow: {len(dims) * len(splits) * len(args.poolings)} trials, about {cost.format_duration(seconds)} "
              f"on a CPU (tad.cost's measured seconds by feature dimension); finished trials in {args.results} "
              "are skipped", file=sys.stderr)
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


def _batch_size(input_size: int | None) -> int:
    """The default batch for ``--input-size``: `tad.cost.DEFAULT_BATCH`, fewer for large inputs (said on stderr)."""
    from tad.cost import DEFAULT_BATCH, batch_size_for

    batch = DEFAULT_BATCH if input_size is None else batch_size_for(input_size)
    if batch < DEFAULT_BATCH:
        print(f"batch size {batch} (not {DEFAULT_BATCH}) for {input_size} px inputs, so the activations fit in "
              "memory; --batch-size N to choose", file=sys.stderr)
    return batch


def _device(given: str | None) -> str:
    """``--device`` checked against what this machine has; by default cuda when present, else cpu."""
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if given is None:
        return "cuda" if available["cuda"] else "cpu"
    kind, _, index = given.partition(":")
    here = [k for k, ok in available.items() if ok] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if given not in here:
        reason = "not a device" if kind not in available or (index and (kind != "cuda" or not index.isdigit())) \
            else "not present on this machine"
        raise UsageError(f"--device {given}: {reason}; valid here: {', '.join(here)}")
    return given


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


def _fit(args: argparse.Namespace) -> int:
    """Fit the configuration on the category's good training images, calibrate, save; print what was made."""
    from tad.detector import RECOMMENDED, Detector

    _check_paths(args)
    if args.output.is_dir() or not args.output.parent.is_dir():
        raise UsageError(f"-o {args.output}: expected a file name in an existing folder")
    chosen = {"backbone": args.backbone, "layer": args.layer, "pooling": args.pooling, "reduction": args.reduction,
              "ratio": _ratio(args), "estimator": args.estimator}
    book = ", ".join(f"{k} {v}" for k, v in RECOMMENDED.items())
    changed = [k for k, v in chosen.items() if str(v) != str(RECOMMENDED[k])]
    print(f"the book's recommended configuration: {book}" +
          (f"; changed here: {', '.join(f'{k} {chosen[k]}' for k in changed)}" if changed else " (used as is)"))
    split = _split(args, args.category)
    print(f"{split.name}: {len(split.train)} good training images ({split.source})", file=sys.stderr, flush=True)
    detector = Detector(**chosen, input_size=args.input_size, fpr=args.fpr,
                        calibration_fraction=args.calibration_fraction, basis=args.basis, maps=not args.no_maps,
                        weights=args.weights or "pretrained", seed=args.seed, device=args.device,
                        batch_size=args.batch_size, cache_dir=args.cache, progress=True).fit(split)
    detector.save(args.output)
    print(detector.describe())
    print(f"detector written to {args.output}")
    return 0


SCORE_COLUMNS = ["path", "score", "percentile", "verdict", "error"]


def _score(args: argparse.Namespace) -> int:
    """Score files and folders with a saved detector: one CSV row per image, resumable, bad images skipped."""
    import os

    from tqdm import tqdm

    from tad.detector import Detector

    paths = _image_paths(args.images)
    if args.csv is not None and (args.csv.is_dir() or not args.csv.parent.is_dir()):
        raise UsageError(f"--csv {args.csv}: expected a file name in an existing folder (appended to if present)")
    if args.maps is not None and args.maps.exists() and not args.maps.is_dir():
        raise UsageError(f"--maps {args.maps} is a file: expected a folder (created if missing)")
    detector = Detector.load(args.detector, weights=args.weights, device=args.device, batch_size=args.batch_size)
    done = _scored_paths(args.csv)
    todo = [p for p in paths if str(p) not in done]
    print(f"{len(paths)} images; {len(paths) - len(todo)} already in {args.csv}, {len(todo)} to score; threshold "
          f"{detector.threshold_:.6g} (target FPR {detector.fpr:g})", file=sys.stderr, flush=True)
    if args.maps is not None:
        args.maps.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.commonpath([p.parent for p in paths]))
    out = open(args.csv, "a") if args.csv is not None else sys.stdout
    counts = {"pass": 0, "fail": 0, "error": 0}
    try:
        if args.csv is None or (not done and out.tell() == 0):
            out.write(",".join(SCORE_COLUMNS) + "\n")
        with tqdm(total=len(todo), unit="img", desc="scoring", file=sys.stderr) as bar:
            for rows, maps in detector.iter_scores(todo, chunk=args.chunk, maps=args.maps is not None):
                for row, amap in zip(rows.itertuples(), maps):
                    counts[row.verdict] += 1
                    if row.verdict == "error":
                        tqdm.write(f"tad score: skipped {row.path}: {row.error}", file=sys.stderr)
                    elif amap is not None:
                        _write_overlay(detector, Path(row.path), amap,
                                       args.maps / ("__".join(Path(row.path).relative_to(root).with_suffix("").parts)
                                                    + ".png"))
                out.write(rows[SCORE_COLUMNS].to_csv(header=False, index=False))  # whole lines, one write
                out.flush()
                if args.csv is not None:
                    os.fsync(out.fileno())
                bar.update(len(rows))
    finally:
        if args.csv is not None:
            out.close()
    print(f"scored {counts['pass'] + counts['fail']}: {counts['pass']} pass, {counts['fail']} fail; "
          f"{counts['error']} unreadable, skipped" + (f"; rows in {args.csv}" if args.csv else "") +
          (f"; overlays in {args.maps}" if args.maps is not None else ""), file=sys.stderr)
    return 0


def _image_paths(items: list[Path]) -> list[Path]:
    """Image files named or found (recursively, sorted) in the folders named, absolute, each once."""
    from tad.data import IMAGE_SUFFIXES

    found: dict[Path, None] = {}
    for item in items:
        if item.is_dir():
            found.update(dict.fromkeys(sorted(p.resolve() for p in item.rglob("*") if p.is_file()
                                              and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))))
        elif item.is_file():
            found[item.resolve()] = None
        else:
            raise UsageError(f"{item}: no such file or folder")
    if not found:
        raise UsageError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, items))}")
    return list(found)


def _scored_paths(csv: Path | None) -> set[str]:
    """Paths already in a score CSV; a last line cut off by an interruption is removed first."""
    from tad.cache import atomic_write

    if csv is None or not csv.exists() or csv.stat().st_size == 0:
        return set()
    text = csv.read_text()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
        atomic_write(csv, lambda f: f.write(text.encode()))
    lines = text.splitlines()
    if not lines or lines[0] != ",".join(SCORE_COLUMNS):
        raise UsageError(f"--csv {csv} exists but is not a tad score file (first line {lines[0][:60]!r} if any; "
                         f"expected {','.join(SCORE_COLUMNS)})")
    import pandas as pd

    return set(pd.read_csv(csv, usecols=["path"], dtype=str)["path"])


def _write_overlay(detector, image_path: Path, amap, target: Path) -> None:
    """The anomaly-map overlay of one image as a PNG, written atomically."""
    from tad.cache import atomic_write
    from tad.data import load_image
    from tad.detector import overlay

    atomic_write(target, lambda f: overlay(load_image(image_path), amap, detector.map_scale_).save(f, format="PNG"))


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


def _append(path: Path | None, rows: list[dict], split) -> None:
    """Add ``rows`` of trials on ``split`` to the results file ``path`` as `tad grid` does: through
    `tad.results.Appender` (file lock, a trial already there is not written again, a half-written last line
    is cut), keyed by the split's `tad.results.data_key` and the grid's defaults (no noise, no augmentation,
    seed 0), so that a grid on the same file skips these trials."""
    if path is None:
        return
    from tad.results import Appender, data_key

    _check_results(path)
    key = data_key(split)
    rows = [{"data_key": key, "noise_std": 0.0, "n_augment": 0, "seed": 0,
             "estimator_params": "{}" if r["estimator"] == "flow" else "", **r} for r in rows]
    with Appender(path) as out:
        new = out.append(rows)
    there = f"; {len(rows) - len(new)} already there" if len(new) < len(rows) else ""
    print(f"{len(new)} row(s) appended to {path}{there}", file=sys.stderr)


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
                "fit": _fit_options, "score": _score_options, "data": _data_options, "download": _download_options}
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
    sp.add_argument("--batch-size", type=_positive("batch size"), default=None,
                    help="images per forward pass; lower it if memory runs out (default: 32, fewer above 512 px: "
                         "8 at 1024 px)")
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


def _fit_options(sp: argparse.ArgumentParser) -> None:
    from tad.estimators import ESTIMATORS
    from tad.features import POOLING_CHOICES
    from tad.reduce import METHODS

    _run_options(sp)
    sp.add_argument("--category", required=True, help="category folder under --data (its train/good images are "
                                                        "used), or elpv_mono / elpv_poly")
    sp.add_argument("--layer", default="7", help="layer number (1 = shallowest) or 'all'")
    sp.add_argument("--pooling", default="avg", choices=POOLING_CHOICES, help="spatial pooling of the layer")
    sp.add_argument("--reduction", default="npca", choices=METHODS,
                    help="keep the largest-variance (pca) or smallest-variance (npca) principal axes, or all")
    sp.add_argument("--ratio", type=_fraction, default=0.5, help="share of the axes kept, in (0, 1]")
    sp.add_argument("--estimator", default="mvg", choices=ESTIMATORS, help="density estimator of good features")
    sp.add_argument("--fpr", type=_rate, default=0.01,
                    help="target false-positive rate on good images, in (0, 1); 0.01 needs 99 calibration images")
    sp.add_argument("--calibration-fraction", type=_rate, default=0.5,
                    help="share of the good images held out to calibrate the threshold (the model is fitted on "
                         "the rest)")
    sp.add_argument("--no-maps", action="store_true", help="leave out the anomaly-map model (smaller file; then "
                                                           "tad score --maps is not available)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the fit/calibration split (and the flow)")
    sp.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="detector file to write")
    sp.set_defaults(results=None)
    _debug_option(sp)
    sp.set_defaults(run=_fit)


def _score_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("detector", type=Path, help="detector file written by tad fit")
    sp.add_argument("images", type=Path, nargs="+", help="image files and/or folders (searched recursively)")
    sp.add_argument("--csv", type=Path, default=None, metavar="FILE",
                    help="append one row per image here; images already in it are skipped, so an interrupted run "
                         "resumes (default: print the rows)")
    sp.add_argument("--maps", type=Path, default=None, metavar="DIR",
                    help="write an anomaly-map overlay PNG per image into this folder")
    sp.add_argument("--weights", type=Path, default=None, metavar="PATH",
                    help="local weights file for the detector's backbone (default: as when it was fitted)")
    sp.add_argument("--batch-size", type=_positive("batch size"), default=32,
                    help="images per forward pass; lower it if memory runs out")
    sp.add_argument("--chunk", type=_positive("chunk"), default=64,
                    help="images scored and written to the CSV at a time")
    sp.add_argument("--device", default=None,
                    help="torch device for the backbone: cpu, cuda, cuda:1, mps (default: cuda when present, else cpu)")
    _debug_option(sp)
    sp.set_defaults(run=_score)


# --- value types (argparse reports their ArgumentTypeError in one line) -------------------------

def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"ratio {text} must be a fraction in (0, 1], e.g. 0.5")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"rate {text} must be a fraction in (0, 1), e.g. 0.01")
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
