"""Extraction throughput: `tad.features.extract` from PNG files against a bare timm forward.

tad side: ``extract(cache_dir=None)`` on the image files (decode, resize, normalise, forward, every layer,
avg/max/min pooling, copy to numpy). Bare side: ``bb.model.forward_intermediates`` with the same layers on
tensors already decoded, resized and normalised in memory, same batch size and resolution, outputs dropped.
Both run interleaved in one process with torch's default thread count (what tad runs with).
Also timed alone: decode+resize (one process, no workers) and pooling.

Run: ``python -m benchmarks.bench_extract [--device cuda]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from pathlib import Path

import torch

from benchmarks.common import add_common_args, cuda_or_skip, finish, interleaved, median, mvtec_root, sync
from tad.backbones import Backbone, load_backbone
from tad.data import load_image
from tad.features import extract, pool, preprocess

CPU_DEFAULTS = dict(backbone="tf_efficientnet_lite0", weights="pretrained", size=224, batch_size=32, n_images=64)
# A user with a GPU: the paper's ENB5 at its 456 px (random weights work offline; speed is the same).
CUDA_DEFAULTS = dict(backbone="tf_efficientnet_b5", weights="random", size=456, batch_size=64, n_images=512)


def image_paths(n: int) -> list[Path]:
    """``n`` bottle training images, cycling through the folder when it holds fewer."""
    files = sorted((mvtec_root() / "bottle" / "train" / "good").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG files in {mvtec_root() / 'bottle/train/good'}; set TAD_DATA")
    return list(itertools.islice(itertools.cycle(files), n))


def bare_forward(bb: Backbone, x: torch.Tensor) -> list[torch.Tensor]:
    """The timm call tad's `Backbone.forward` makes, without anything around it."""
    if bb.n_layers == 5:
        return bb.model.forward_intermediates(x, indices=5, intermediates_only=True)
    return bb.model.forward_intermediates(x, indices=list(range(1, bb.n_layers + 1)), extra_blocks=True,
                                          intermediates_only=True)


def run(args: argparse.Namespace) -> dict:
    device = args.device
    bb = load_backbone(args.backbone, weights=args.weights).to(device).eval()
    paths = image_paths(args.n_images)
    n, bs, size = len(paths), args.batch_size, args.size
    mean = torch.tensor(bb.mean).view(1, 3, 1, 1)
    std = torch.tensor(bb.std).view(1, 3, 1, 1)

    decoded = [preprocess(load_image(p), size) for p in paths]
    batches = [((torch.stack(decoded[i:i + bs]) - mean) / std).to(device) for i in range(0, n, bs)]
    dtypes = args.dtypes or (["fp32", "bf16"] if device.startswith("cuda") else ["fp32"])
    result = {"benchmark": "extract", "backbone": bb.name, "weights": bb.weights["source"], "device": device,
              "input_size": size, "batch_size": bs, "n_images": n, "repeats": args.repeats, "runs": {}}

    def decode_only() -> None:
        for p in paths:
            preprocess(load_image(p), size)

    with torch.inference_mode():
        maps = bare_forward(bb, batches[0])
    def pool_only() -> None:
        with torch.inference_mode():
            for _ in batches:
                [p.float().cpu().numpy() for p in pool(maps)]
            sync(device)

    alone = interleaved({"decode+resize": decode_only, "pool": pool_only}, args.repeats)
    result["alone_ms_per_image"] = {k: 1000 * median(v["wall"]) / n for k, v in alone.items()}

    for dtype in dtypes:
        autocast = (torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if dtype == "bf16"
                    else contextlib.nullcontext())

        def bare() -> None:
            with torch.inference_mode(), autocast:
                for x in batches:
                    bare_forward(bb, x)
                sync(device)

        def tad(workers: int | None, files: list[Path] = paths):
            def go() -> None:
                with autocast:
                    extract(bb, files, input_size=size, batch_size=bs, num_workers=workers, device=device,
                            cache_dir=None, progress=False)
                sync(device)
            return go

        sides = {"bare forward": bare, "tad extract (default workers)": tad(None)}
        sides.update({f"tad extract (num_workers={w})": tad(w) for w in args.workers})
        with torch.inference_mode(), autocast:  # warm-up: oneDNN / cuDNN kernel choice
            bare_forward(bb, batches[0])
        tad(None, paths[:bs])()
        times = interleaved(sides, args.repeats)
        ips = {k: n / median(v["wall"]) for k, v in times.items()}
        cpu = {k: median(v["cpu"]) / n * 1000 for k, v in times.items()}
        result["runs"][dtype] = {
            "images_per_s": ips, "cpu_ms_per_image": cpu, "seconds": times,
            "ratio_to_bare": {k: v / ips["bare forward"] for k, v in ips.items()},
        }
    fwd = 1 / result["runs"][dtypes[0]]["images_per_s"]["bare forward"]
    a = result["alone_ms_per_image"]
    result["serial_model_images_per_s"] = 1 / (fwd + (a["decode+resize"] + a["pool"]) / 1000)
    return result


def report(result: dict) -> None:
    print(f"\nExtraction  {result['backbone']} ({result['weights']}) {result['input_size']} px, batch "
          f"{result['batch_size']}, {result['n_images']} images, {result['device']}, "
          f"{result['machine']['torch_threads']} torch threads, median of {result['repeats']}")
    for dtype, r in result["runs"].items():
        for name, ips in r["images_per_s"].items():
            print(f"  {dtype:5s} {name:32s} {ips:8.1f} img/s   ratio {r['ratio_to_bare'][name]:.3f}   "
                  f"CPU {r['cpu_ms_per_image'][name]:6.1f} ms/img")
    a = result["alone_ms_per_image"]
    print(f"  alone: decode+resize {a['decode+resize']:.1f} ms/img (1 core), pooling+copy {a['pool']:.2f} ms/img; "
          f"no-overlap model {result['serial_model_images_per_s']:.1f} img/s")
    m = result["peak_memory"]
    print(f"  peak RSS: process {m['self_mb']:.0f} MB, largest child (DataLoader worker; counts pages shared "
          f"with the parent at fork) {m['children_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "extract")
    parser.add_argument("--backbone")
    parser.add_argument("--weights", help="pretrained, random or a state_dict path")
    parser.add_argument("--size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--n-images", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], help="default fp32 on CPU, both on CUDA")
    parser.add_argument("--workers", type=int, nargs="*", default=None,
                        help="extra num_workers values to time besides tad's default (CPU default: 0 2)")
    args = parser.parse_args(argv)
    if not cuda_or_skip(args.device, "extraction benchmark"):
        return None
    defaults = CUDA_DEFAULTS if args.device.startswith("cuda") else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.workers is None:
        args.workers = [] if args.device.startswith("cuda") else [0, 2]
    result = finish(run(args), args.out)
    report(result)
    return result


if __name__ == "__main__":
    main()
