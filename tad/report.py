"""What a book page needs around the pipeline: resolve its parameters into data and weights, say which.

`setup_run` validates a notebook's parameters (classes, backbone, device), loads the splits and the
backbone, and prints the provenance so every rendered page states what made its numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tad.backbones import BACKBONES, Backbone, WeightsUnavailable, load_backbone
from tad.data import ELPV_CATEGORIES, MVTEC_CATEGORIES, Split, available_categories, load_split


def resolve_classes(data_root: str | Path | None, classes: Sequence[str] | None) -> list[str]:
    """The class names a page runs on: ``classes`` as given (validated), or every MVTec AD class present.

    Raises
    ------
    ValueError
        A name that is neither under ``data_root`` nor an ELPV split; the message lists the valid ones.
    """
    root = data_root or os.environ.get("TAD_DATA")
    present = available_categories(root) if root else []
    if classes is None:
        found = [c for c in MVTEC_CATEGORIES if c in present]
        if not found:
            raise ValueError(f"no MVTec AD class under data_root={root!r}; set TAD_DATA or the data_root parameter")
        return found
    if isinstance(classes, str):
        classes = [classes]
    valid = [*present, *ELPV_CATEGORIES]
    bad = [c for c in classes if c not in valid]
    if bad:
        raise ValueError(f"classes {bad} not found; valid choices here: {valid}")
    return list(classes)


def setup_run(data_root: str | Path | None, classes: Sequence[str] | None, backbone: str,
              input_size: int | None = None, seed: int = 0,
              require_masks: bool = False) -> tuple[list[Split], Backbone]:
    """Load the splits and the backbone a page asks for and print what they are.

    ``require_masks=True`` is passed to `tad.data.load_split`: every anomalous test image must have a
    ground-truth mask (pages that score anomaly maps), else `tad.data.DataError` names the missing file.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone {backbone!r} not in {sorted(BACKBONES)}")
    names = resolve_classes(data_root, classes)
    splits = [load_split(c, data_root, seed=seed, require_masks=require_masks) for c in names]
    bb = load_backbone(backbone)
    size = input_size or bb.input_size
    print(f"Data: {len(splits)} class(es): {', '.join(names)}")
    for s in splits:
        print(f"  {s.name}: {len(s.train)} train (good), {len(s.test)} test "
              f"({int(s.test_labels.sum())} anomalous); {s.source}")
    print(f"Weights: {bb.weights['tag']} from {bb.weights['source']}; input {size}x{size} px "
          f"(native {bb.input_size}); layers {bb.n_layers}, channels {bb.channels}")
    return splits, bb


def load_backbones(names: Sequence[str], have: Backbone | None = None) -> dict[str, Backbone]:
    """The backbones among ``names`` whose weights can be had, printing each one's provenance or why it is
    skipped (never random weights); ``have`` is reused instead of loaded again."""
    bad = [n for n in names if n not in BACKBONES]
    if bad:
        raise ValueError(f"backbones {bad} not in {sorted(BACKBONES)}")
    loaded = {}
    for name in names:
        try:
            loaded[name] = have if have is not None and have.name == name else load_backbone(name)
        except WeightsUnavailable as err:
            print(f"SKIPPED {name}: {err}\n")
            continue
        b = loaded[name]
        print(f"{name}: {b.weights['tag']} from {b.weights['source']}; native input {b.input_size} px; "
              f"{b.n_layers} layers, channels {b.channels}")
    return loaded
