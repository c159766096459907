"""Named configurations of the whole study, one switch away: ``PAPER`` is Ono & Mori's grid as they ran it.

`plan` counts a preset's trials and estimates its time without weights or data; `check` stops at once,
in one line, when its weights or data are missing; `run_preset` runs it through `tad.sweep.run_grid`
and `paper_tables` turns its rows into tables 2-4 beside the paper's.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tad import cost
from tad.backbones import BACKBONES, Backbone, WeightsUnavailable, load_backbone
from tad.data import MVTEC_CATEGORIES, DataError, DatasetUnavailable, Split, count_report, load_mvtec
from tad.download import download_mvtec
from tad.features import POOLING_CHOICES
from tad.reduce import DEFAULT_BASIS
from tad.paper import beside_paper, paper_table, side_by_side
from tad.sweep import REDUCTIONS, run_grid

__all__ = ["Preset", "PAPER", "PRESETS", "PresetUnavailable", "get_preset", "preset_layers", "grid_trials",
           "pooling_trials", "Plan", "plan", "estimate_seconds", "check", "run_preset", "book_parameters",
           "paper_tables"]


@dataclass(frozen=True)
class Preset:
    """A whole study: which classes, backbones (each at one input size), layers, reductions and estimators.

    Every backbone runs every one of its layers and their concatenation ``"all"`` with one pooling, crossed
    with every reduction and estimator: the grid. Table 4 (pooling) adds, on ``table_backbone`` at
    ``table_layer`` with NPCA 50 %, the other poolings for ``pooling_estimators``.
    """

    name: str
    classes: tuple[str, ...]
    backbones: tuple[tuple[str, int], ...]  # (name in tad.backbones.BACKBONES, square input side in px)
    reductions: tuple[tuple[str, float | None], ...] = REDUCTIONS
    estimators: tuple[str, ...] = ("mvg", "knn1", "knn5", "knn10", "flow")
    layers: dict[str, tuple[str, ...]] | None = None  # per backbone; None: every layer and "all" of each
    pooling: str = "avg"
    basis: str = DEFAULT_BASIS  # the paper preset states its own reading: "dims"
    table_backbone: str = "tf_efficientnet_b5"
    table_layer: str = "7"
    pooling_estimators: tuple[str, ...] = ("mvg", "knn1")
    flow_params: dict | None = None  # tad.estimators.Flow settings; None: its defaults (the benchmarks' too)
    seed: int = 0


PAPER = Preset(
    name="paper",
    classes=tuple(MVTEC_CATEGORIES),
    # Native sizes of the pinned timm tags (tf_efficientnet_b5.aa_in1k: 456 px; resnet18.tv_in1k: 224 px).
    backbones=(("tf_efficientnet_b5", 456), ("resnet18", 224)),
    basis="dims",  # the paper's literal reading of the ratio, the one that fits its table 2
)
PRESETS: dict[str, Preset] = {PAPER.name: PAPER}

class PresetUnavailable(RuntimeError):
    """A preset cannot run here; the one-line message says what is missing and what to do."""


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ValueError lists the valid names."""
    if name not in PRESETS:
        raise ValueError(f"preset {name!r} not in {sorted(PRESETS)}")
    return PRESETS[name]


def preset_layers(preset: Preset, backbone: str) -> list[str]:
    """Layers a backbone runs in the grid: ``preset.layers[backbone]``, by default ``"1"``..``"n"`` and ``"all"``."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone {backbone!r} not in {sorted(BACKBONES)}")
    every = [*map(str, range(1, BACKBONES[backbone].n_layers + 1)), "all"]
    chosen = list(map(str, preset.layers[backbone])) if preset.layers and backbone in preset.layers else every
    bad = [x for x in chosen if x not in every]
    if bad:
        raise ValueError(f"layers {bad} of {backbone} not in {every}")
    return chosen


def grid_trials(preset: Preset) -> int:
    """Trials of the grid per seed: classes x layers (summed over backbones) x reductions x estimators."""
    layers = sum(len(preset_layers(preset, b)) for b, _ in preset.backbones)
    return len(preset.classes) * layers * len(preset.reductions) * len(preset.estimators)


def pooling_trials(preset: Preset) -> int:
    """Trials table 4 adds to the grid per seed: the poolings other than the grid's, for its estimators."""
    return len(preset.classes) * (len(POOLING_CHOICES) - 1) * len(preset.pooling_estimators)


@dataclass(frozen=True)
class Plan:
    """What a preset will run and about how long it takes; ``str(plan)`` is the text printed before a run."""

    preset: str
    trials: int
    extra_trials: int
    images: pd.DataFrame  # per class: train, test, and where the counts come from
    backbones: pd.DataFrame  # per backbone: tag, input size, layers
    estimate_s: dict[str, float]  # extraction, scoring (MVG, k-NN), flow, total
    device: str

    def __str__(self) -> str:
        n_img = int(self.images[["train", "test"]].to_numpy().sum())
        est, fmt = self.estimate_s, cost.format_duration
        lines = [
            f"preset {self.preset!r}: {self.trials:,} trials per seed (the grid) + {self.extra_trials:,} for "
            f"table 4's poolings",
            f"images: {n_img:,} in {len(self.images)} classes ({', '.join(sorted(set(self.images.counts)))})",
            *(f"backbone {name}: {r.tag}, {r.input_size} px, layers {r.layers}"
              for name, r in self.backbones.iterrows()),
            f"estimated time on {self.device}: {fmt(est['total'])} (extraction {fmt(est['extraction'])}, "
            f"MVG/k-NN {fmt(est['scoring'])}, flow {fmt(est['flow'])})",
            "  an estimate from the benchmarks' figures (tad.cost), not a measurement: "
            + (f"extraction {cost.GPU_IMAGES_PER_S:.0f} img/s (ENB5 456 px fp32, H200, compute only) or "
               f"{cost.DECODE_S * 1000:.1f} ms of PNG decode + resize per image, whichever is slower"
               if self.device == "cuda" else
               f"extraction {cost.CPU_IMAGES_PER_S} img/s (Lite0 224 px, 2 CPU cores) scaled by pixels, a lower "
               "bound for ENB5, which is heavier per pixel")
            + f"; {cost.GRID_TRIALS_PER_S:.0f} MVG/k-NN trials/s (2 CPU cores); flow s/trial linear in d through "
              f"{', '.join(f'{s} s at d {d}' for d, s in cost.FLOW_S)} (2 CPU cores)",
        ]
        return "\n".join(lines)


def plan(preset: Preset, data_root: str | Path | None = None, *, device: str = "cuda") -> Plan:
    """The plan of ``preset`` without loading weights or images.

    Parameters
    ----------
    preset : Preset
    data_root : path, optional
        Where the classes are found, they give the image counts; the official MVTec AD counts stand in for
        the others (and for all of them without a data root).
    device : {"cuda", "cpu"}
        The device the estimate is for.

    Returns
    -------
    Plan
    """
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device {device!r} not in ('cuda', 'cpu')")
    found = count_report(data_root) if data_root is not None and Path(data_root).is_dir() else pd.DataFrame()
    rows = []
    for c in preset.classes:
        if c in found.index:
            r = found.loc[c]
            rows.append((c, int(r.train_good), int(r.test_good + r.test_defective), "found"))
        elif c in MVTEC_CATEGORIES:
            train, good, bad = MVTEC_CATEGORIES[c]
            rows.append((c, train, good + bad, "official"))
        else:
            raise ValueError(f"class {c!r} is not under data_root={data_root!r} nor one of {sorted(MVTEC_CATEGORIES)}")
    images = pd.DataFrame(rows, columns=["class", "train", "test", "counts"]).set_index("class")
    backbones = pd.DataFrame(
        [(b, BACKBONES[b].tag, size, ", ".join(preset_layers(preset, b))) for b, size in preset.backbones],
        columns=["backbone", "tag", "input_size", "layers"]).set_index("backbone")
    return Plan(preset.name, grid_trials(preset), pooling_trials(preset), images, backbones,
                estimate_seconds(preset, images, device=device), device)


def estimate_seconds(preset: Preset, images: pd.DataFrame, *, device: str = "cuda") -> dict[str, float]:
    """Seconds the preset should take, by part: `tad.cost.estimate_seconds` of its extractions and trials.

    Extraction: every image once per backbone (all layers and poolings come out of one pass). MVG/k-NN
    trials (the grid's and table 4's) at the grid's measured rate; each flow trial at the measured time for
    its feature dimension.

    Parameters
    ----------
    images : DataFrame with columns ``train`` and ``test``, one row per class
    """
    n_images = int(images[["train", "test"]].to_numpy().sum())
    non_flow = [e for e in preset.estimators if e != "flow"]
    n_other = round(grid_trials(preset) * len(non_flow) / len(preset.estimators)) + pooling_trials(preset)
    flow_dims = []
    if "flow" in preset.estimators:
        flow_dims = [cost.trial_dim(_channels(b), layer, method, ratio) for b, _ in preset.backbones
                     for layer in preset_layers(preset, b) for method, ratio in preset.reductions] * len(preset.classes)
    return cost.estimate_seconds([(n_images, size) for _, size in preset.backbones], n_other, flow_dims,
                                 device=device)


def check(
    preset: Preset,
    data_root: str | Path | None,
    *,
    weights: str | Mapping[str, str | Path] = "pretrained",
    expected: Mapping[str, tuple[int, int, int]] = MVTEC_CATEGORIES,
    download: bool = False,
) -> tuple[list[Split], dict[str, Backbone]]:
    """The preset's splits and backbones, or a `PresetUnavailable` whose one line says what is missing.

    Data first (cheap): every class of the preset must be under ``data_root`` with the split counts of
    ``expected`` (the official MVTec AD counts); with ``download=True`` missing classes are first fetched
    with `tad.download.download_mvtec` (SHA-256 checked). Then the weights of every backbone.

    Parameters
    ----------
    weights : "pretrained", "random", or {backbone: "pretrained" | "random" | path}
        As `tad.backbones.load_backbone`; "random" is for tests of the path only, never for results.
    expected : {class: (train good, test good, test defective)}

    Raises
    ------
    PresetUnavailable
    """
    if data_root is None or not Path(data_root).is_dir():
        raise PresetUnavailable(
            f"preset {preset.name!r}: data root {data_root!r} is not a folder; set TAD_DATA or --data to the "
            f"MVTec AD root, or fetch it with `tad download --data DIR` (official archive, SHA-256 checked)")
    root = Path(data_root)
    found = count_report(root)
    missing = [c for c in preset.classes if c not in found.index]
    if missing and download:
        try:
            download_mvtec(root)
        except (DatasetUnavailable, DataError) as err:
            raise PresetUnavailable(f"preset {preset.name!r}: {str(err).splitlines()[0]}") from err
        found = count_report(root)
        missing = [c for c in preset.classes if c not in found.index]
    if missing:
        raise PresetUnavailable(
            f"preset {preset.name!r}: {len(missing)} of {len(preset.classes)} classes missing under {root} "
            f"({', '.join(missing)}); run `tad download --data {root}` (official archive, SHA-256 checked) "
            f"or place the official MVTec AD folders there")
    for c in preset.classes:
        have = tuple(int(found.loc[c, k]) for k in ("train_good", "test_good", "test_defective"))
        if c in expected and have != tuple(expected[c]):
            raise PresetUnavailable(
                f"preset {preset.name!r}: {root / c} has (train good, test good, test defective) = {have}, "
                f"expected {tuple(expected[c])}; replace it with the official folder (`tad download`)")
    with warnings.catch_warnings():  # counts were checked against `expected` just above
        warnings.simplefilter("ignore")
        splits = [load_mvtec(root, c, require_masks=False) for c in preset.classes]
    loaded = {}
    for b, _ in preset.backbones:
        w = weights.get(b, "pretrained") if isinstance(weights, Mapping) else weights
        try:
            loaded[b] = load_backbone(b, weights=w)
        except WeightsUnavailable as err:
            raise PresetUnavailable(
                f"preset {preset.name!r}: no weights for {b} ({BACKBONES[b].tag}): go online once so timm can "
                f"fetch them from the Hugging Face Hub (then cached), or pass a local state_dict as weights"
            ) from err
    return splits, loaded


def run_preset(
    preset: Preset,
    data_root: str | Path | None,
    results: str | Path,
    *,
    weights: str | Mapping[str, str | Path] = "pretrained",
    expected: Mapping[str, tuple[int, int, int]] = MVTEC_CATEGORIES,
    download: bool = False,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Check, then run the grid and table 4's poolings of ``preset``; resumable (see `tad.sweep.run_grid`).

    ``device`` None means CUDA when torch finds it, else the CPU.

    Returns
    -------
    DataFrame
        One row per trial (`grid_trials` + `pooling_trials` rows once complete).
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    splits, loaded = check(preset, data_root, weights=weights, expected=expected, download=download)
    common = dict(basis=preset.basis, cache_dir=cache_dir, device=device, seed=preset.seed,
                  flow_params=preset.flow_params, progress=progress)
    frames = []
    for b, size in preset.backbones:
        frames.append(run_grid(splits, loaded[b], results, layers=preset_layers(preset, b),
                               poolings=[preset.pooling], reductions=preset.reductions,
                               estimators=preset.estimators, input_size=size, **common))
    size = dict(preset.backbones)[preset.table_backbone]
    others = [p for p in POOLING_CHOICES if p != preset.pooling]
    frames.append(run_grid(splits, loaded[preset.table_backbone], results, layers=[preset.table_layer],
                           poolings=others, reductions=[("npca", 0.5)], estimators=preset.pooling_estimators,
                           input_size=size, **common))
    return pd.concat(frames, ignore_index=True)


def book_parameters(preset: Preset) -> dict[str, dict]:
    """Parameters of the book pages that reproduce the paper (02-08), for ``scripts/build_book.py --preset``.

    Every page gets the preset's classes and its table backbone at its size; the backbone and grid pages
    get all its backbones (each at its native size, which the preset's sizes are), the grid page its
    estimators, reductions and flow settings.
    """
    size = dict(preset.backbones)[preset.table_backbone]
    one = {"classes": list(preset.classes), "backbone": preset.table_backbone, "input_size": size}
    names = [b for b, _ in preset.backbones]
    pages = {p: dict(one) for p in ("02_layers", "03_reduction", "04_pooling", "05_estimators", "06_augmentation")}
    pages["03_reduction"]["basis"] = preset.basis
    pages["07_backbones"] = {**one, "backbones": names, "input_size": None}
    pages["08_grid"] = {**one, "backbones": names, "input_size": None, "estimators": list(preset.estimators),
                        "reductions": [list(r) for r in preset.reductions], "flow_params": preset.flow_params or {}}
    return pages


def paper_tables(rows: pd.DataFrame, preset: Preset = PAPER) -> dict[int, pd.DataFrame]:
    """Tables 2, 3 and 4 of the paper from a preset's rows, each beside the paper's figures.

    On ``table_backbone``: table 2 is the mean AUROC over the classes by reduction at ``table_layer`` with
    MVG (the paper names neither; see the reduction page); table 3 the AUROC by class and layer with 1-NN
    and NPCA 50 %, plus the mean; table 4 the mean AUROC by estimator and pooling at ``table_layer``, NPCA 50 %.

    Returns
    -------
    dict
        ``{2: beside_paper frame (ours, paper, diff), 3: side_by_side frame, 4: side_by_side frame}``.
    """
    df = rows[rows.backbone == preset.table_backbone]
    npca50 = (df.reduction == "npca") & np.isclose(df.ratio.astype(float), 0.5)
    t2 = df[(df.layer == preset.table_layer) & (df.pooling == preset.pooling) & (df.estimator == "mvg")]
    t2 = t2.assign(reduction=[_label(m, r) for m, r in zip(t2.reduction, t2.ratio)])
    order = list(dict.fromkeys(_label(m, r) for m, r in (*REDUCTIONS, *preset.reductions)))  # the paper's rows first
    paper2 = paper_table(2)["auc"]
    paper2.index = [_label(m, r) for m, r in paper2.index]
    ours2 = t2.groupby("reduction").auroc.mean().reindex(order).rename_axis("reduction")
    t3 = df[npca50 & (df.pooling == preset.pooling) & (df.estimator == "knn1")]
    ours3 = t3.pivot_table(index="dataset", columns="layer", values="auroc")
    every = [*map(str, range(1, BACKBONES[preset.table_backbone].n_layers + 1)), "all"]
    ours3 = ours3.reindex(index=list(preset.classes), columns=every)  # layers not run stay visible as NaN
    ours3.loc["mean"] = ours3.mean()
    t4 = df[npca50 & (df.layer == preset.table_layer) & df.estimator.isin(preset.pooling_estimators)]
    ours4 = t4.pivot_table(index="estimator", columns="pooling", values="auroc")
    ours4 = ours4.reindex(index=list(preset.pooling_estimators), columns=list(POOLING_CHOICES))
    return {2: beside_paper(ours2, paper2.reindex(order)), 3: side_by_side(ours3.rename_axis("class"), paper_table(3)),
            4: side_by_side(ours4, paper_table(4))}


# --- helpers -----------------------------------------------------------------------------------

@functools.cache
def _channels(backbone: str) -> tuple[int, ...]:
    """Pooled feature dimension of each layer, from the architecture alone (random weights)."""
    return tuple(load_backbone(backbone, weights="random").channels)


def _label(method: str, ratio: float | None) -> str:
    return "none" if method == "none" else f"{method} {float(ratio):.0%}"

